"""The published page as a calendar: month grid, week with a time axis, list, embedding.

The layout functions are pure and tested on their own; the page is then fetched
from the daemon (aiohttp on 127.0.0.1, a real SQLite store) and parsed with lxml
for its structure: tables with column headers, today marked, navigation, the
level's hidden fields absent, the embed CSP, and a 400 for a bad query.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from calshare.busy import Busy
from calshare.config import load_settings
from calshare.errors import ConfigError
from calshare.occurrence import Occurrence
from calshare.pages import (
    DAY_MINUTES,
    View,
    day_hours,
    month_rows,
    navigation,
    skipped_hours,
    view_of,
    week_days,
)
from calshare.ranges import DateRange
from calshare.schedule import arrange
from mailer.snapshot import schedule_words
from tests.support.calpage import Published, publish, served, start_daemon, week_calendar
from tests.support.web import http

__all__ = ["served", "week_calendar"]  # fixtures

OSLO = ZoneInfo("Europe/Oslo")
Serve = Callable[[str], Published]


def timed(uid: str, start: datetime, end: datetime, summary: str = "") -> Occurrence:
    return Occurrence(uid, start, end, False, Busy.BUSY, summary=summary or uid)


def oslo(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=OSLO)  # type: ignore[misc]


def laid_out(view: View, occurrences: list[Occurrence], today: date) -> Any:
    schedule = arrange(occurrences, view.grid, words=schedule_words("en"), daily=True)
    if view.kind == "week":
        return week_days(schedule, view, today)
    return month_rows(schedule, view, today)


# --- the layout, pure


def test_overlapping_events_stand_side_by_side_and_others_take_the_width() -> None:
    view = view_of("week", date(2027, 3, 23), OSLO)
    days = laid_out(
        view,
        [
            timed("a", oslo(2027, 3, 23, 10), oslo(2027, 3, 23, 11, 30)),
            timed("b", oslo(2027, 3, 23, 10, 30), oslo(2027, 3, 23, 12)),
            timed("c", oslo(2027, 3, 23, 11), oslo(2027, 3, 23, 11, 15)),
            timed("d", oslo(2027, 3, 23, 14), oslo(2027, 3, 23, 15)),
            timed("e", oslo(2027, 3, 23, 15), oslo(2027, 3, 23, 16)),  # touches d: no overlap
        ],
        date(2027, 3, 23),
    )
    tuesday = days[1]
    blocks = {b.entry.occurrence.uid: b for hour in tuesday.blocks for b in hour}
    assert {uid: (b.lane, b.lanes) for uid, b in blocks.items()} == {
        "a": (0, 3),
        "b": (1, 3),
        "c": (2, 3),
        "d": (0, 1),
        "e": (0, 1),
    }
    assert blocks["a"].hour == 10 and blocks["c"].hour == 11
    assert "width: 33.33%" in blocks["b"].style and "left: 33.33%" in blocks["b"].style
    assert "top: 1.25rem" in blocks["b"].style and "height: 3.75rem" in blocks["b"].style


def test_an_event_across_midnight_is_on_both_days() -> None:
    view = view_of("week", date(2027, 3, 24), OSLO)
    days = laid_out(
        view, [timed("night", oslo(2027, 3, 24, 23), oslo(2027, 3, 25, 1))], date(2027, 3, 24)
    )
    (first,) = days[2].blocks[23]
    (second,) = days[3].blocks[0]
    assert (first.start, first.end) == (23 * 60, DAY_MINUTES)
    assert (second.start, second.end) == (0, 60)
    assert first.entry.when == "23:00 – Thu 01:00" and second.entry.when == "until 01:00"
    assert not any(day.all_day for day in days)


def test_all_day_and_multi_day_events_fill_the_all_day_row_and_every_month_cell() -> None:
    trip = Occurrence("trip", date(2027, 3, 25), date(2027, 3, 28), True, Busy.OOF, summary="T")
    conference = timed("conf", oslo(2027, 3, 22, 18), oslo(2027, 3, 24, 12))
    week = laid_out(view_of("week", date(2027, 3, 22), OSLO), [trip, conference], date(2027, 3, 22))
    assert [[e.occurrence.uid for e in day.all_day] for day in week] == [
        [], ["conf"], [], ["trip"], ["trip"], ["trip"], []
    ]  # fmt: skip
    assert [b.entry.occurrence.uid for b in week[0].blocks[18]] == ["conf"]
    assert [b.entry.occurrence.uid for b in week[2].blocks[0]] == ["conf"]
    rows = laid_out(view_of("month", date(2027, 3, 1), OSLO), [trip], date(2027, 3, 22))
    cells = {cell.day.day: cell for row in rows for cell in row.cells}
    assert [cells[date(2027, 3, d)].entries[0].when for d in (25, 26, 27)] == ["All day"] * 3
    assert not cells[date(2027, 3, 28)].entries


def test_the_month_grid_is_whole_weeks_and_marks_today_and_busy_days() -> None:
    view = view_of("month", date(2027, 2, 14), OSLO)
    assert view.grid == DateRange(date(2027, 2, 1), date(2027, 2, 28), OSLO)  # four weeks
    april = view_of("month", date(2027, 4, 30), OSLO)
    assert (april.grid.first, april.grid.last) == (date(2027, 3, 29), date(2027, 5, 2))
    march = view_of("month", date(2027, 3, 1), OSLO)  # begins on a Monday
    assert (march.grid.first, march.grid.last) == (date(2027, 3, 1), date(2027, 4, 4))
    many = [timed(f"m{h}", oslo(2027, 3, 5, h), oslo(2027, 3, 5, h, 30)) for h in range(8, 14)]
    rows = laid_out(march, many, date(2027, 3, 5))
    assert [len(row.cells) for row in rows] == [7] * 5
    cells = [cell for row in rows for cell in row.cells]
    assert [cell.day.day for cell in cells if cell.today] == [date(2027, 3, 5)]
    assert [cell.day.day for cell in cells if not cell.in_month] == [
        date(2027, 4, day) for day in range(1, 5)
    ]
    (busy,) = [cell for cell in cells if cell.entries]
    assert len(busy.entries) == 3 and busy.more == 3


def test_dst_days_are_23_and_25_hours_and_the_skipped_hour_is_known() -> None:
    assert day_hours(date(2027, 3, 28), OSLO) == 23
    assert day_hours(date(2027, 10, 31), OSLO) == 25
    assert day_hours(date(2027, 3, 29), OSLO) == 24
    assert skipped_hours(date(2027, 3, 28), OSLO) == {2}
    assert skipped_hours(date(2027, 10, 31), OSLO) == set()
    assert skipped_hours(date(2027, 3, 28), ZoneInfo("UTC")) == set()
    spring = laid_out(
        view_of("week", date(2027, 3, 28), OSLO),
        [timed("s", oslo(2027, 3, 28, 1, 30), oslo(2027, 3, 28, 3, 30))],
        date(2027, 3, 28),
    )
    (block,) = spring[6].blocks[1]
    assert (block.start, block.end) == (90, 210)  # on the wall clock, as the axis reads
    # 01:30 summer time to 01:30 winter time: one wall-clock moment, an hour long
    fold_start = datetime(2027, 10, 31, 1, 30, tzinfo=OSLO).astimezone(UTC)
    autumn = laid_out(
        view_of("week", date(2027, 10, 31), OSLO),
        [timed("f", fold_start, fold_start + timedelta(hours=1))],
        date(2027, 10, 31),
    )
    (block,) = autumn[6].blocks[1]
    assert (block.start, block.end) == (90, 150)


def test_navigation_stays_in_the_served_days_and_keeps_the_view() -> None:
    week = view_of("week", date(2027, 3, 24), OSLO)
    nav = navigation(week, date(2027, 3, 24), date(2027, 3, 1), date(2027, 3, 31), "en")
    assert nav.previous.url == "?view=week&date=2027-03-15"
    assert nav.next.url == "?view=week&date=2027-03-29"
    assert nav.today.current and nav.today.url == "?view=week&date=2027-03-24"
    assert [(link.label, link.url, link.current) for link in nav.views] == [
        ("Month", "?view=month&date=2027-03-24", False),
        ("Week", "?view=week&date=2027-03-24", True),
        ("List", "?view=agenda&date=2027-03-24", False),
    ]
    edge = navigation(week, date(2027, 3, 24), date(2027, 3, 22), date(2027, 3, 28), "nb")
    assert edge.previous.url is None and edge.next.url is None
    assert edge.previous.label == "Uke 11" and edge.today.label == "I dag"
    month = view_of("month", date(2027, 4, 9), OSLO)
    embedded = navigation(month, date(2027, 3, 24), date(2027, 3, 1), date(2028, 3, 1), "en",
                          embed=True)  # fmt: skip
    assert embedded.previous.url == "?view=month&date=2027-03-01&embed=1"
    assert embedded.previous.label == "March 2027" and not embedded.today.current


def test_embed_origins_are_checked_origins() -> None:
    env = {"CALSHARE_HTTP_EMBED_ORIGINS": "https://Intranet.example.org/, http://w.example:8080"}
    assert load_settings(None, env=env).http.embed_origins == (
        "https://intranet.example.org",
        "http://w.example:8080",
    )
    assert load_settings(None, env={}).http.embed_origins == ()
    for bad in ("intranet.example.org", "https://x.example/wiki", "*", "https://x.example?q",
                "ftp://x.example", "https://a.example 'unsafe-inline'"):  # fmt: skip
        with pytest.raises(ConfigError, match="not an origin"):
            load_settings(None, env={"CALSHARE_HTTP_EMBED_ORIGINS": bad})


# --- the page, served


def texts(nodes: list[Any]) -> list[str]:
    return [" ".join(node.text_content().split()) for node in nodes]


@pytest.mark.network
def test_the_month_is_a_table_with_weekday_headers_today_and_navigation(served: Serve) -> None:
    page = served("titles").page()  # no query: this month, today marked
    (grid,) = page.xpath("//table[contains(@class, 'month')]")
    assert texts(grid.xpath("./thead/tr/th[@scope='col']")) == [
        "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
    ]  # fmt: skip
    assert grid.xpath("./thead/tr/th[@scope='col']/@abbr")[:2] == ["Mon", "Tue"]
    rows = grid.xpath("./tbody/tr")
    assert len(rows) == 5 and all(len(row.xpath("./td")) == 7 for row in rows)
    (today,) = grid.xpath(".//td[@aria-current='date']")
    assert today.xpath(".//time/@datetime") == ["2027-03-24"]
    assert page.xpath("//h1/text()") == ["week"] and texts(page.xpath("//h2")) == ["March 2027"]
    about = texts(page.xpath("//p[@class='about']"))[0]
    assert "Times are in Europe/Oslo (Central European" in about
    assert "the times, titles and locations of the events" in about
    # the trip on each of its days; the busy Friday shows three and links to its week
    cells = {cell.xpath(".//time/@datetime")[0]: cell for cell in grid.xpath(".//td")}
    for day in ("2027-03-25", "2027-03-26", "2027-03-27"):
        assert "All day Conference trip" in texts([cells[day]])[0]
    assert "Conference trip" not in texts([cells["2027-03-28"]])[0]
    assert cells["2027-03-26"].xpath(".//a[@class='more']/@href") == ["?view=week&date=2027-03-26"]
    assert texts(cells["2027-03-26"].xpath(".//a[@class='more']")) == ["3 more"]
    # navigation: real links, in the page's order
    assert page.xpath("//nav[@class='dates']//a/@href") == [
        "?view=month&date=2027-02-01", "?view=month&date=2027-03-24",
        "?view=month&date=2027-04-01",
    ]  # fmt: skip
    assert texts(page.xpath("//nav[@class='dates']//a")) == [
        "‹ February 2027", "Today", "April 2027 ›",
    ]  # fmt: skip
    assert page.xpath("//nav[@class='views']//a[@aria-current='page']/text()") == ["Month"]
    assert page.xpath("//script") == []
    assert page.xpath("//a[starts-with(@href, 'webcal://')]")  # subscribe stays


@pytest.mark.network
def test_the_week_has_a_time_axis_overlaps_midnight_and_the_clock_change(served: Serve) -> None:
    published = served("titles")
    page = published.page("?view=week&date=2027-03-26")
    (grid,) = page.xpath("//table[contains(@class, 'week')]")
    headers = texts(grid.xpath("./thead/tr/th[@scope='col']"))
    assert headers[0] == "Time" and headers[1] == "Monday 22 March"
    assert headers[7] == "Sunday 28 March23 hours: clocks go forward"
    assert texts(grid.xpath("./thead/tr/th[@aria-current='date']")) == ["Wednesday 24 March"]
    rows = grid.xpath("./tbody/tr")
    assert texts([row.xpath("./th[@scope='row']")[0] for row in rows]) == [
        "All day",
        *(f"{hour:02d}:00" for hour in range(24)),
    ]
    assert texts(page.xpath("//h2")) == ["Week 12: Mon 22 Mar – Sun 28 Mar 2027"]

    def cell(hour: int | None, weekday: int) -> Any:
        return rows[0 if hour is None else hour + 1].xpath("./td")[weekday]

    tuesday = cell(10, 1).xpath("./div[contains(@class, 'event')]") + cell(11, 1).xpath("./div")
    assert texts(tuesday) == [
        "10:00 – 11:30 Overlap A · Busy · Room Loc1",
        "10:30 – 12:00 Overlap B · Busy",
        "11:00 – 11:15 Overlap C · Busy",
    ]
    lefts = [div.get("style").split("left: ")[1].split(";")[0] for div in tuesday]
    assert lefts == ["0.00%", "33.33%", "66.67%"]
    assert "width: 100.00%" in cell(14, 1).xpath("./div/@style")[0]
    assert texts(cell(23, 2).xpath("./div")) == ["23:00 – Thu 01:00 Night crossing · Busy"]
    assert texts(cell(0, 3).xpath("./div")) == ["until 01:00 Night crossing · Busy"]
    assert [bool(texts([cell(None, day)])[0]) for day in range(7)] == [
        False, False, False, True, True, True, False
    ]  # fmt: skip
    assert "skipped" in cell(2, 6).get("class")
    assert not any("skipped" in cell(hour, 6).get("class") for hour in (1, 3))
    assert texts(cell(1, 6).xpath("./div")) == ["01:30 – 03:30 Across spring · Busy"]
    autumn = published.page("?view=week&date=2027-10-31")
    (header,) = autumn.xpath("//table//th[contains(., 'Sunday 31 October')]")
    assert "25 hours: clocks go back" in texts([header])[0]


@pytest.mark.network
def test_the_list_view_and_the_narrow_screen_list(served: Serve) -> None:
    published = served("titles")
    page = published.page("?view=agenda&date=2027-03-05")
    assert page.xpath("//table") == []
    days = page.xpath("//section[@class='agenda-day']")
    assert texts([day.xpath("./h3")[0] for day in days])[:3] == [
        "Tuesday 23 March", "Wednesday 24 March", "Thursday 25 March",
    ]  # fmt: skip
    assert page.xpath("//section[@aria-current='date']//h3/time/@datetime") == ["2027-03-24"]
    # the month's own page carries the same list for narrow screens (a media query)
    month = published.get("?view=month&date=2027-03-05").text
    assert "@media (max-width: 720px)" in month and 'class="agenda-day"' in month


LEVELS = {
    "free-busy": ((), ("Overlap A", "Loc1", "Desc1", "Org Name1", "att1@", "Cat1", "url1")),
    "titles": (("Overlap A", "Loc1"), ("Desc1", "Org Name1", "att1@", "Cat1", "url1")),
    "details": (("Overlap A", "Loc1", "Desc1"), ("org1@", "att1@")),
}


@pytest.mark.network
@pytest.mark.parametrize("level", list(LEVELS))
def test_each_view_shows_what_its_level_shows_and_nothing_it_hides(
    served: Serve, level: str
) -> None:
    published = served(level)
    shown, hidden = LEVELS[level]
    for query in ("", "?view=week&date=2027-03-23", "?view=agenda&date=2027-03-23",
                  "?view=month&date=2027-03-23&embed=1"):  # fmt: skip
        page = published.get(query)
        assert page.status == 200, page.text
        for text in shown:
            assert text in page.text, (level, query, text)
        for text in hidden:
            assert text not in page.text, (level, query, text)
    if level == "free-busy":
        week = published.page("?view=week&date=2027-03-23")
        assert "10:00 – 11:30 Busy" in texts(week.xpath("//div[contains(@class, 'event')]"))


@pytest.mark.network
@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("?view=year", "view must be one of: month, week, agenda"),
        ("?view=", "view must be one of"),
        ("?date=2027-13-01", "date must be a day like 2026-12-01"),
        ("?date=tomorrow", "date must be a day like 2026-12-01"),
        ("?date=20270301", "date must be a day like 2026-12-01"),
        ("?view=week&date=2027-02-30", "date must be a day like"),
        ("?month=March", "month must look like 2026-12"),
        ("?view=week&date=9999-12-31", "years 1900 to 2199"),
        ("?view=month&date=0001-01-01", "years 1900 to 2199"),
        ("?month=9999-12", "month must look like 2026-12 (years 1900 to 2199)"),
        ("?embed=yes", "embed must be 1"),
    ],
)
def test_a_bad_query_is_a_400_saying_what_is_right(served: Serve, query: str, says: str) -> None:
    got = served("titles").get(query)
    assert got.status == 400 and says in got.text, (got.status, got.text)
    assert "Traceback" not in got.text and "File " not in got.text
    assert "frame-ancestors 'none'" in got.headers["Content-Security-Policy"]


@pytest.mark.network
def test_days_outside_the_feed_window_are_not_served(served: Serve) -> None:
    published = served("titles")
    far = published.get("?view=week&date=2199-01-01")
    assert far.status == 404 and "This page shows the days from 2027-02-01" in far.text
    assert published.get("?view=week&date=2027-02-01").status == 200
    assert published.get("?view=week&date=2027-01-31").status == 404
    # a week begun before the first served day, as a month grid's "more" link asks for it
    assert published.get("?view=week&date=2027-01-28").status == 404
    assert published.get("?view=agenda&date=2027-01-31").status == 404


@pytest.mark.network
def test_embed_is_framed_only_by_the_configured_origins(served: Serve) -> None:
    published = served("titles")
    embedded = published.get("?embed=1&view=week&date=2027-03-24")
    assert embedded.status == 200
    policy = embedded.headers["Content-Security-Policy"]
    assert "frame-ancestors https://intranet.example.org http://127.0.0.1:1;" in policy
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert "X-Frame-Options" not in embedded.headers
    page = published.page("?embed=1&view=week&date=2027-03-24")
    assert page.xpath("//body/@class") == ["view-week embed"]
    hrefs = page.xpath("//nav//a/@href")
    assert hrefs and all(href.endswith("&embed=1") for href in hrefs)
    # the same page without embed=1: nobody may frame it
    plain = published.get("?view=week&date=2027-03-24")
    assert "frame-ancestors 'none'" in plain.headers["Content-Security-Policy"]
    assert plain.headers["X-Frame-Options"] == "DENY"
    # a revalidation of the embed view keeps its policy
    again = published.get(
        "?embed=1&view=week&date=2027-03-24", **{"If-None-Match": embedded.headers["ETag"]}
    )
    assert again.status == 304 and "intranet" in again.headers["Content-Security-Policy"]


@pytest.mark.network
def test_embed_without_configured_origins_is_framed_by_nobody(
    cli: Any, week_calendar: None, db_path: Any, clock: Any
) -> None:
    inbox = start_daemon(db_path, clock, "")
    try:
        got = http(inbox.web + publish(cli, "titles") + "?embed=1")
        assert got.status == 200
        assert "frame-ancestors 'none'" in got.headers["Content-Security-Policy"]
        assert got.headers["X-Frame-Options"] == "DENY"
    finally:
        inbox.stop()


def test_the_static_copy_is_a_list_of_sixty_days() -> None:
    from calshare.pages import static_view

    view = static_view(date(2027, 3, 24), OSLO)
    assert (view.kind, view.days.first, view.days.last) == (
        "agenda",
        date(2027, 3, 24),
        date(2027, 5, 22),
    )
    assert view.grid == view.days


def render(view: View, occurrences: list[Occurrence], lang: str = "en") -> str:
    from calshare.levels import Level
    from calshare.pages import published_html

    nav = navigation(view, date(2027, 3, 24), date(2027, 1, 1), date(2027, 12, 31), lang)
    return published_html(
        calendar="c", zone="Europe/Oslo", owner="Ann", level=Level.DETAILS, view=view,
        occurrences=occurrences, lang=lang, ics_url="c.ics", webcal_url="webcal://x/c.ics",
        nav=nav, domain="share.example.org", today=date(2027, 3, 24),
    )  # fmt: skip


def test_hostile_text_is_escaped_in_every_view() -> None:
    hostile = timed("h", oslo(2027, 3, 24, 9), oslo(2027, 3, 24, 10))._replace(
        summary="<script>alert('t')</script>",
        location='"><img src=x onerror=alert(1)>',
        description="</style><style>body{display:none}</style>",
    )
    for kind in ("month", "week", "agenda"):
        page = render(view_of(kind, date(2027, 3, 24), OSLO), [hostile])
        assert "<script" not in page and "<img" not in page, kind
        assert page.count("<style>") == 1 and "&lt;script&gt;alert(&#39;t&#39;)" in page, kind


def test_the_page_speaks_norwegian_when_the_calendar_does() -> None:
    page = render(view_of("week", date(2027, 3, 24), OSLO), [], lang="nb")
    words = ['<html lang="nb">', "mandag 22. mars", "Uke 12", "I dag", "Måned", "Liste"]
    words += ["Hele dagen", "Tid", "23 timer: klokken stilles fram", "Tidene er i"]
    for word in words:
        assert word in page, word
    assert "Today" not in page and "Monday" not in page


@pytest.mark.network
def test_a_week_reaching_into_the_served_days_is_served(served: Serve, clock: Any) -> None:
    """The month grid's first row starts before the month (a "more" link can point there):
    its week is served when it reaches into the window."""
    published = served("titles")
    clock.at = datetime(2027, 5, 10, 9, 0, tzinfo=UTC)  # the window starts on Thursday 1 April
    assert published.get("?view=week&date=2027-03-30").status == 200
    assert published.get("?view=week&date=2027-03-28").status == 404
    april = published.page("?view=month&date=2027-04-01")
    assert april.xpath("//nav[@class='dates']//a[@rel='prev']") == []
