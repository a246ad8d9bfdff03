"""Publish a calendar: an HTML link and an ICS link for anyone who has them; unpublish kills both.

The links carry a secret (the same 128-bit codec as invitations, a value of its
own), shown once to the owner and stored only as its hash. The level is capped
by ``policy.publish_max_level``, as anonymous viewers warrant. Publishing again
retires the old links (410) and makes new ones.

With ``--webdav URL`` the same calendar is also written as NAME.ics and NAME.html
into a WebDAV folder, and written again whenever the calendar is re-imported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from calshare.calendars import Calendar, get_calendar, utc_text
from calshare.clock import Clock
from calshare.config import Settings
from calshare.errors import PublishRefused, UsageError, WebDavError
from calshare.feeds import GONE, FeedMaker
from calshare.levels import Level, lower_of
from calshare.pages import published_html
from calshare.ranges import DateRange
from calshare.store import Store
from calshare.tokens import RandomBytes, log_id, new_token, parse_token, token_hash
from calshare.views import visible_occurrences
from calshare.webdav import Credentials, check_collection, delete, put

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Links:
    html: str
    ics: str
    webcal: str


@dataclass(frozen=True)
class Published:
    calendar: str
    level: Level
    capped: bool  # policy lowered the level asked for
    links: Links
    webdav: str | None  # the folder the files went to


@dataclass(frozen=True)
class Publication:
    id: int
    calendar: str
    level: Level
    created_at: str
    webdav_url: str | None
    ics_etag: str | None
    html_etag: str | None


def links(base_url: str, secret: str) -> Links:
    html = f"{base_url}/p/{secret}"
    ics = f"{html}.ics"
    return Links(html, ics, "webcal" + ics[ics.index("://") :])


def _live(db: Database, calendar_id: int) -> Publication | None:
    row = db.execute(
        """SELECT p.id, c.name, p.level, p.created_at, p.webdav_url, p.webdav_ics_etag,
                  p.webdav_html_etag
           FROM publications p JOIN calendars c ON c.id = p.calendar_id
           WHERE p.calendar_id = ? AND p.revoked_at IS NULL""",
        [calendar_id],
    ).fetchone()
    return None if row is None else Publication(row[0], row[1], Level(row[2]), *row[3:])


def find_publication(db: Database, secret_text: str) -> Publication | str | None:
    """The live publication a secret names; GONE if it was unpublished; None if never."""
    secret = parse_token(secret_text)
    if secret is None:
        return None
    row = db.execute(
        """SELECT p.id, c.name, p.level, p.created_at, p.webdav_url, p.webdav_ics_etag,
                  p.webdav_html_etag, p.revoked_at
           FROM publications p JOIN calendars c ON c.id = p.calendar_id
           WHERE p.secret_hash = ?""",
        [token_hash(secret)],
    ).fetchone()
    if row is None:
        return None
    if row[7] is not None:
        return GONE
    return Publication(row[0], row[1], Level(row[2]), *row[3:7])


def allowed_level(settings: Settings, wanted: Level) -> tuple[Level, bool]:
    highest = settings.policy.publish_max_level
    if highest is None:
        raise PublishRefused(
            "publishing is turned off on this server (setting policy.publish_max_level)"
        )
    level = lower_of(wanted, highest)
    return level, level is not wanted


def publish(
    store: Store,
    settings: Settings,
    clock: Clock,
    calendar_name: str,
    level: Level,
    *,
    webdav: str | None = None,
    random_bytes: RandomBytes | None = None,
) -> Published:
    """New links for the calendar (the old ones answer 410 from now on)."""
    calendar = get_calendar(store.db, calendar_name)
    level, capped = allowed_level(settings, level)
    folder = check_collection(webdav) if webdav else None
    if calendar.imported_at is None:
        raise UsageError(
            f"{calendar.name!r} has no events yet; import it first: "
            f"calshare calendar import {calendar.name} FILE_OR_URL"
        )
    secret = new_token(random_bytes) if random_bytes else new_token()
    now = clock.now()
    etags: tuple[str | None, str | None] = (None, None)
    if folder is not None:
        # the files first: if the server refuses, nothing is published and nothing changed
        live = _live(store.db, calendar.id)
        previous = (live.ics_etag, live.html_etag) if live and live.webdav_url == folder else None
        etags = _push_files(store, settings, calendar, level, folder, previous or (None, None), now)
    with store.write() as db:
        db.execute(
            "UPDATE publications SET revoked_at = ? WHERE calendar_id = ? AND revoked_at IS NULL",
            [utc_text(now), calendar.id],
        )
        db.execute(
            """INSERT INTO publications (calendar_id, secret_hash, level, created_at, webdav_url,
                   webdav_ics_etag, webdav_html_etag)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            [calendar.id, token_hash(secret), level.value, utc_text(now), folder, *etags],
        )
        db.execute(
            "INSERT INTO audit (at, action, calendar_id, subject, detail) VALUES (?, ?, ?, ?, ?)",
            [utc_text(now), "published", calendar.id, log_id(secret), f"level {level}"],
        )
    log.info("published %s at %s, secret %s", calendar.name, level, log_id(secret))
    return Published(calendar.name, level, capped, links(settings.http.base_url, secret), folder)


def unpublish(store: Store, settings: Settings, clock: Clock, calendar_name: str) -> Publication:
    """Both links answer 410 from now on; files pushed to WebDAV are deleted."""
    calendar = get_calendar(store.db, calendar_name)
    now = clock.now()
    with store.write() as db:
        live = _live(db, calendar.id)
        if live is None:
            raise UsageError(f"{calendar.name!r} is not published")
        db.execute("UPDATE publications SET revoked_at = ? WHERE id = ?", [utc_text(now), live.id])
        db.execute(
            "INSERT INTO audit (at, action, calendar_id, subject, detail) VALUES (?, ?, ?, ?, ?)",
            [utc_text(now), "unpublished", calendar.id, str(live.id), f"level {live.level}"],
        )
    if live.webdav_url:
        credentials = _credentials(settings)
        failed: list[tuple[str, WebDavError]] = []
        for suffix, etag in ((".ics", live.ics_etag), (".html", live.html_etag)):
            name = calendar.name + suffix
            try:
                delete(live.webdav_url + name, credentials, etag)
            except WebDavError as exc:  # try the other file all the same
                failed.append((name, exc))
        if failed:
            said = "; ".join(f"{name} remains: {exc}" for name, exc in failed)
            raise WebDavError(f"The links are withdrawn, but on WebDAV {said}", failed[0][1].status)
    return live


def _credentials(settings: Settings) -> Credentials:
    webdav = settings.webdav
    return Credentials(webdav.username, webdav.password, webdav.timeout_seconds)


def render_files(
    store: Store, settings: Settings, calendar: Calendar, level: Level, now: datetime
) -> tuple[bytes, str]:
    """The .ics (the feed's window) and the static page (its next 60 days) for WebDAV."""
    maker = FeedMaker(settings)
    ics = maker.body(
        store, maker.version(store, calendar.name, level, utc_text(now), now), now
    ).plain
    today = now.astimezone(calendar.zoneinfo).date()
    days = DateRange(today, today.fromordinal(today.toordinal() + 59), calendar.zoneinfo)
    found = visible_occurrences(
        store,
        calendar,
        days.start,
        days.end,
        level,
        include_private=False,
        now=now,
        limit_years=settings.calendars.index_limit_years,
    )
    ics_name = f"{calendar.name}.ics"
    html = published_html(
        calendar=calendar.name,
        zone=calendar.zone,
        owner=calendar.owner_name or calendar.owner,
        level=level,
        days=days,
        occurrences=found,
        lang=settings.mail.lang,
        ics_url=ics_name,  # beside the page in the same folder
        webcal_url=ics_name,
        nav=None,
        domain=settings.mail.domain,
    )
    return ics, html


def _push_files(
    store: Store,
    settings: Settings,
    calendar: Calendar,
    level: Level,
    folder: str,
    etags: tuple[str | None, str | None],
    now: datetime,
) -> tuple[str | None, str | None]:
    """PUT NAME.ics and NAME.html; If-Match with the ETags of our last write, if any."""
    ics, html = render_files(store, settings, calendar, level, now)
    credentials = _credentials(settings)
    base = folder + calendar.name
    ics_etag = put(base + ".ics", ics, "text/calendar; charset=utf-8", credentials, etags[0])
    html_etag = put(
        base + ".html", html.encode("utf-8"), "text/html; charset=utf-8", credentials, etags[1]
    )
    return ics_etag, html_etag


def push(store: Store, settings: Settings, clock: Clock, calendar_name: str) -> bool:
    """Write the calendar's files again to its WebDAV folder, if it is published there.

    Called after a re-import. If-Match carries the ETags of our last write, so a file
    changed by someone else is refused (412) rather than overwritten. Returns
    whether anything was pushed.
    """
    calendar = get_calendar(store.db, calendar_name)
    live = _live(store.db, calendar.id)
    if live is None or not live.webdav_url:
        return False
    etags = _push_files(
        store,
        settings,
        calendar,
        live.level,
        live.webdav_url,
        (live.ics_etag, live.html_etag),
        clock.now(),
    )
    with store.write() as db:
        db.execute(
            "UPDATE publications SET webdav_ics_etag = ?, webdav_html_etag = ? WHERE id = ?",
            [*etags, live.id],
        )
    return True
