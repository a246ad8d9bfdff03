"""The calendar corpus: which files calshare imports and which it refuses, and why."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import CORPUS, FIXTURES

CORPUS_DIR = CORPUS / "ics" / "icalendar"
EXPORTS_DIR = FIXTURES / "exports"


# Corpus files calshare refuses (exit 2), and why each is genuinely broken.
# "structure": the file is not a well-formed calendar at all.
# "unusable": well-formed, but no VEVENT can be placed in time; the oracle must agree
# (every UID group raises in recurring-ical-events).
REFUSED: dict[str, tuple[str, str]] = {
    "calendars__big_bad_calendar.ics": ("structure", "truncated: no END:VCALENDAR"),
    "calendars__small_bad_calendar.ics": ("structure", "truncated: no END:VCALENDAR"),
    "calendars__pr_480_summary_with_colon.ics": ("structure", "truncated: no END:VCALENDAR"),
    "calendars__timezone_same_start_and_offset.ics": (
        "structure",
        "ends with END:VCALENDARD, which closes nothing",
    ),
    "calendars__fuzz_testcase_0_char_in_component_name.ics": (
        "structure",
        "fuzzer output: NUL byte, no calendar",
    ),
    "calendars__fuzz_testcase_invalid_month.ics": (
        "structure",
        "fuzzer output: BEGIN:V never closed",
    ),
    "calendars__fuzz_testcase_vtimezone_lone_cr.ics": (
        "structure",
        "fuzzer output: a lone VTIMEZONE with control characters, no events",
    ),
    "calendars__issue_104_broken_calendar.ics": ("structure", "a line 'X' that is no property"),
    "calendars__parsing_error_in_UTC_offset.ics": (
        "structure",
        "VTIMEZONE offset +5744 (57 hours)",
    ),
    "calendars__issue_178_component_with_invalid_name_represented.ics": (
        "structure",
        "a custom component only, no VCALENDAR",
    ),
    "calendars__issue_178_custom_component_contains_other.ics": (
        "structure",
        "a custom component only, no VCALENDAR",
    ),
    "calendars__america_new_york_forward_reference.ics": ("unusable", "DTSTART given twice"),
    "calendars__pacific_fiji.ics": ("unusable", "DTSTART given twice"),
    "calendars__broken_dtstart.ics": ("unusable", "DTSTART is INVALID-DATE"),
    "calendars__issue_1081_invalid_start_and_end.ics": ("unusable", "DTSTART is INVALID-DATE"),
    "calendars__issue_1081_invalid_start_valid_end.ics": ("unusable", "DTSTART is INVALID-DATE"),
    "calendars__invalid_duration.ics": ("unusable", "DURATION of 10^18 weeks"),
    "calendars__issue_1081_invalid_rrule_freq.ics": ("unusable", "RRULE FREQ=INVALID_TYPE…"),
    "calendars__issue_165_missing_event.ics": ("unusable", "RRULE with escaped ; and ,"),
    "calendars__rfc_7529.ics": ("unusable", "RSCALE=CHINESE rules (RFC 7529), not supported"),
    "calendars__multiple_timezones.ics": ("unusable", "RDATE;VALUE=TIME, not allowed in RDATE"),
    "events__issue_464_invalid_rdate.ics": ("unusable", "RDATE period 199709T180000Z/…"),
    "calendars__broken_ical.ics": ("unusable", "the only VEVENT has no DTSTART"),
    "calendars__issue_1050_multiple_calendars.ics": ("unusable", "no VEVENT has a DTSTART"),
    "calendars__issue_1050_uid_in_description.ics": ("unusable", "no VEVENT has a DTSTART"),
    "calendars__issue_1081_with_summary.ics": ("unusable", "the only VEVENT has no DTSTART"),
    "calendars__issue_1549_binary_attachment.ics": ("unusable", "the VEVENT has no DTSTART"),
    "calendars__issue_1561_image_value.ics": ("unusable", "no VEVENT has a DTSTART"),
    "calendars__issue_322_expected_calendar.ics": ("unusable", "the VEVENT has no DTSTART"),
    "calendars__issue_798_related_to.ics": ("unusable", "no VEVENT has a DTSTART"),
    "calendars__issue_82_expected_output.ics": ("unusable", "the VEVENT has no DTSTART"),
    "calendars__rfc_5545_RDATE_example.ics": ("unusable", "RDATE examples without DTSTART"),
    "calendars__rfc_6868.ics": ("unusable", "the VEVENT has no DTSTART"),
    "calendars__rfc_7256_multi_value_parameters.ics": ("unusable", "no VEVENT has a DTSTART"),
    "calendars__rfc_7986_conferences.ics": ("unusable", "the VEVENT has no DTSTART"),
    "calendars__rfc_7986_image.ics": ("unusable", "no VEVENT has a DTSTART"),
    "calendars__rfc_9253_gap.ics": ("unusable", "no VEVENT has a DTSTART"),
    "calendars__rfc_9253_related_to.ics": ("unusable", "the VEVENT has no DTSTART"),
    "events__event_with_escaped_character1.ics": ("unusable", "bare VEVENT without DTSTART"),
    "events__event_with_escaped_character2.ics": ("unusable", "bare VEVENT without DTSTART"),
    "events__event_with_escaped_character3.ics": ("unusable", "bare VEVENT without DTSTART"),
    "events__event_with_escaped_character4.ics": ("unusable", "bare VEVENT without DTSTART"),
    "events__event_with_escaped_characters.ics": ("unusable", "bare VEVENT without DTSTART"),
    "events__event_with_rsvp.ics": ("unusable", "bare VEVENT without DTSTART"),
    "events__event_with_unicode_organizer.ics": ("unusable", "bare VEVENT without DTSTART"),
    "events__issue_100_transformed_doctests_into_unittests.ics": (
        "unusable",
        "bare VEVENT without DTSTART",
    ),
    "events__issue_355_url_escaping_empty_param.ics": ("unusable", "bare VEVENT without DTSTART"),
    "events__issue_64_event_with_ascii_summary.ics": ("unusable", "bare VEVENT without DTSTART"),
    "events__issue_64_event_with_non_ascii_summary.ics": (
        "unusable",
        "bare VEVENT without DTSTART",
    ),
    "events__issue_82_expected_output.ics": ("unusable", "bare VEVENT without DTSTART"),
    "events__rfc_7265_request_status.ics": ("unusable", "bare VEVENT without DTSTART"),
    "events__rfc_9074_example_proximity.ics": ("unusable", "bare VEVENT without DTSTART"),
}


def corpus_files() -> list[Path]:
    # A missing corpus must fail the run (test_corpus_is_present), never skip silently.
    return sorted(CORPUS_DIR.glob("*.ics")) if CORPUS_DIR.is_dir() else []


def export_files() -> list[Path]:
    return sorted(EXPORTS_DIR.glob("*.ics"))


ACCEPTED = [path for path in (*corpus_files(), *export_files()) if path.name not in REFUSED]
