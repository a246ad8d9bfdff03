"""The published calendar as an HTML page: a month grid, a week with a time axis, a list.

Pure: it takes occurrences that already passed the level filter and returns the
page, so the page can only show what the level left in place. The daemon serves
it at /p/<secret>?view=month|week|agenda&date=YYYY-MM-DD; publishing to WebDAV
writes a list of the next 60 days as a static file beside the .ics.

Outlook's published HTML calendar is the model: at browser width a month grid
(a table with a column per weekday) or a week with a time axis, where events
that overlap stand side by side; on a narrow screen a CSS media query shows the
same days as a list instead. No script: links do the navigation, and the page is
the same for everyone with the link, today's date marked (``aria-current``).

The week grid is laid out on wall-clock time, as the axis reads: an event sits
in the row of the hour its local start time names. A day with a DST change is
23 or 25 hours long; the hour that does not exist is shaded, the column's header
says how long the day is, and each event's own label gives its real times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from babel.dates import format_date
from markupsafe import Markup

from calshare import wording
from calshare.levels import Level
from calshare.links import is_webcal
from calshare.occurrence import Occurrence
from calshare.ranges import DateRange
from calshare.schedule import Day, Entry, Schedule, arrange
from calshare.subscribe import qr_svg, subscribe_options
from mailer.snapshot import COLORS, busy_words, range_words, schedule_words, zone_words
from mailer.templates import template_dir

PAGE_ENTRY_LIMIT = 500  # a page is not a mail, but it should still load on a phone
VIEWS = ("month", "week", "agenda")
STATIC_DAYS = 60  # the WebDAV copy: one file, no navigation, the next 60 days as a list
MONTH_CELL_ENTRIES = 4  # a busier day shows three and links to its week
HOUR_REM = 2.5  # the height of an hour in the week grid
MIN_MINUTES = 30  # the shortest an event is drawn, so its label can be read
DAY_MINUTES = 24 * 60


@dataclass(frozen=True)
class Link:
    """A navigation link; ``url`` is None where the page would not serve it."""

    label: str
    url: str | None
    current: bool = False


@dataclass(frozen=True)
class Nav:
    """Previous and next period, today, and the three views of the same days."""

    previous: Link
    today: Link
    next: Link
    views: tuple[Link, ...]


@dataclass(frozen=True)
class View:
    """What a page shows: a month, a week, or a list of days (``agenda``)."""

    kind: str
    days: DateRange  # the month, the week (Monday first), or the list's days

    @property
    def grid(self) -> DateRange:
        """The days the page needs occurrences for: a month grid is whole weeks."""
        if self.kind != "month":
            return self.days
        first = self.days.first - timedelta(days=self.days.first.weekday())
        last = self.days.last + timedelta(days=6 - self.days.last.weekday())
        return DateRange(first, last, self.days.zone)


def month_range(month: date, zone: ZoneInfo) -> DateRange:
    """The whole month ``month`` falls in, in the calendar's zone."""
    first = month.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return DateRange(first, following - timedelta(days=1), zone)


def view_of(kind: str, anchor: date, zone: ZoneInfo) -> View:
    """The month or week ``anchor`` falls in (a list shows the month)."""
    if kind == "week":
        monday = anchor - timedelta(days=anchor.weekday())
        return View(kind, DateRange(monday, monday + timedelta(days=6), zone))
    if kind not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}")
    return View(kind, month_range(anchor, zone))


def static_view(today: date, zone: ZoneInfo) -> View:
    """The WebDAV copy's view: the next ``STATIC_DAYS`` days as a list."""
    return View("agenda", DateRange(today, today + timedelta(days=STATIC_DAYS - 1), zone))


def _step(view: View, forward: bool) -> date:
    if view.kind == "week":
        return view.days.first + timedelta(days=7 if forward else -7)
    if forward:
        return view.days.last + timedelta(days=1)
    return (view.days.first - timedelta(days=1)).replace(day=1)


def query(kind: str, day: date, embed: bool) -> str:
    """A page's link relative to itself: the query string alone."""
    return f"?view={kind}&date={day.isoformat()}" + ("&embed=1" if embed else "")


def period_label(view: View, lang: str) -> str:
    """'November 2026', or 'Week 49: 30 Nov – 6 Dec 2026'."""
    locale = wording.babel_locale(lang)
    if view.kind == "week":
        week = wording.text("page.week", lang, number=str(view.days.first.isocalendar().week))
        pattern = wording.text("pattern.short_day", lang)
        first = format_date(view.days.first, pattern, locale=locale)
        last = format_date(view.days.last, pattern, locale=locale)
        return f"{week}: {first} – {last} {view.days.last.year}"
    if view.kind == "month" or view.days == month_range(view.days.first, view.days.zone):
        return format_date(view.days.first, wording.text("pattern.month", lang), locale=locale)
    return range_words(view.days, lang)


def navigation(
    view: View, today: date, first: date, last: date, lang: str, *, embed: bool = False
) -> Nav:
    """Links to the periods around ``view`` that fall in ``first``..``last`` (the
    days the daemon serves), to today, and to the other views of the same days."""
    zone = view.days.zone

    def link(day: date, kind: str = view.kind, current: bool = False) -> Link:
        shown = view_of(kind, day, zone)
        served = shown.days.last >= first and shown.days.first <= last
        label = (
            period_label(shown, lang)
            if kind == "month" or kind == "agenda"
            else wording.text("page.week", lang, number=str(shown.days.first.isocalendar().week))
        )
        return Link(label, query(kind, day, embed) if served else None, current)

    before, after = link(_step(view, False)), link(_step(view, True))
    here = view.days.first <= today <= view.days.last
    anchor = today if here else view.days.first
    today_link = Link(
        wording.text("page.today", lang),
        query(view.kind, today, embed) if first <= today <= last else None,
        here,
    )
    views = tuple(
        Link(
            wording.text(f"page.view.{kind}", lang),
            query(kind, anchor, embed),
            kind == view.kind,
        )
        for kind in VIEWS
    )
    return Nav(before, today_link, after, views)


# --- the month grid


@dataclass
class MonthCell:
    day: Day
    in_month: bool
    today: bool
    entries: list[Entry]  # the ones shown in the cell
    more: int  # entries left for the day's week view


@dataclass
class MonthRow:
    cells: list[MonthCell]


def month_rows(schedule: Schedule, view: View, today: date) -> list[MonthRow]:
    """The grid's weeks, Monday first, with each day's entries (all-day ones first)."""
    by_day = {day.day: day for month in schedule.months for day in month.days}
    rows: list[MonthRow] = []
    for day in view.grid.each_day():
        if day.weekday() == 0:
            rows.append(MonthRow([]))
        found = by_day.get(day) or Day(day, "", "", [])
        entries = found.entries
        shown = entries if len(entries) <= MONTH_CELL_ENTRIES else entries[: MONTH_CELL_ENTRIES - 1]
        rows[-1].cells.append(
            MonthCell(
                found,
                view.days.first <= day <= view.days.last,
                day == today,
                shown,
                len(entries) - len(shown),
            )
        )
    return rows


# --- the week grid


@dataclass(frozen=True)
class Block:
    """A timed entry in the week grid: where in its hour's cell it is drawn."""

    entry: Entry
    start: int  # wall-clock minutes after midnight, on this day
    end: int
    lane: int = 0
    lanes: int = 1

    @property
    def hour(self) -> int:
        return min(self.start // 60, 23)

    @property
    def short(self) -> bool:
        """Too short to give the time a line of its own."""
        return self.end - self.start < 60

    @property
    def style(self) -> str:
        """Inline CSS for its place: rem from the top of its hour, a share of the width."""
        top = (self.start - self.hour * 60) / 60 * HOUR_REM
        height = max(self.end - self.start, MIN_MINUTES) / 60 * HOUR_REM
        width = 100 / self.lanes
        return (
            f"top: {top:.2f}rem; height: {height:.2f}rem; "
            f"left: {self.lane * width:.2f}%; width: {width:.2f}%; "
            f"border-left-color: {COLORS[self.entry.busy]};"
        )


@dataclass
class WeekDay:
    day: Day
    today: bool
    hours: float  # the day's length: 23, 24 or 25 where a DST change falls
    all_day: list[Entry] = field(default_factory=list)
    blocks: list[list[Block]] = field(default_factory=lambda: [[] for _ in range(24)])
    skipped: frozenset[int] = frozenset()  # hours the clocks jump over


def day_hours(day: date, zone: ZoneInfo) -> float:
    """How long the day is in ``zone``: 24 hours, or 23/25 on the day of a DST change."""
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    return (end.timestamp() - start.timestamp()) / 3600


def skipped_hours(day: date, zone: ZoneInfo) -> frozenset[int]:
    """Wall-clock hours that do not exist on ``day`` (the spring change jumps them)."""
    missing = set()
    for hour in range(24):
        wall = datetime.combine(day, time(hour), zone)
        back = wall.astimezone(UTC).astimezone(zone)
        if back.replace(tzinfo=None) != wall.replace(tzinfo=None):
            missing.add(hour)
    return frozenset(missing)


def _wall_minutes(occurrence: Occurrence, day: date, zone: ZoneInfo) -> tuple[int, int]:
    """Where a timed occurrence lies on ``day``, in wall-clock minutes (0..1440).

    One begun the day before starts at 0; one going on past midnight ends at
    1440. Where wall clocks run backwards (the autumn change) it is drawn as
    long as it really lasts.
    """
    start, end = occurrence.start, occurrence.end
    assert isinstance(start, datetime) and isinstance(end, datetime)
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    midnight = datetime.combine(day, time(), zone)
    begins = 0 if local_start.date() < day else local_start.hour * 60 + local_start.minute
    ends = DAY_MINUTES if local_end.date() > day else local_end.hour * 60 + local_end.minute
    if ends < begins or (ends == begins and end.timestamp() > start.timestamp()):
        real = (end.timestamp() - max(start.timestamp(), midnight.timestamp())) / 60
        ends = min(DAY_MINUTES, begins + int(real))
    return begins, ends


def _lanes(blocks: list[Block]) -> list[Block]:
    """Side by side where they overlap (as drawn): each cluster shares the width."""
    placed: list[Block] = []
    cluster: list[Block] = []
    ends: list[int] = []  # per lane, where its last block ends (as drawn)
    cluster_end = -1
    for block in sorted(blocks, key=lambda b: (b.start, -b.end)):
        drawn_end = max(block.end, block.start + MIN_MINUTES)
        if cluster and block.start >= cluster_end:
            placed.extend(_share(cluster, len(ends)))
            cluster, ends, cluster_end = [], [], -1
        lane = next((i for i, end in enumerate(ends) if end <= block.start), len(ends))
        if lane == len(ends):
            ends.append(drawn_end)
        else:
            ends[lane] = drawn_end
        cluster.append(Block(block.entry, block.start, block.end, lane))
        cluster_end = max(cluster_end, drawn_end)
    placed.extend(_share(cluster, len(ends)))
    return placed


def _share(cluster: list[Block], lanes: int) -> list[Block]:
    return [Block(b.entry, b.start, b.end, b.lane, lanes) for b in cluster]


def week_days(schedule: Schedule, view: View, today: date) -> list[WeekDay]:
    """The week's columns: all-day entries (and timed ones filling the whole day) in
    the all-day row, the rest as blocks in the hour rows they start in."""
    zone = view.days.zone
    by_day = {day.day: day for month in schedule.months for day in month.days}
    columns = []
    for day in view.days.each_day():
        found = by_day.get(day) or Day(day, "", "", [])
        column = WeekDay(
            found, day == today, day_hours(day, zone), skipped=skipped_hours(day, zone)
        )
        timed = []
        for entry in found.entries:
            if entry.occurrence.all_day:
                column.all_day.append(entry)
                continue
            begins, ends = _wall_minutes(entry.occurrence, day, zone)
            if begins == 0 and ends == DAY_MINUTES:
                column.all_day.append(entry)
            else:
                timed.append(Block(entry, begins, ends))
        for block in _lanes(timed):
            column.blocks[block.hour].append(block)
        columns.append(column)
    return columns


# --- the page


@cache
def _environment() -> jinja2.Environment:
    """Web pages are not mails: no premailer, a stylesheet of their own (CSP: inline
    styles only), every template autoescaped."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )


def render_page(name: str, **context: Any) -> str:
    return _environment().get_template(name).render(**context)


def _weekday_names(lang: str) -> list[tuple[str, str]]:
    """(full, short) weekday names, Monday first, in ``lang``."""
    locale = wording.babel_locale(lang)
    monday = date(2024, 1, 1)
    return [
        (
            format_date(monday + timedelta(days=i), "EEEE", locale=locale),
            format_date(monday + timedelta(days=i), "EEE", locale=locale),
        )
        for i in range(7)
    ]


def published_html(
    *,
    calendar: str,
    zone: str,
    owner: str,
    level: Level,
    view: View,
    occurrences: Sequence[Occurrence],
    lang: str,
    ics_url: str,
    webcal_url: str,
    nav: Nav | None,
    domain: str,
    today: date,
    embed: bool = False,
) -> str:
    """The page for ``view``; ``occurrences`` cover ``view.grid`` and passed the filter."""
    words = schedule_words(lang)
    schedule = arrange(
        occurrences, view.grid, words=words, daily=True, free_days=True, limit=PAGE_ENTRY_LIMIT
    )
    agenda = [
        day
        for month in schedule.months
        for day in month.days
        if day.entries and view.days.first <= day.day <= view.days.last
    ]
    detail = wording.text(f"snapshot.detail.{level}", lang, owner=owner)
    subscribe_block = _subscribe_block(calendar, lang, ics_url, webcal_url)
    return render_page(
        "web/published.html",
        lang=lang,
        title=calendar,
        view=view,
        period=period_label(view, lang),
        zone_line=wording.text("snapshot.zone", lang, zone=zone_words(zone, lang, view.days.start)),
        detail_line=wording.text("page.detail", lang, detail=detail),
        range_line=wording.text("page.range", lang, range=range_words(view.days, lang)),
        subscribe=wording.text("page.subscribe", lang),
        download=wording.text("page.download", lang),
        webcal_url=webcal_url,
        ics_url=ics_url,
        nav=nav,
        subscribe_block=subscribe_block,
        embed=embed,
        today=today,
        weekdays=_weekday_names(lang),
        rows=month_rows(schedule, view, today) if view.kind == "month" else [],
        columns=week_days(schedule, view, today) if view.kind == "week" else [],
        agenda=agenda,
        text={
            key: wording.text(f"page.{key}", lang)
            for key in ("views", "navigation", "time", "all_day_row", "dst_forward", "dst_back")
        },
        more_day=wording.text("page.more_day", lang, count="{count}"),
        words=busy_words(lang),
        colors=COLORS,
        nothing=wording.text("snapshot.nothing", lang),
        more=schedule.more,
        more_line=wording.text("page.more", lang, count=f"{schedule.more:,}"),
        footer=wording.text("page.footer", lang, domain=domain),
        query=query,
    )


@dataclass(frozen=True)
class ShownOption:
    label: str  # in the page's language
    href: str


@dataclass(frozen=True)
class SubscribeBlock:
    """What templates/web/published_subscribe.html shows."""

    ics_url: str
    webcal_url: str
    subscribe: str  # the label of the one button without ``options``
    download: str
    options: tuple[ShownOption, ...] = ()  # the buttons, in order
    link: ShownOption | None = None  # the https link, shown to copy
    qr: Markup | None = None  # the webcal link's QR code, inline SVG
    qr_caption: str = ""


def _subscribe_block(calendar: str, lang: str, ics_url: str, webcal_url: str) -> SubscribeBlock:
    """The buttons in the default order (a page has no recipient), the link to copy,
    and the webcal link's QR code.

    Only for absolute addresses: the WebDAV copy links its .ics by file name, which
    no provider could fetch and no phone could scan, so it keeps the plain links.
    """
    plain = SubscribeBlock(
        ics_url,
        webcal_url,
        wording.text("page.subscribe", lang),
        wording.text("page.download", lang),
    )
    if not is_webcal(webcal_url):
        return plain
    options = subscribe_options(ics_url, webcal_url, None, calendar)
    shown = [(ShownOption(wording.text(o.label, lang), o.href), o.is_copy) for o in options]
    # segno's own markup, the label escaped by it and by qr_svg: safe to place as is
    qr = Markup(qr_svg(webcal_url, wording.text("subscribe.qr_label", lang)))
    return replace(
        plain,
        options=tuple(option for option, copy in shown if not copy),
        link=next((option for option, copy in shown if copy), None),
        qr=qr,
        qr_caption=wording.text("subscribe.qr", lang),
    )
