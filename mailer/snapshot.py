"""Compose a calendar snapshot mail: the schedule as HTML and text, the range as an .ics.

Pure, like the rest of ``mailer.compose``: it takes occurrences that have already
passed the level filter and returns the bytes. The HTML, the text part and the
attachment are all made from those occurrences alone, so none of them can show
more than the level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from enum import StrEnum

from babel.dates import format_date, get_timezone_name

from calshare import wording
from calshare.addresses import Mailbox, normalize_domain
from calshare.busy import Busy
from calshare.ics_writer import write_calendar
from calshare.levels import Level
from calshare.occurrence import Occurrence
from calshare.ranges import DateRange
from calshare.schedule import Schedule, Words, WorkingWindow, arrange
from mailer.compose import Attachment, OutgoingMail, Sender, build, clean, new_message_key
from mailer.templates import render


class Layout(StrEnum):
    """How a snapshot lays the days out: a column per day, or one list of occurrences."""

    DAILY = "daily"
    LIST = "list"


LAYOUTS = tuple(Layout)

# Outlook's colours for busy states, so Outlook users read them at a glance.
BUSY_COLORS = {
    Busy.BUSY: "#1d4ed8",
    Busy.TENTATIVE: "#93c5fd",
    Busy.OOF: "#7e22ce",
    Busy.ELSEWHERE: "#0d9488",
    Busy.FREE: "#d1d5db",
}


@dataclass(frozen=True)
class SnapshotRequest:
    """What the owner asked for, after policy: the level here is the capped one."""

    calendar: str
    zone: str
    days: DateRange
    level: Level
    layout: Layout
    lang: str
    include_private: bool
    working_hours: WorkingWindow | None


def range_words(days: DateRange, lang: str) -> str:
    locale = wording.babel_locale(lang)
    first = format_date(days.first, "long", locale=locale)
    if days.first == days.last:
        return first
    return f"{first} – {format_date(days.last, 'long', locale=locale)}"


def zone_words(zone: str, lang: str, when: datetime) -> str:
    """'Europe/Oslo (Central European Time)': the key a calendar app knows, and a name."""
    try:
        name = get_timezone_name(when, width="long", locale=wording.babel_locale(lang))
    except LookupError:
        return zone
    return f"{zone} ({name})" if name and name != zone else zone


def _hours_words(window: WorkingWindow, lang: str) -> str:
    days = sorted(window.days)
    if not days:
        return f"{window.start:%H:%M}–{window.end:%H:%M}"
    locale = wording.babel_locale(lang)
    names = [format_date(datetime(2024, 1, 1 + day), "EEE", locale=locale) for day in days]
    in_a_row = days == list(range(days[0], days[-1] + 1))
    span = f"{names[0]}–{names[-1]}" if in_a_row else ", ".join(names)
    return f"{span} {window.start:%H:%M}–{window.end:%H:%M}"


def ics_filename(calendar: str) -> str:
    return f"{calendar}.ics"


def schedule_words(lang: str) -> Words:
    """The schedule's words and date patterns in ``lang`` (mail and web pages alike)."""
    return Words(
        locale=wording.babel_locale(lang),
        all_day=wording.text("snapshot.all_day", lang),
        until=wording.text("snapshot.until", lang, time="{time}"),
        continues=wording.text("snapshot.continues", lang),
        day=wording.text("pattern.day", lang),
        short_day=wording.text("pattern.short_day", lang),
        month=wording.text("pattern.month", lang),
    )


def busy_words(lang: str) -> dict[str, str]:
    """Busy statuses as the templates show them, plus the word for private items."""
    found = {str(busy): wording.text(f"busy.{busy}", lang) for busy in Busy}
    found["private"] = wording.text("snapshot.private", lang)
    return found


COLORS = {str(busy): color for busy, color in BUSY_COLORS.items()}


def schedule_for(occurrences: Sequence[Occurrence], request: SnapshotRequest) -> Schedule:
    daily = request.layout == Layout.DAILY
    window = request.working_hours
    return arrange(
        occurrences,
        request.days,
        words=schedule_words(request.lang),
        daily=daily,
        free_days=daily,
        weekdays=window.days if window is not None else None,
    )


@dataclass(frozen=True)
class Rendered:
    """A snapshot's words and files, the same for every recipient at one level."""

    subject: str
    text: str
    html: str
    attachment: Attachment


def render_snapshot(
    sender: Sender, occurrences: Sequence[Occurrence], request: SnapshotRequest, *, now: datetime
) -> Rendered:
    """The schedule, both bodies and the .ics: made once, addressed to each recipient after."""
    lang = request.lang
    fields = {
        "owner": sender.owner_name,
        "owner_who": wording.who(sender.owner_name, sender.owner.address),
        "calendar": clean(request.calendar),
        "range": range_words(request.days, lang),
    }
    schedule = schedule_for(occurrences, request)
    window = request.working_hours
    zone = request.days.zone
    detail = wording.text(f"snapshot.detail.{request.level}", lang, owner=sender.owner_name)
    subject = wording.text("snapshot.subject", lang, **fields)
    context = {
        "lang": lang,
        "subject": subject,
        "heading": wording.text("snapshot.heading", lang, **fields),
        "intro": wording.text("snapshot.intro", lang, **fields),
        "zone_line": wording.text(
            "snapshot.zone", lang, zone=zone_words(request.zone, lang, request.days.start)
        ),
        "detail_line": wording.text("snapshot.detail", lang, detail=detail),
        "private_line": None
        if request.include_private
        else wording.text("snapshot.private_left_out", lang),
        "hours_line": wording.text("snapshot.working_hours", lang, hours=_hours_words(window, lang))
        if window is not None
        else None,
        "count_line": wording.text("snapshot.count", lang, count=f"{len(occurrences):,}"),
        "more_line": wording.text("snapshot.more", lang, count=f"{schedule.more:,}"),
        "nothing": wording.text("snapshot.nothing", lang),
        "by_month": wording.text("snapshot.by_month", lang),
        "static_line": wording.text(
            "snapshot.static",
            lang,
            date=format_date(
                now.astimezone(zone).date(), "long", locale=wording.babel_locale(lang)
            ),
            file=ics_filename(request.calendar),
        ),
        "free_word": wording.text(
            "snapshot.available" if window is not None else "snapshot.no_events", lang
        ),
        "layout": request.layout,
        "schedule": schedule,
        "words": busy_words(lang),
        "colors": COLORS,
        "footer": wording.text("footer", lang, domain=sender.domain),
    }
    ics = write_calendar(
        occurrences, name=request.calendar, zone=request.zone, now=now, lang=request.lang
    )
    return Rendered(
        subject,
        render("snapshot.txt", **context),
        render("snapshot.html", **context),
        Attachment(
            ics,
            "text/calendar",
            ics_filename(request.calendar),
            (("method", "PUBLISH"), ("charset", "utf-8")),
        ),
    )


def addressed(
    sender: Sender, to: Mailbox, rendered: Rendered, *, now: datetime, key: str | None = None
) -> OutgoingMail:
    """One recipient's message. Replies go to the owner (Reply-To): a snapshot has
    nothing for us to answer."""
    owner_local, _, owner_domain = sender.owner.address.rpartition("@")
    return build(
        sender,
        to,
        rendered.subject,
        rendered.text,
        rendered.html,
        now,
        key or new_message_key(),
        reply_to=Address(sender.owner_name, owner_local, normalize_domain(owner_domain)),
        attachment=rendered.attachment,
    )


def snapshot(
    sender: Sender,
    to: Mailbox,
    occurrences: Sequence[Occurrence],
    request: SnapshotRequest,
    *,
    now: datetime,
    key: str | None = None,
) -> OutgoingMail:
    """The snapshot mail for one recipient: text and HTML alternatives and the .ics."""
    rendered = render_snapshot(sender, occurrences, request, now=now)
    return addressed(sender, to, rendered, now=now, key=key)
