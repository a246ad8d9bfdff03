"""Publish a calendar: an HTML link and an ICS link for anyone who has them; unpublish kills both.

The links carry a secret (the same 128-bit codec as invitations, a value of its
own), shown once to the owner and stored only as its hash. The level is capped
by ``policy.publish_max_level``, as anonymous viewers warrant. Publishing again
retires the old links (410) and makes new ones.

With ``--webdav URL`` the same calendar is also written as NAME.ics and NAME.html
into a WebDAV folder, and written again whenever the calendar is re-imported. The
``webdav_files`` table mirrors what is out there, row by row as each PUT or DELETE
succeeds, with the validator calshare.webdav keeps in its ``etag`` column (the
server's ETag, or ``sha256:…`` of what was written where the server gives none).

The links never wait for a WebDAV server: they are made (or withdrawn) first, and
what the server then refuses is said with exactly what stays there and what to do.
``sync`` (``calshare push``) is the retry of every WebDAV step and changes no link;
with ``force`` it replaces or deletes files someone else changed. A file calshare
did not write, or one changed since, is never replaced or deleted without ``force``.

Policy is applied when a link is used, too (``served_level``): an operator who
lowers ``policy.publish_max_level`` lowers every existing publication with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlite_utils import Database

from calshare.calendars import Calendar, calendar_by_id, get_calendar
from calshare.clock import Clock, utc_text
from calshare.config import Settings
from calshare.errors import (
    Field,
    PublishRefused,
    Remedy,
    UsageError,
    WebDavConflict,
    WebDavError,
)
from calshare.expansion import Caps
from calshare.feeds import GONE, feed_ics
from calshare.levels import Level, lower_of
from calshare.lifecycle import audit
from calshare.links import Links, published_links
from calshare.netguard import Guard
from calshare.pages import Nav, View, published_html, static_view
from calshare.store import Store
from calshare.tokens import RandomBytes, log_id, new_token, parse_token, token_hash
from calshare.views import visible_occurrences
from calshare.webdav import (
    Credentials,
    check_collection,
    collection_kind,
    delete,
    has_etag,
    put,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Published:
    calendar: str
    level: Level
    capped: bool  # policy lowered the level asked for
    links: Links
    webdav: str | None  # the folder the files went to
    webdav_files: tuple[str, ...] = ()  # the URLs written there
    webdav_etags: bool | None = None  # False: the server gives no ETags (calshare compares)
    webdav_error: str | None = None  # the links work; the WebDAV copy failed (why)
    webdav_remedies: tuple[Remedy, ...] = ()  # what the owner can do about it (errors.Remedy)


@dataclass(frozen=True)
class Publication:
    id: int
    calendar: str
    level: Level
    created_at: str
    webdav_url: str | None
    calendar_id: int  # what a page or feed reads by: two owners may share a name


_COLUMNS = "p.id, c.name, p.level, p.created_at, p.webdav_url, p.calendar_id"


def _publication(row: tuple[Any, ...]) -> Publication:
    return Publication(row[0], row[1], Level(row[2]), row[3], row[4], row[5])


def _live(db: Database, calendar_id: int) -> Publication | None:
    row = db.execute(
        f"""SELECT {_COLUMNS} FROM publications p JOIN calendars c ON c.id = p.calendar_id
            WHERE p.calendar_id = ? AND p.revoked_at IS NULL""",
        [calendar_id],
    ).fetchone()
    return None if row is None else _publication(row)


def live_publications(db: Database, owner: str) -> dict[int, Publication]:
    """The live publication of each of ``owner``'s published calendars, by calendar id.

    One query for a whole list of calendars (My calendars), not one per calendar.
    """
    rows = db.execute(
        f"""SELECT p.calendar_id, {_COLUMNS} FROM publications p
            JOIN calendars c ON c.id = p.calendar_id JOIN owners o ON o.id = c.owner_id
            WHERE o.email = ? AND p.revoked_at IS NULL""",
        [owner],
    ).fetchall()
    return {row[0]: _publication(row[1:]) for row in rows}


def live_publication(db: Database, calendar_id: int) -> Publication | None:
    """The calendar's publication whose links work now (None: not published).

    What an owner may see of it afterwards: level, since when, the WebDAV folder;
    never the links, whose secret is kept only as a hash.
    """
    return _live(db, calendar_id)


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
    if row[6] is not None:
        return GONE
    return _publication(row)


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
    owner: str | None = None,
    guard: Guard | None = None,
) -> Published:
    """New links for the calendar (the old ones answer 410 from now on).

    The links never wait for a WebDAV server: copies in any other folder (or all of
    them, without ``webdav``) are removed and the new copy written after the links
    are made, and whatever fails is said in ``webdav_error`` with what to do
    (``calshare push`` retries and keeps these links). Only a folder that is a
    CalDAV/CardDAV collection refuses the whole command: it can never hold the copy.
    ``guard``: the console's (an owner's request), checking each WebDAV connection's
    peer (``calshare.netguard``); the CLI's requests go unguarded.
    """
    calendar = get_calendar(store.db, calendar_name, owner)
    level, capped = allowed_level(settings, level)
    folder = check_collection(webdav) if webdav else None
    if calendar.imported_at is None:
        raise UsageError(
            f"{calendar.name!r} has no events yet; import it first",
            remedies=[Remedy.IMPORT],
            calendar=calendar.name,
        )
    if folder is not None:
        _refuse_dav_collection(settings, calendar.name, folder, guard)
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
    copy = _sync(store, settings, calendar, level, folder, now, force=False, guard=guard)
    error = None
    if copy.problems:
        error = "The links work and stay as they are. " + " ".join(copy.problems)
    return Published(
        calendar.name,
        level,
        capped,
        published_links(settings.http.base_url, secret),
        folder,
        copy.written,
        copy.etags,
        error,
        copy.remedies,
    )


def _refuse_dav_collection(settings: Settings, name: str, folder: str, guard: Guard | None) -> None:
    """A CalDAV calendar (or CardDAV address book) takes events, not our two files."""
    kind = collection_kind(folder, _credentials(settings, guard))
    if kind is None:
        return
    protocol = "CalDAV" if kind == "calendar" else "CardDAV"
    raise UsageError(
        f"Nothing was published: {folder} is a {protocol} {kind}, which takes single "
        f"entries, not files; publishing to WebDAV needs a plain WebDAV folder, where calshare "
        f"writes {name}.ics and {name}.html (calendar apps can subscribe to the ICS link instead)",
        field=Field.WEBDAV,
    )


@dataclass(frozen=True)
class Unpublished:
    calendar: str
    links_withdrawn: bool
    forgotten: tuple[tuple[str, str], ...]  # (url, why): left on WebDAV, no longer tracked


def unpublish(
    store: Store,
    settings: Settings,
    clock: Clock,
    calendar_name: str,
    *,
    force: bool = False,
    owner: str | None = None,
    guard: Guard | None = None,
) -> Unpublished:
    """Both links answer 410 from now on; copies on WebDAV are deleted.

    The links die first, whatever the WebDAV server says. A copy that could not be
    deleted stays recorded, and running unpublish again tries again. ``force``
    deletes copies someone changed as well, and forgets (naming them) those that
    still cannot be deleted: a server gone for good must not hold the owner forever.
    """
    calendar = get_calendar(store.db, calendar_name, owner)
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
    failed, _, forgotten = _delete_files(
        store, settings, calendar.id, keep=None, force=force, guard=guard
    )
    if failed:
        first = "The links are withdrawn (they answer 410), but " if live is not None else ""
        raise WebDavError(
            f"{first}{_remains(failed)}. Unpublishing again tries again; unpublishing with "
            "force deletes them even if someone changed them, and forgets (naming it) any it "
            "still cannot delete",
            failed[0][1].status,
            remedies=[Remedy.UNPUBLISH_AGAIN, Remedy.UNPUBLISH_FORCE],
            calendar=calendar.name,
        )
    return Unpublished(
        calendar.name, live is not None, tuple((url, str(exc)) for url, exc in forgotten)
    )


@dataclass(frozen=True)
class Copy:
    """What bringing the WebDAV side in line with a publication did."""

    folder: str | None
    written: tuple[str, ...]  # URLs written, in order
    etags: bool | None  # whether the server gave ETags (None: nothing written)
    removed: tuple[str, ...]  # old copies deleted
    forgotten: tuple[tuple[str, str], ...]  # (url, why): left on WebDAV, no longer tracked
    problems: tuple[str, ...]  # sentences: what failed and what to do, in plain words
    remedies: tuple[Remedy, ...] = ()  # the same "what to do", for an edge to offer


def sync(
    store: Store,
    settings: Settings,
    clock: Clock,
    calendar_name: str,
    *,
    force: bool = False,
    owner: str | None = None,
    guard: Guard | None = None,
) -> Copy:
    """Write the live publication's WebDAV copy and remove copies elsewhere; links stay.

    The retry after any WebDAV failure of publish, import or unpublish: it changes
    no link. ``force`` replaces or deletes files someone else changed (or that
    calshare did not write), and forgets old copies it still cannot delete.
    """
    calendar = get_calendar(store.db, calendar_name, owner)
    live = _live(store.db, calendar.id)
    if live is None and not _files(store.db, calendar.id):
        raise UsageError(f"{calendar.name!r} is not published")
    level = None
    if live is not None:
        level = served_level(settings, live.level)
        if level is None:
            raise PublishRefused(
                "publishing is turned off on this server; unpublishing withdraws it",
                remedies=[Remedy.UNPUBLISH],
                calendar=calendar.name,
            )
    folder = live.webdav_url if live is not None and level is not None else None
    return _sync(store, settings, calendar, level, folder, clock.now(), force=force, guard=guard)


def _sync(
    store: Store,
    settings: Settings,
    calendar: Calendar,
    level: Level | None,
    folder: str | None,
    now: datetime,
    *,
    force: bool,
    guard: Guard | None = None,
) -> Copy:
    failed, removed, forgotten = _delete_files(
        store, settings, calendar.id, keep=folder, force=force, guard=guard
    )
    problems = []
    remedies: list[Remedy] = []
    if failed:
        changed = _any_changed(failed)
        problems.append(
            f"The old copy was not removed: {_remains(failed)}. Writing the copy again tries "
            + ("again (with force even if someone changed it)." if changed else "again.")
        )
        remedies += [Remedy.PUSH, Remedy.PUSH_FORCE] if changed else [Remedy.PUSH]
    written: tuple[str, ...] = ()
    etags = None
    if folder is not None and level is not None:
        try:
            written, etags = _push_files(
                store, settings, calendar, level, folder, now, force, guard=guard
            )
        except WebDavError as exc:
            advice, more = _write_advice(exc)
            problems.append(f"The WebDAV copy was not written: {exc}. {advice}")
            remedies += [remedy for remedy in more if remedy not in remedies]
    return Copy(
        folder,
        written,
        etags,
        tuple(removed),
        tuple((url, str(exc)) for url, exc in forgotten),
        tuple(problems),
        tuple(remedies),
    )


def _write_advice(exc: WebDavError) -> tuple[str, tuple[Remedy, ...]]:
    """What to do about a copy that was not written: in words, and as remedies."""
    if not isinstance(exc, WebDavConflict):
        return "Once that is fixed, writing the copy again writes it.", (Remedy.PUSH,)
    if exc.foreign:
        return (
            "Remove or rename that file, publish into another folder, or replace it by "
            "writing the copy again with force.",
            (Remedy.PUSH_FORCE,),
        )
    return (
        "Writing the copy again with force replaces it with calshare's copy "
        "(their change is lost).",
        (Remedy.PUSH_FORCE,),
    )


def _any_changed(failed: list[tuple[str, WebDavError]]) -> bool:
    return any(isinstance(exc, WebDavConflict) for _, exc in failed)


def _credentials(settings: Settings, guard: Guard | None = None) -> Credentials:
    webdav = settings.webdav
    return Credentials(webdav.username, webdav.password, webdav.timeout_seconds, guard)


def _files(db: Database, calendar_id: int) -> dict[str, str]:
    """What calshare wrote, by URL: the validator ("" if it could not keep one then)."""
    rows = db.execute(
        "SELECT url, etag FROM webdav_files WHERE calendar_id = ? ORDER BY url", [calendar_id]
    ).fetchall()
    return {url: etag or "" for url, etag in rows}


def _remains(failed: list[tuple[str, WebDavError]]) -> str:
    """Exactly what stays on the server, and why, one clause per file."""
    clauses = []
    for url, exc in failed:
        text = str(exc)
        clauses.append(
            f"{text}, so it stays there"
            if text.startswith(url)
            else f"{url} stays on the WebDAV server: {text}"
        )
    return "; ".join(clauses)


def _delete_files(
    store: Store,
    settings: Settings,
    calendar_id: int,
    *,
    keep: str | None,
    force: bool,
    guard: Guard | None = None,
) -> tuple[list[tuple[str, WebDavError]], list[str], list[tuple[str, WebDavError]]]:
    """Delete our copies outside the folder ``keep``; each success is recorded at once.

    Returns (failed, removed, forgotten): with ``force`` a copy that cannot be
    deleted is forgotten (its row dropped) rather than failed.
    """
    credentials = _credentials(settings, guard)
    failed, removed, forgotten = [], [], []
    for url, validator in _files(store.db, calendar_id).items():
        if keep is not None and url.startswith(keep):
            continue
        try:
            delete(url, credentials, validator, force=force)
        except WebDavError as exc:  # try the others all the same
            if not force:
                failed.append((url, exc))
                continue
            forgotten.append((url, exc))
            log.warning("webdav: forgetting %s, which stays on the server: %s", url, exc)
        else:
            removed.append(url)
        with store.write() as db:
            db.execute("DELETE FROM webdav_files WHERE url = ?", [url])
    return failed, removed, forgotten


def render_files(
    store: Store, settings: Settings, calendar: Calendar, level: Level, now: datetime
) -> tuple[bytes, str]:
    """The .ics (the feed's window) and the static page (a list of its next 60 days)."""
    ics = feed_ics(store, settings, calendar, level, now)
    view = static_view(now.astimezone(calendar.zoneinfo).date(), calendar.zoneinfo)
    ics_name = quote(f"{calendar.name}.ics")  # beside the page in the same folder
    html = page_html(store, settings, calendar, level, view, now, ics_name, ics_name, None)
    return ics, html


def page_html(
    store: Store,
    settings: Settings,
    calendar: Calendar,
    level: Level,
    view: View,
    now: datetime,
    ics_url: str,
    webcal_url: str,
    nav: Nav | None,
    *,
    embed: bool = False,
) -> str:
    """The published page for ``view``: the served views and the WebDAV copy alike.

    Only ``visible_occurrences`` reach it: what the level hides never gets here.
    """
    found = visible_occurrences(
        store,
        calendar,
        view.grid.start,
        view.grid.end,
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
        view=view,
        occurrences=found,
        lang=settings.mail.lang,
        ics_url=ics_url,
        webcal_url=webcal_url,
        nav=nav,
        domain=settings.mail.domain,
        today=now.astimezone(calendar.zoneinfo).date(),
        embed=embed,
    )


def _push_files(
    store: Store,
    settings: Settings,
    calendar: Calendar,
    level: Level,
    folder: str,
    now: datetime,
    force: bool = False,
    *,
    guard: Guard | None = None,
) -> tuple[tuple[str, ...], bool]:
    """PUT NAME.ics and NAME.html, each recorded as soon as the server takes it.

    Never over someone else's file (see calshare.webdav) unless ``force``. Returns
    the URLs written and whether the server gave ETags for them all.
    """
    ics, html = render_files(store, settings, calendar, level, now)
    credentials = _credentials(settings, guard)
    known = _files(store.db, calendar.id)
    written = []
    etags = True
    for name, body, kind in (
        (f"{calendar.name}.ics", ics, "text/calendar; charset=utf-8"),
        (f"{calendar.name}.html", html.encode("utf-8"), "text/html; charset=utf-8"),
    ):
        url = folder + quote(name)
        validator = put(url, body, kind, credentials, known.get(url), force=force)
        etags = etags and has_etag(validator)
        with store.write() as db:
            db.execute(
                """INSERT INTO webdav_files (url, calendar_id, etag, written_at)
                   VALUES (?, ?, ?, ?)
                   ON CONFLICT (url) DO UPDATE SET etag = excluded.etag,
                       written_at = excluded.written_at""",
                [url, calendar.id, validator, utc_text(now)],
            )
        written.append(url)
    return tuple(written), etags


def rewrite_after_import(store: Store, settings: Settings, clock: Clock, calendar_id: int) -> bool:
    """Write the calendar's WebDAV copy again, if it is published there (after an import).

    By id: it follows an import or a refresh, which already know which calendar (two
    owners may each have one of that name). At the level policy allows now. Returns
    whether anything was pushed. A failure says what to do (write the copy again,
    which keeps the links).
    """
    calendar = calendar_by_id(store.db, calendar_id)
    live = _live(store.db, calendar.id)
    if live is None or not live.webdav_url:
        return False
    level = served_level(settings, live.level)
    if level is None:
        raise PublishRefused(
            "publishing is turned off on this server; unpublish it",
            remedies=[Remedy.UNPUBLISH],
            calendar=calendar.name,
        )
    try:
        _push_files(store, settings, calendar, level, live.webdav_url, clock.now())
    except WebDavError as exc:
        advice, remedies = _write_advice(exc)
        raise WebDavError(
            f"{exc}. {advice}", exc.status, remedies=remedies, calendar=calendar.name
        ) from None
    return True
