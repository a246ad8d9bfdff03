"""A grant's private feed: which share a secret names, and the calendar at its level.

The feed is made from the occurrence index over a window around today
(``http.feed_days_back`` .. ``http.feed_days_ahead``) through the one level
filter and the one iCalendar writer, so it shows what a snapshot at that level
shows. Grants at the same level of the same calendar get the same bytes, so
bodies are cached by (calendar, version, level, day), plain and gzipped: a
thousand subscribers cost one render a day per level, and a re-import (a new
version) or a level change (another key) is seen at the next request. The ETag
comes from the key alone, so a conditional GET is answered without the body.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from email.utils import format_datetime

from sqlite_utils import Database

from calshare.calendars import Calendar, calendar_by_id
from calshare.clock import parse_utc
from calshare.config import PolicySettings, Settings
from calshare.errors import UnknownCalendar
from calshare.expansion import Caps
from calshare.ics_writer import write_feed
from calshare.index import live_series, occurrences_between, singles_from
from calshare.levels import (
    Level,
    calendar_title,
    filter_occurrence,
    filter_series,
    lower_of,
    stand_in_key,
)
from calshare.lifecycle import ShareStatus
from calshare.occurrence import Occurrence, SeriesPart
from calshare.policy import highest_level
from calshare.series import Plan, plan_series
from calshare.store import Store
from calshare.subscriptions import feed_refresh
from calshare.tokens import parse_token, token_hash

GONE = "gone"
# Series a feed cannot write whole are written as instances this far ahead at least:
# two years, as far as calendar apps are checked to agree with ``calshare events``.
INSTANCES_AHEAD_DAYS = 731
CACHE_BYTES = 128 * 1024 * 1024  # bodies kept, at most (the newest always stays)


@dataclass(frozen=True)
class Grant:
    share_id: int
    calendar: str
    level: Level
    updated_at: str
    invitee: str
    calendar_id: int  # what the feed reads by: two owners may each have a calendar of that name

    def served_level(self, policy: PolicySettings) -> Level | None:
        """The grant's level as policy allows it now (None: not at all any more).

        An operator who turns sharing off or lowers external_max_level lowers every
        existing feed with it, not only new shares.
        """
        if not policy.sharing:
            return None
        allowed = highest_level(self.invitee, policy)
        return None if allowed is None else lower_of(self.level, allowed)


@dataclass(frozen=True)
class Version:
    """What a feed is, without its bytes: enough to answer a conditional GET."""

    key: tuple[object, ...]  # (calendar id, calendar version, level, first day): the body
    etag: str  # quoted, as it goes in the header
    last_modified: datetime
    calendar_name: str  # for the file name; the calendar is the key's id
    level: Level

    @property
    def calendar_id(self) -> int:
        calendar_id = self.key[0]
        assert isinstance(calendar_id, int)
        return calendar_id


@dataclass(frozen=True)
class Body:
    plain: bytes
    gzipped: bytes  # most calendar apps accept gzip; 7 MB of ICS is 0.5 MB of it


def find_grant(db: Database, secret_text: str) -> Grant | str | None:
    """The accepted share a feed secret names; GONE if it once worked; None if never.

    Looked up by the secret's SHA-256 (the database holds nothing else), so the
    comparison is of hashes, which tells a timing observer nothing of the secret.
    """
    secret = parse_token(secret_text)
    if secret is None:
        return None
    digest = token_hash(secret)
    row = db.execute(
        """SELECT s.id, c.name, s.level, s.status, s.updated_at, s.invitee, c.id FROM shares s
           JOIN calendars c ON c.id = s.calendar_id WHERE s.feed_hash = ?""",
        [digest],
    ).fetchone()
    if row is not None:
        share_id, calendar, level, status, updated_at, invitee, calendar_id = row
        if status != ShareStatus.ACCEPTED:
            return GONE
        return Grant(share_id, calendar, Level(level), updated_at, invitee, calendar_id)
    if db.execute("SELECT 1 FROM retired_feeds WHERE hash = ?", [digest]).fetchone():
        return GONE
    return None


class FeedMaker:
    """Renders feeds, remembering recent bodies; one per process, safe across threads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._bodies: OrderedDict[tuple[object, ...], Body] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        return feed_window(self.settings, now)

    def version(
        self, store: Store, calendar_id: int, level: Level, changed_at: str, now: datetime
    ) -> Version:
        """The feed's ETag and date from one narrow indexed read; no rendering.

        ``changed_at`` is when the grant (or publication) last changed. By id, never by
        name: a feed of Zoe's "project" must never be Ann's "project".
        """
        row = store.db.execute(
            "SELECT name, version, imported_at FROM calendars WHERE id = ?", [calendar_id]
        ).fetchone()
        if row is None:
            raise UnknownCalendar(f"#{calendar_id}")
        calendar_name, calendar_version, imported_at = row
        start, _ = self.window(now)
        key = (calendar_id, calendar_version, level, start.date())
        tag = hashlib.sha256(repr((key, changed_at)).encode()).hexdigest()[:32]
        # the window moves every day, so the feed is "modified" at least every midnight
        changed = [parse_utc(changed_at), datetime.combine(now.astimezone(UTC).date(), time(), UTC)]
        if imported_at:
            changed.append(parse_utc(imported_at))
        return Version(key, f'"{tag}"', max(changed).replace(microsecond=0), calendar_name, level)

    def cached(self, version: Version) -> Body | None:
        with self._lock:
            body = self._bodies.get(version.key)
            if body is not None:
                self._bodies.move_to_end(version.key)
            return body

    def body(self, store: Store, version: Version, now: datetime) -> Body:
        """The feed's bytes, rendered once per (calendar version, level, day) and kept."""
        body = self.cached(version)
        if body is not None:
            return body
        calendar = calendar_by_id(store.db, version.calendar_id)
        plain = feed_ics(store, self.settings, calendar, version.level, now)
        body = Body(plain, gzip.compress(plain, compresslevel=6, mtime=0))
        with self._lock:
            self._bodies[version.key] = body
            self._size += len(body.plain) + len(body.gzipped)
            while self._size > CACHE_BYTES and len(self._bodies) > 1:
                _, old = self._bodies.popitem(last=False)
                self._size -= len(old.plain) + len(old.gzipped)
        return body


def feed_window(settings: Settings, now: datetime) -> tuple[datetime, datetime]:
    """The days a feed holds: ``http.feed_days_back`` before today to ``feed_days_ahead`` after."""
    today = datetime.combine(now.astimezone(UTC).date(), time(), UTC)
    http = settings.http
    return (
        today - timedelta(days=http.feed_days_back),
        today + timedelta(days=http.feed_days_ahead + 1),
    )


def feed_ics(
    store: Store, settings: Settings, calendar: Calendar, level: Level, now: datetime
) -> bytes:
    """The calendar at ``level``, as subscribers (and published links, and WebDAV) get it.

    Single events from ``http.feed_days_back`` days ago on; every series that has
    an instance from then on, whole, as one VEVENT with its rule and one per
    override, each filtered by ``levels.filter_series``. A series that cannot be
    written as one (see calshare.series) is written as its instances, each through
    ``levels.filter_occurrence``, up to ``http.feed_days_ahead`` days ahead, and
    at least ``INSTANCES_AHEAD_DAYS``.
    Named as the imported source names itself (its X-WR-CALNAME or NAME) where the
    level shows titles, else by its name here; stand-in summaries are in the
    installation's language (``mail.lang``).
    """
    start, end = feed_window(settings, now)
    end = max(end, start + timedelta(days=settings.http.feed_days_back + INSTANCES_AHEAD_DAYS))
    zone, key = calendar.zoneinfo, stand_in_key(store.uid_key, calendar.id)
    limit_years = settings.calendars.index_limit_years
    caps = Caps.of(settings.calendars)
    plan, kept = _unfiltered(store, calendar, start, limit_years, caps, now)
    written: list[list[SeriesPart]] = []
    as_instances = set(plan.instances)
    for parts in plan.series:
        filtered = filter_series(parts, level, zone=zone, uid_key=key)
        if filtered is None:
            as_instances.add(parts[0].fields.uid)
        else:
            written.append(filtered)
    found = list(kept)
    if as_instances:
        expanded = occurrences_between(
            store, calendar, start, end, now=now, limit_years=limit_years, caps=caps
        )
        found += [occurrence for occurrence in expanded if occurrence.uid in as_instances]
    singles = [filter_occurrence(item, level, zone=zone, uid_key=key) for item in found]
    return write_feed(
        singles,
        written,
        name=calendar_title(level, calendar.name, calendar.source_name),
        zone=calendar.zone,
        now=now,
        refresh=timedelta(
            minutes=feed_refresh(store.db, calendar.id, settings.http.feed_refresh_minutes)
        ),
        lang=settings.mail.lang,
    )


_UNFILTERED: OrderedDict[tuple[object, ...], tuple[Plan, tuple[Occurrence, ...]]] = OrderedDict()
_UNFILTERED_LOCK = threading.Lock()


def _unfiltered(
    store: Store, calendar: Calendar, start: datetime, limit_years: int, caps: Caps, now: datetime
) -> tuple[Plan, tuple[Occurrence, ...]]:
    """A feed's series and single events before the level filter: one read for every level.

    Kept for the last few (database, calendar version, first day) asked: the three
    levels of a calendar are rendered from one read after each change.
    """
    cache_key = (str(store.path), calendar.id, calendar.version, start)
    with _UNFILTERED_LOCK:
        kept = _UNFILTERED.get(cache_key)
    if kept is not None:
        return kept
    live, indexed_until = live_series(
        store, calendar, start, now=now, limit_years=limit_years, caps=caps
    )
    made = (
        plan_series(store, calendar, live, indexed_until),
        tuple(singles_from(store, calendar, start)),
    )
    with _UNFILTERED_LOCK:
        _UNFILTERED[cache_key] = made
        while len(_UNFILTERED) > 8:
            _UNFILTERED.popitem(last=False)
    return made


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)
