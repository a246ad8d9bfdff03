"""Publish a calendar: an HTML link and an ICS link for anyone who has them; unpublish kills both.

The links carry a secret (the same 128-bit codec as invitations, a value of its
own), shown once to the owner and stored only as its hash. The level is capped
by ``policy.publish_max_level``, as anonymous viewers warrant. Publishing again
retires the old links (410) and makes new ones.

With ``--webdav URL`` the same calendar is also written as NAME.ics and NAME.html
into a WebDAV folder, and written again whenever the calendar is re-imported. The
``webdav_files`` table mirrors what is out there, row by row as each PUT or DELETE
succeeds, so a failure halfway is finished by the next publish, import or
unpublish, and a copy is never left behind at a level the owner has moved away from.

Policy is applied when a link is used, too (``served_level``): an operator who
lowers ``policy.publish_max_level`` lowers every existing publication with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlite_utils import Database

from calshare.calendars import Calendar, get_calendar, utc_text
from calshare.clock import Clock
from calshare.config import Settings
from calshare.errors import PublishRefused, UsageError, WebDavError
from calshare.expansion import Caps
from calshare.feeds import GONE, feed_ics
from calshare.levels import Level, lower_of
from calshare.pages import Nav, published_html
from calshare.ranges import DateRange
from calshare.sharing import audit
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
    webdav_error: str | None = None  # the links work; the WebDAV copy failed (why)


@dataclass(frozen=True)
class Publication:
    id: int
    calendar: str
    level: Level
    created_at: str
    webdav_url: str | None


_COLUMNS = "p.id, c.name, p.level, p.created_at, p.webdav_url"


def links(base_url: str, secret: str) -> Links:
    html = f"{base_url}/p/{secret}"
    ics = f"{html}.ics"
    return Links(html, ics, "webcal" + ics[ics.index("://") :])


def _live(db: Database, calendar_id: int) -> Publication | None:
    row = db.execute(
        f"""SELECT {_COLUMNS} FROM publications p JOIN calendars c ON c.id = p.calendar_id
            WHERE p.calendar_id = ? AND p.revoked_at IS NULL""",
        [calendar_id],
    ).fetchone()
    return None if row is None else Publication(row[0], row[1], Level(row[2]), row[3], row[4])


def find_publication(db: Database, secret_text: str) -> Publication | str | None:
    """The live publication a secret names; GONE if it was unpublished; None if never."""
    secret = parse_token(secret_text)
    if secret is None:
        return None
    row = db.execute(
        f"""SELECT {_COLUMNS}, p.revoked_at
            FROM publications p JOIN calendars c ON c.id = p.calendar_id
            WHERE p.secret_hash = ?""",
        [token_hash(secret)],
    ).fetchone()
    if row is None:
        return None
    if row[5] is not None:
        return GONE
    return Publication(row[0], row[1], Level(row[2]), row[3], row[4])


def allowed_level(settings: Settings, wanted: Level) -> tuple[Level, bool]:
    highest = settings.policy.publish_max_level
    if highest is None:
        raise PublishRefused(
            "publishing is turned off on this server (setting policy.publish_max_level)"
        )
    level = lower_of(wanted, highest)
    return level, level is not wanted


def served_level(settings: Settings, stored: Level) -> Level | None:
    """The level a publication shows now: policy may have been lowered since (None: off)."""
    highest = settings.policy.publish_max_level
    return None if highest is None else lower_of(stored, highest)


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
    """New links for the calendar (the old ones answer 410 from now on).

    Copies on WebDAV in any other folder (or all of them, without ``webdav``) are
    removed first: if that fails nothing changes. If writing the new copy fails, the
    new links still stand and ``webdav_error`` says what to do.
    """
    calendar = get_calendar(store.db, calendar_name)
    level, capped = allowed_level(settings, level)
    folder = check_collection(webdav) if webdav else None
    if calendar.imported_at is None:
        raise UsageError(
            f"{calendar.name!r} has no events yet; import it first: "
            f"calshare calendar import {calendar.name} FILE_OR_URL"
        )
    failed = _delete_files(store, settings, calendar.id, keep=folder)
    if failed:
        raise WebDavError(f"Nothing was published: {_failures(failed)}", failed[0][1].status)
    secret = new_token(random_bytes) if random_bytes else new_token()
    now = clock.now()
    with store.write() as db:
        db.execute(
            "UPDATE publications SET revoked_at = ? WHERE calendar_id = ? AND revoked_at IS NULL",
            [utc_text(now), calendar.id],
        )
        db.execute(
            """INSERT INTO publications (calendar_id, secret_hash, level, created_at, webdav_url)
               VALUES (?, ?, ?, ?, ?)""",
            [calendar.id, token_hash(secret), level.value, utc_text(now), folder],
        )
        audit(db, now, "published", calendar.id, log_id(secret), f"level {level}")
    log.info("published %s at %s, secret %s", calendar.name, level, log_id(secret))
    problem = None
    if folder is not None:
        try:
            _push_files(store, settings, calendar, level, folder, now)
        except WebDavError as exc:
            problem = (
                f"{exc}. The links work; the WebDAV copy is written again by the next "
                f"`calshare calendar import {calendar.name}` or `calshare publish`"
            )
    return Published(
        calendar.name, level, capped, links(settings.http.base_url, secret), folder, problem
    )


def unpublish(store: Store, settings: Settings, clock: Clock, calendar_name: str) -> str:
    """Both links answer 410 from now on; copies on WebDAV are deleted.

    The links die first, whatever the WebDAV server says. A copy that could not be
    deleted stays recorded, and running unpublish again tries again.
    """
    calendar = get_calendar(store.db, calendar_name)
    now = clock.now()
    with store.write() as db:
        live = _live(db, calendar.id)
        if live is not None:
            db.execute(
                "UPDATE publications SET revoked_at = ? WHERE id = ?", [utc_text(now), live.id]
            )
            audit(db, now, "unpublished", calendar.id, str(live.id), f"level {live.level}")
    leftovers = bool(_files(store.db, calendar.id))
    if live is None and not leftovers:
        raise UsageError(f"{calendar.name!r} is not published")
    failed = _delete_files(store, settings, calendar.id, keep=None)
    if failed:
        first = "The links are withdrawn, but " if live is not None else ""
        raise WebDavError(
            f"{first}{_failures(failed)}; run `calshare unpublish {calendar.name}` again to retry",
            failed[0][1].status,
        )
    return calendar.name


def _credentials(settings: Settings) -> Credentials:
    webdav = settings.webdav
    return Credentials(webdav.username, webdav.password, webdav.timeout_seconds)


def _files(db: Database, calendar_id: int) -> dict[str, str | None]:
    rows = db.execute(
        "SELECT url, etag FROM webdav_files WHERE calendar_id = ? ORDER BY url", [calendar_id]
    ).fetchall()
    return {url: etag for url, etag in rows}


def _failures(failed: list[tuple[str, WebDavError]]) -> str:
    return "; ".join(f"{url} remains on WebDAV: {exc}" for url, exc in failed)


def _delete_files(
    store: Store, settings: Settings, calendar_id: int, *, keep: str | None
) -> list[tuple[str, WebDavError]]:
    """Delete our copies outside the folder ``keep``; each success is recorded at once."""
    credentials = _credentials(settings)
    failed = []
    for url, etag in _files(store.db, calendar_id).items():
        if keep is not None and url.startswith(keep):
            continue
        try:
            delete(url, credentials, etag)
        except WebDavError as exc:  # try the others all the same
            failed.append((url, exc))
            continue
        with store.write() as db:
            db.execute("DELETE FROM webdav_files WHERE url = ?", [url])
    return failed


def render_files(
    store: Store, settings: Settings, calendar: Calendar, level: Level, now: datetime
) -> tuple[bytes, str]:
    """The .ics (the feed's window) and the static page (its next 60 days) for WebDAV."""
    ics = feed_ics(store, settings, calendar, level, now)
    today = now.astimezone(calendar.zoneinfo).date()
    days = DateRange(today, today + timedelta(days=59), calendar.zoneinfo)
    ics_name = quote(f"{calendar.name}.ics")  # beside the page in the same folder
    html = page_html(store, settings, calendar, level, days, now, ics_name, ics_name, None)
    return ics, html


def page_html(
    store: Store,
    settings: Settings,
    calendar: Calendar,
    level: Level,
    days: DateRange,
    now: datetime,
    ics_url: str,
    webcal_url: str,
    nav: Nav | None,
) -> str:
    """The published page for ``days``: the served month view and the WebDAV copy alike."""
    found = visible_occurrences(
        store,
        calendar,
        days.start,
        days.end,
        level,
        include_private=False,
        now=now,
        limit_years=settings.calendars.index_limit_years,
        caps=Caps.of(settings.calendars),
    )
    return published_html(
        calendar=calendar.name,
        zone=calendar.zone,
        owner=calendar.owner_name or calendar.owner,
        level=level,
        days=days,
        occurrences=found,
        lang=settings.mail.lang,
        ics_url=ics_url,
        webcal_url=webcal_url,
        nav=nav,
        domain=settings.mail.domain,
    )


def _push_files(
    store: Store, settings: Settings, calendar: Calendar, level: Level, folder: str, now: datetime
) -> None:
    """PUT NAME.ics and NAME.html, each recorded as soon as the server takes it.

    If-Match carries the ETag of calshare's last write to that URL, so a file someone
    else changed is refused (412) rather than overwritten.
    """
    ics, html = render_files(store, settings, calendar, level, now)
    credentials = _credentials(settings)
    known = _files(store.db, calendar.id)
    for name, body, kind in (
        (f"{calendar.name}.ics", ics, "text/calendar; charset=utf-8"),
        (f"{calendar.name}.html", html.encode("utf-8"), "text/html; charset=utf-8"),
    ):
        url = folder + quote(name)
        etag = put(url, body, kind, credentials, known.get(url))
        with store.write() as db:
            db.execute(
                """INSERT INTO webdav_files (url, calendar_id, etag, written_at)
                   VALUES (?, ?, ?, ?)
                   ON CONFLICT (url) DO UPDATE SET etag = excluded.etag,
                       written_at = excluded.written_at""",
                [url, calendar.id, etag, utc_text(now)],
            )


def push(store: Store, settings: Settings, clock: Clock, calendar_name: str) -> bool:
    """Write the calendar's WebDAV copy again, if it is published there (after an import).

    At the level policy allows now. Returns whether anything was pushed.
    """
    calendar = get_calendar(store.db, calendar_name)
    live = _live(store.db, calendar.id)
    if live is None or not live.webdav_url:
        return False
    level = served_level(settings, live.level)
    if level is None:
        raise PublishRefused("publishing is turned off on this server; unpublish it")
    _push_files(store, settings, calendar, level, live.webdav_url, clock.now())
    return True
