"""The published calendar as an HTML page: the snapshot's schedule, with subscribe links.

Pure: it takes occurrences that already passed the level filter and returns the
page. The daemon serves it month by month at /p/<secret>; publishing to WebDAV
writes the same page as a static file beside the .ics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from calshare import wording
from calshare.levels import Level
from calshare.occurrence import Occurrence
from calshare.ranges import DateRange
from calshare.schedule import arrange
from mailer.snapshot import COLORS, busy_words, range_words, schedule_words, zone_words
from mailer.templates import render

PAGE_ENTRY_LIMIT = 500  # a page is not a mail, but it should still load on a phone


@dataclass(frozen=True)
class Nav:
    """Links to the months before and after; None where the page would not serve it."""

    previous: str
    previous_url: str | None
    next: str
    next_url: str | None


def month_range(month: date, zone: ZoneInfo) -> DateRange:
    """The whole month ``month`` falls in, in the calendar's zone."""
    first = month.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return DateRange(first, following - timedelta(days=1), zone)


def published_html(
    *,
    calendar: str,
    zone: str,
    owner: str,
    level: Level,
    days: DateRange,
    occurrences: Sequence[Occurrence],
    lang: str,
    ics_url: str,
    webcal_url: str,
    nav: Nav | None,
    domain: str,
) -> str:
    words = schedule_words(lang)
    schedule = arrange(
        occurrences, days, words=words, daily=True, free_days=False, limit=PAGE_ENTRY_LIMIT
    )
    detail = wording.text(f"snapshot.detail.{level}", lang, owner=owner)
    return render(
        "web/published.html",
        lang=lang,
        title=calendar,
        zone_line=wording.text("snapshot.zone", lang, zone=zone_words(zone, lang, days.start)),
        detail_line=wording.text("page.detail", lang, detail=detail),
        range_line=wording.text("page.range", lang, range=range_words(days, lang)),
        subscribe=wording.text("page.subscribe", lang),
        download=wording.text("page.download", lang),
        webcal_url=webcal_url,
        ics_url=ics_url,
        nav=nav,
        schedule=schedule,
        words=busy_words(lang),
        colors=COLORS,
        free_word=wording.text("snapshot.no_events", lang),
        nothing=wording.text("snapshot.nothing", lang),
        more_line=wording.text("page.more", lang, count=f"{schedule.more:,}"),
        footer=wording.text("page.footer", lang, domain=domain),
    )
