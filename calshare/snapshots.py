"""Email a calendar: a static copy of a date range, at a level policy allows each recipient.

The owner names a range and a level; each recipient gets the lower of that level
and what policy allows them, exactly as a share would (``policy.check_recipient``).
One mail per recipient is queued in one transaction, or, for a preview, the
complete message is returned and nothing is queued.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from calshare.addresses import Mailbox
from calshare.calendars import Calendar, get_calendar
from calshare.clock import Clock
from calshare.config import Settings
from calshare.errors import Field, UsageError
from calshare.expansion import Caps
from calshare.levels import Level, lower_of
from calshare.lifecycle import audit
from calshare.occurrence import Occurrence
from calshare.policy import check_recipient
from calshare.ranges import FIRST_DAY, LAST_DAY, MAX_DAYS, DateRange, resolve_range
from calshare.schedule import WorkingWindow, clip_to_working_hours
from calshare.sharing import check_deliverable, mail_sender
from calshare.store import Store
from calshare.views import visible_occurrences
from mailer import outbox
from mailer.compose import OutgoingMail
from mailer.outbox import OutboxKind
from mailer.snapshot import (
    LAYOUTS,
    Layout,
    Rendered,
    SnapshotRequest,
    addressed,
    render_snapshot,
)

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 50
# `whole` shows series that never end up to this far ahead, as Outlook does with
# its own "whole calendar" (a never-ending series would otherwise never stop).
WHOLE_AHEAD = timedelta(days=365)
_DTSTART = re.compile(r"^DTSTART[^:\r\n]*:(\d{8})", re.MULTILINE)


@dataclass(frozen=True)
class Options:
    range_text: str
    detail: Level = Level.DETAILS
    working_hours_only: bool = False
    include_private: bool = False
    layout: Layout = Layout.DAILY
    lang: str | None = None


@dataclass(frozen=True)
class Sent:
    """One recipient's snapshot: who, at which level (after policy), and the mail."""

    recipient: Mailbox
    level: Level
    capped: bool  # policy lowered the level asked for
    mail: OutgoingMail
    events: int
    days: DateRange  # as shown: `whole` ends where its events do


def whole_days(store: Store, calendar: Calendar, now: datetime) -> tuple[date, date]:
    """The calendar's first and last day: single events as they are, series up to a year ahead.

    A series' first day comes from its DTSTART (a day early, for zones), since
    the index holds series only around today.
    """
    zone = calendar.zoneinfo
    db = store.db
    first_ts, last_ts = db.execute(
        """SELECT min(o.start_ts), max(o.end_ts) FROM occurrences o
           JOIN events e ON e.id = o.event_id WHERE o.calendar_id = ? AND e.recurs = 0""",
        [calendar.id],
    ).fetchone()
    firsts = [datetime.fromtimestamp(first_ts, zone).date()] if first_ts is not None else []
    lasts = [datetime.fromtimestamp(last_ts, zone).date()] if last_ts is not None else []
    series = db.execute(
        "SELECT ical FROM events WHERE calendar_id = ? AND recurs = 1 AND recurrence_id IS NULL",
        [calendar.id],
    ).fetchall()
    today = now.astimezone(zone).date()
    for (ical,) in series:
        match = _DTSTART.search(ical.replace("\r\n ", "").replace("\n ", ""))
        if match:
            try:
                began = date.fromisoformat(match[1])
            except ValueError:
                continue
            firsts.append(began - timedelta(days=1))
            # up to a year ahead; a series that only starts after that shows its first year
            horizon = today + WHOLE_AHEAD
            lasts.append(horizon if began <= horizon else began + WHOLE_AHEAD)
    if not firsts:
        return today, today
    last = min(max(lasts, default=today), LAST_DAY)
    first = max(min(firsts), FIRST_DAY, last - timedelta(days=MAX_DAYS - 1))
    return min(first, last), last


def _trimmed(days: DateRange, found: list[Occurrence]) -> DateRange:
    """`whole` ends where its events do, not at the search's far edge."""
    if not found:
        return days
    zone = days.zone
    first_day = days.last
    last_day = days.first
    for occurrence in found:
        start, end = occurrence.start, occurrence.end
        if isinstance(start, datetime) and isinstance(end, datetime):
            start_day = start.astimezone(zone).date()
            end_day = (end - timedelta(microseconds=1)).astimezone(zone).date()
        else:
            start_day, end_day = start, end - timedelta(days=1)
        # a zero-length event still shows on its day
        first_day, last_day = min(first_day, start_day), max(last_day, start_day, end_day)
    first_day, last_day = max(first_day, days.first), min(max(last_day, first_day), days.last)
    return DateRange(first_day, last_day, zone)


def _working_window(settings: Settings) -> WorkingWindow:
    hours = settings.working_hours
    window = WorkingWindow.parse(hours.days, hours.start, hours.end)
    if not window.days:
        raise UsageError(
            "working_hours.days is empty, so working hours only would show nothing; "
            "set the working days in [working_hours]",
            field=Field.WORKING_HOURS,
        )
    if window.end <= window.start:
        raise UsageError(
            f"working_hours.end ({hours.end}) must be after working_hours.start ({hours.start})"
        )
    return window


def compose_snapshots(
    store: Store,
    settings: Settings,
    clock: Clock,
    calendar_name: str,
    recipients: list[str],
    options: Options,
    *,
    owner: str | None = None,
) -> list[Sent]:
    """Check every recipient, then make each one's mail. Nothing is written.

    Any refused recipient refuses the whole request, before anything is made,
    so the owner fixes the list and sends once.
    """
    if options.layout not in LAYOUTS:
        raise UsageError(
            f"The layout {options.layout!r} is not one we know: use one of {', '.join(LAYOUTS)}",
            field=Field.LAYOUT,
        )
    if not recipients:
        raise UsageError("Name at least one recipient", field=Field.RECIPIENTS)
    if len(recipients) > MAX_RECIPIENTS:
        raise UsageError(f"At most {MAX_RECIPIENTS} recipients at once", field=Field.RECIPIENTS)
    calendar = get_calendar(store.db, calendar_name, owner)
    now = clock.now()
    checked: list[tuple[Mailbox, Level, bool]] = []
    seen: set[str] = set()
    for recipient in recipients:
        mailbox, allowed = check_recipient(
            settings.policy, calendar.owner, recipient, owner_allowed=True
        )
        check_deliverable(mailbox)
        if mailbox.address in seen:
            continue
        seen.add(mailbox.address)
        level = lower_of(options.detail, allowed)
        checked.append((mailbox, level, level is not options.detail))
    zone = calendar.zoneinfo
    wants_whole = options.range_text.strip().lower() == "whole"
    whole = whole_days(store, calendar, now) if wants_whole else None
    days = resolve_range(options.range_text, zone, now, whole)
    window = _working_window(settings) if options.working_hours_only else None
    lang = options.lang or settings.mail.lang
    sender = mail_sender(settings, calendar)
    made: dict[Level, tuple[int, Rendered, DateRange]] = {}
    sent: list[Sent] = []
    for mailbox, level, capped in checked:
        if level not in made:
            found = visible_occurrences(
                store,
                calendar,
                days.start,
                days.end,
                level,
                include_private=options.include_private,
                now=now,
                limit_years=settings.calendars.index_limit_years,
                caps=Caps.of(settings.calendars),
            )
            shown_days = _trimmed(days, found) if whole is not None else days
            if window is not None:
                found = clip_to_working_hours(found, window, shown_days)
            request = SnapshotRequest(
                calendar=calendar.name,
                zone=calendar.zone,
                days=shown_days,
                level=level,
                layout=options.layout,
                lang=lang,
                include_private=options.include_private,
                working_hours=window,
            )
            made[level] = (len(found), render_snapshot(sender, found, request, now=now), shown_days)
        count, rendered, shown_days = made[level]
        mail = addressed(sender, mailbox, rendered, now=now)
        sent.append(Sent(mailbox, level, capped, mail, count, shown_days))
    return sent


def send_snapshots(
    store: Store,
    settings: Settings,
    clock: Clock,
    calendar_name: str,
    recipients: list[str],
    options: Options,
    *,
    owner: str | None = None,
) -> list[Sent]:
    """Queue one mail per recipient, all in one transaction: all are queued or none."""
    sent = compose_snapshots(
        store, settings, clock, calendar_name, recipients, options, owner=owner
    )
    calendar = get_calendar(store.db, calendar_name, owner)
    now = clock.now()
    with store.write() as db:
        for item in sent:
            outbox.enqueue(db, item.mail, kind=OutboxKind.SNAPSHOT, share_id=None, now=now)
            audit(
                db,
                now,
                "snapshot",
                calendar.id,
                item.recipient.address,
                f"{options.range_text} at {item.level}, {item.events} events",
            )
    for item in sent:
        log.info(
            "snapshot of %s queued for %s at %s: %s",
            calendar.name,
            item.recipient.address,
            item.level,
            item.mail.message_id,
        )
    return sent


def preview(
    store: Store,
    settings: Settings,
    clock: Clock,
    calendar_name: str,
    options: Options,
    *,
    owner: str | None = None,
) -> Sent:
    """The complete message as the owner would receive it; nothing is queued."""
    calendar = get_calendar(store.db, calendar_name, owner)
    (made,) = compose_snapshots(
        store, settings, clock, calendar_name, [calendar.owner], options, owner=owner
    )
    return made
