"""The published calendar as an HTML page: the snapshot's schedule, with subscribe links.

Pure: it takes occurrences that already passed the level filter and returns the
page. The daemon serves it month by month at /p/<secret>; publishing to WebDAV
writes the same page as a static file beside the .ics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from markupsafe import Markup

from calshare import wording
from calshare.levels import Level
from calshare.links import is_webcal
from calshare.occurrence import Occurrence
from calshare.ranges import DateRange
from calshare.schedule import arrange
from calshare.subscribe import qr_svg, subscribe_options
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
    subscribe_block = _subscribe_block(calendar, lang, ics_url, webcal_url)
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
        subscribe_block=subscribe_block,
        schedule=schedule,
        words=busy_words(lang),
        colors=COLORS,
        free_word=wording.text("snapshot.no_events", lang),
        nothing=wording.text("snapshot.nothing", lang),
        more_line=wording.text("page.more", lang, count=f"{schedule.more:,}"),
        footer=wording.text("page.footer", lang, domain=domain),
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
