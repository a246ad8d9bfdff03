"""Follow calendars' sources: read each on its schedule, keep the last good copy, tell owners.

A round reads the due sources in a pool of threads (network only, no database) and
records each result from one thread (the round's): an unchanged source costs one
conditional GET and one row update, batched. A changed source is applied whole
(``_apply``). A read that fails, or that gives something no calendar would (an HTML
page, a cut-off body, suddenly no events or far fewer) keeps the events the calendar
has, records why, backs off, and once the source has failed for
``sources.notify_after`` tells the owner by mail, once, and once more when it works
again. Invitees are never told: they keep seeing the last good copy.

Scheduling is pure (``next_due_ts``): interval ± a jitter fixed per calendar, never
earlier than the server's ``Cache-Control: max-age`` or ``Retry-After``, and
exponential backoff on failures, capped by ``sources.max_backoff``.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import ModuleType
from urllib.parse import urlsplit

from calshare.addresses import Mailbox
from calshare.calendars import Calendar, add_calendar, get_calendar, remove_new_calendar
from calshare.clock import Clock, utc_text
from calshare.config import Credential, Settings, find_credential
from calshare.errors import CalshareError, FetchError, ImportFailed
from calshare.lifecycle import audit
from calshare.links import console_url, from_webcal
from calshare.netguard import Guard, owner_guard
from calshare.reindex import apply_data
from calshare.sources import Source, fetch_url, read_source
from calshare.store import Store
from calshare.subscriptions import (
    CALDAV,
    FILE,
    URL,
    SourceRecord,
    find_source,
    jitter_fraction,
    set_source,
)
from mailer import outbox
from mailer.compose import NoticeSpec, new_message_key
from mailer.outbox import OutboxKind

log = logging.getLogger(__name__)

UNCHANGED, CHANGED, FAILED = "unchanged", "changed", "failed"
# A server's max-age or Retry-After is honoured up to this long, so a typo there
# cannot silence a source for months.
LONGEST_WAIT = 86400
BATCH = 500  # unchanged sources recorded per transaction
# Causes whose cure is a new address from the provider: the mail says where to find it.
_ADDRESS_CAUSES = frozenset({"auth", "not_found", "html", "redirect_loop"})
_VEVENT = re.compile(rb"^BEGIN:VEVENT\r?$", re.IGNORECASE | re.MULTILINE)
_END = re.compile(rb"END:VCALENDAR\s*\Z", re.IGNORECASE)


class SourceProblem(ImportFailed):
    """A source answered, but not with a calendar to trust (see ``check_body``)."""

    def __init__(self, message: str, cause: str, count: int = 0) -> None:
        super().__init__(message)
        self.cause = cause
        self.count = count


@dataclass(frozen=True)
class Attempt:
    """What one read of a source gave, before it is recorded (no database touched)."""

    result: str  # UNCHANGED, CHANGED or FAILED
    cause: str | None = None
    message: str = ""
    status: int | None = None
    data: bytes = b""
    digest: str | None = None
    count: int = 0  # events in ``data`` (changed), or in the refused body (failed)
    etag: str | None = None
    last_modified: str | None = None
    max_age: float | None = None
    retry_after: float | None = None
    state: str | None = None  # a CalDAV sync token
    objects: Mapping[str, bytes] | None = None  # a CalDAV collection, whole, when changed


@dataclass(frozen=True)
class Refreshed:
    """What a refresh of one calendar did, as commands and logs report it."""

    calendar: str
    source: str  # shown: scheme and host, or a path
    result: str
    cause: str | None
    message: str
    altered: bool  # the calendar's events changed (feeds and pages follow)
    events: int
    next_due_ts: int | None
    mail: str | None = None  # the owner's notice queued: source_failing or source_recovered


# --- pure parts


def next_due_ts(
    now: int,
    interval: int,
    *,
    fraction: float,
    jitter: float,
    failures: int = 0,
    max_backoff: int = 6 * 3600,
    max_age: float | None = None,
    retry_after: float | None = None,
) -> int:
    """When to read a source next (Unix seconds).

    ``fraction`` (``subscriptions.jitter_fraction``) places the calendar within
    ± ``jitter`` of its wait. After failures the wait doubles each time, up to
    ``max_backoff`` (never below the interval). A server's max-age or Retry-After
    only ever makes the wait longer.
    """
    wait = float(interval)
    if failures > 0:
        wait = min(interval * 2.0 ** min(failures - 1, 30), float(max(max_backoff, interval)))
    wait *= 1 + jitter * (2 * fraction - 1)
    for asked in (max_age, retry_after):
        if asked is not None:
            wait = max(wait, min(asked, LONGEST_WAIT))
    return now + max(1, round(wait))


def count_events(data: bytes) -> int:
    return len(_VEVENT.findall(data))


def check_body(
    data: bytes, content_type: str, label: str, previous: int, shrink_ratio: float
) -> int:
    """The number of events in a fetched body, or SourceProblem when it is not to be trusted.

    An HTML page (a login page, an error page) is not a calendar; a body without its
    END:VCALENDAR was cut off; a calendar that held events and now holds none, or
    fewer than ``shrink_ratio`` of them, is more likely a broken export than a
    cleared calendar: the last good copy stays (``calendar import`` takes it anyway).
    """
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:512].lower()
    if "html" in content_type.lower() or head.startswith((b"<!doctype", b"<html", b"<")):
        raise SourceProblem(f"{label} sent a web page, not a calendar", "html")
    if not head.startswith(b"begin:vcalendar"):
        raise SourceProblem(f"{label} sent something that is not a calendar", "invalid")
    if not _END.search(data[-64:]):
        raise SourceProblem(f"{label} sent a calendar that stops before its end", "truncated")
    count = count_events(data)
    if previous > 0 and count == 0:
        raise SourceProblem(
            f"{label} sent a calendar with no events where it held {previous:,}; "
            "kept the last good copy",
            "empty",
        )
    if previous > 0 and count < shrink_ratio * previous:
        raise SourceProblem(
            f"{label} sent {count:,} events where it held {previous:,}; kept the last good copy "
            f"(fewer than {shrink_ratio:.0%}: setting sources.shrink_ratio)",
            "shrunk",
            count,
        )
    return count


def provider(host: str) -> str:
    """Whose calendar service a host is, for the owner's mail: google, outlook, icloud."""
    host = host.lower().rstrip(".")

    def under(*domains: str) -> bool:
        return any(host == domain or host.endswith("." + domain) for domain in domains)

    if under("google.com", "googleusercontent.com"):
        return "google"
    if (
        under("office365.com", "office.com", "live.com", "hotmail.com", "outlook.com")
        or host.startswith("outlook.")
        or ".outlook." in host
    ):
        return "outlook"
    if under("icloud.com", "me.com"):
        return "icloud"
    return "generic"


# --- reading (any thread; no database)


def source_guard(record: SourceRecord, settings: Settings) -> Guard | None:
    """The SSRF guard a read of ``record`` goes through: an owner's source gets the strict
    one unless the operator allows private addresses (``owners.private_sources``)."""
    return owner_guard(settings.owners.private_sources) if record.guarded else None


def read_once(record: SourceRecord, settings: Settings) -> Attempt:
    """Read a source once. Never raises for the source's faults: they are a FAILED Attempt."""
    limits = settings.import_
    guard = source_guard(record, settings)
    try:
        if record.kind == CALDAV:
            return _read_caldav(record, settings, guard)
        etag = last_modified = None
        max_age: float | None = None
        if record.kind == URL:
            fetched = fetch_url(
                record.location,
                max_bytes=limits.max_bytes,
                timeout=limits.timeout_seconds,
                etag=record.etag,
                last_modified=record.last_modified,
                guard=guard,
            )
            etag, last_modified, max_age = fetched.etag, fetched.last_modified, fetched.max_age
            if fetched.status == 304:
                return Attempt(
                    UNCHANGED, status=304, etag=etag, last_modified=last_modified, max_age=max_age
                )
            data, content_type, label = fetched.data, fetched.content_type, fetched.label
        else:
            source: Source = read_source(
                record.location, max_bytes=limits.max_bytes, timeout=limits.timeout_seconds
            )
            data, content_type, label = source.data, "", source.label
        digest = hashlib.sha256(data).hexdigest()
        result, count = UNCHANGED, 0
        if digest != record.source_sha256 or not record.imported_at:
            result = CHANGED
            count = check_body(
                data, content_type, label, record.event_count, settings.sources.shrink_ratio
            )
        return Attempt(
            result,
            status=200,
            data=data if result == CHANGED else b"",
            digest=digest,
            count=count,
            etag=etag,
            last_modified=last_modified,
            max_age=max_age,
        )
    except FetchError as exc:
        return Attempt(FAILED, exc.cause, str(exc), status=exc.status, retry_after=exc.retry_after)
    except SourceProblem as exc:
        return Attempt(FAILED, exc.cause, str(exc), count=exc.count)
    except ImportFailed as exc:  # a file that cannot be read
        cause = "not_found" if str(exc).startswith("No such file") else "invalid"
        return Attempt(FAILED, cause, str(exc))


def _caldav_module() -> ModuleType | None:
    try:
        return importlib.import_module("calshare.caldav_source")
    except ModuleNotFoundError:
        return None


def _credential(settings: Settings, record: SourceRecord) -> Credential | None:
    return find_credential(
        settings,
        record.calendar,
        record.host,
        owner=record.owner,
        shared_name=record.shared_name,
        guarded=record.guarded,  # an owner's URL: only their own "OWNER/NAME" credential
    )


def _read_caldav(record: SourceRecord, settings: Settings, guard: Guard | None) -> Attempt:
    """A CalDAV collection: only the objects changed since the stored sync state.

    The fetch is ``calshare.caldav_source.fetch_changes`` (sync-collection, RFC 6578);
    this plumbing finds the credentials and hands back the changes. The whole
    collection is put together (``assemble``) when the objects are recorded.
    """
    module = _caldav_module()
    if module is None:
        return Attempt(
            FAILED,
            "unsupported",
            f"{record.shown}: CalDAV sources need calshare.caldav_source, "
            "which this calshare does not have",
        )
    credential = _credential(settings, record)
    try:
        changes = module.fetch_changes(
            record.location,
            credential.username if credential else None,
            credential.password if credential else None,
            record.state,
            timeout=settings.import_.timeout_seconds,
            max_bytes=settings.import_.max_bytes,
            guard=guard,
        )
    except FetchError as exc:
        return Attempt(FAILED, exc.cause, str(exc), status=exc.status)
    except ImportFailed as exc:
        return Attempt(FAILED, "invalid", str(exc))
    if not changes.changed and not changes.deleted and not changes.complete:
        return Attempt(UNCHANGED, state=changes.state)
    delta = _CaldavDelta(changes.changed, frozenset(changes.deleted), changes.complete)
    return Attempt(CHANGED, state=changes.state, objects=delta)


class _CaldavDelta(dict[str, bytes]):
    """Changed objects, with the hrefs deleted and whether they are the whole collection."""

    def __init__(self, changed: Mapping[str, bytes], deleted: frozenset[str], complete: bool):
        super().__init__(changed)
        self.deleted = deleted
        self.complete = complete


# --- recording (the round's thread; the database)


def _apply(
    store: Store, settings: Settings, clock: Clock, record: SourceRecord, data: bytes, label: str
) -> tuple[bool, int]:
    """Bring the calendar to exactly ``data``; return (events altered?, events held).

    The one place a fetched body is applied, through the one write path
    (calshare.reindex): only the UIDs that changed are re-indexed, and "altered" is
    whether what some level shows could have changed (the calendar's version moved).
    """
    applied = apply_data(
        store, settings, clock, record.calendar_id, data, label, location=record.location
    )
    return applied.visible, applied.events


def record_attempt(
    store: Store, settings: Settings, clock: Clock, record: SourceRecord, attempt: Attempt
) -> Refreshed:
    """Write what a read gave: apply a change, or record the failure; queue the owner's mail."""
    altered = False
    events = record.event_count
    if attempt.result == CHANGED:
        try:
            objects: dict[str, bytes] | None = None
            data = attempt.data
            if record.kind == CALDAV:
                objects, data = _caldav_merge(store, settings, record, attempt)
            if hashlib.sha256(data).hexdigest() != record.source_sha256:
                altered, events = _apply(store, settings, clock, record, data, record.shown)
            if objects is not None:
                _keep_objects(store, record, objects)
        except SourceProblem as exc:
            attempt = Attempt(FAILED, exc.cause, str(exc), count=exc.count)
        except ImportFailed as exc:
            attempt = Attempt(FAILED, "invalid", str(exc))
    if attempt.message:
        attempt = replace(attempt, message=scrub(attempt.message, record, settings))
    now = clock.now()
    stamp = utc_text(now)
    sources = settings.sources
    failures = record.failures + 1 if attempt.result == FAILED else 0
    due = (
        None
        if record.kind == FILE
        else next_due_ts(
            int(now.timestamp()),
            record.interval_seconds,
            fraction=jitter_fraction(record.calendar_id),
            jitter=sources.jitter,
            failures=failures,
            max_backoff=sources.max_backoff,
            max_age=attempt.max_age,
            retry_after=attempt.retry_after,
        )
    )
    mail: str | None = None
    with store.write() as db:
        if attempt.result == FAILED:
            failing_since = record.failing_since or stamp
            told = record.owner_told_at
            if told is None and now - _instant(failing_since) >= timedelta(
                seconds=sources.notify_after
            ):
                mail = OutboxKind.SOURCE_FAILING
                told = stamp
                _queue_notice(db, settings, record, mail, attempt, failing_since, now)
            db.execute(
                """UPDATE calendar_sources SET next_due_ts = ?, last_attempt_at = ?,
                       last_result = ?, last_cause = ?, last_error = ?, failing_since = ?,
                       owner_told_at = ?, failures = ?
                   WHERE calendar_id = ?""",
                [
                    due,
                    stamp,
                    FAILED,
                    attempt.cause,
                    attempt.message,
                    failing_since,
                    told,
                    failures,
                    record.calendar_id,
                ],
            )
        else:
            if record.owner_told_at is not None:
                mail = OutboxKind.SOURCE_RECOVERED
                _queue_notice(db, settings, record, mail, attempt, stamp, now)
            changed = attempt.result == CHANGED
            db.execute(
                """UPDATE calendar_sources SET etag = ?, last_modified = ?, state = ?,
                       next_due_ts = ?, last_attempt_at = ?, last_result = ?, last_cause = NULL,
                       last_error = NULL, last_success_at = ?,
                       last_changed_at = CASE WHEN ? THEN ? ELSE last_changed_at END,
                       last_altered = CASE WHEN ? THEN ? ELSE last_altered END,
                       failing_since = NULL, owner_told_at = NULL, failures = 0
                   WHERE calendar_id = ?""",
                [
                    attempt.etag,
                    attempt.last_modified,
                    attempt.state if attempt.state is not None else record.state,
                    due,
                    stamp,
                    attempt.result,
                    stamp,
                    changed,
                    stamp,
                    changed,
                    int(altered),
                    record.calendar_id,
                ],
            )
    if attempt.result == FAILED:  # the daemon says it as a warning; a command prints it
        log.info(
            "source of calendar %s failed (%s): %s", record.calendar, attempt.cause, attempt.message
        )
    elif attempt.result == CHANGED:
        log.info("source of calendar %s changed: %d events", record.calendar, events)
    if mail:
        log.info("source of calendar %s: queued %s for its owner", record.calendar, mail)
    return Refreshed(
        record.calendar,
        record.shown,
        attempt.result,
        attempt.cause,
        attempt.message,
        altered,
        events,
        due,
        mail,
    )


def _caldav_merge(
    store: Store, settings: Settings, record: SourceRecord, attempt: Attempt
) -> tuple[dict[str, bytes], bytes]:
    """The collection after a CalDAV delta (kept objects, less deleted, plus changed), and
    the calendar of them all; SourceProblem if that calendar is not to be trusted.

    Nothing is written here: a refused delta leaves the kept objects and the sync state
    as they were, so the next sync brings it again.
    """
    delta = attempt.objects
    assert isinstance(delta, _CaldavDelta)
    module = _caldav_module()
    assert module is not None
    objects: dict[str, bytes] = {}
    if not delta.complete:
        rows = store.db.execute(
            "SELECT href, data FROM calendar_source_objects WHERE calendar_id = ?",
            [record.calendar_id],
        ).fetchall()
        objects = {href: bytes(data) for href, data in rows}
    for href in delta.deleted:
        objects.pop(href, None)
    objects.update(delta)
    body: bytes = module.assemble(objects)
    check_body(body, "", record.shown, record.event_count, settings.sources.shrink_ratio)
    return objects, body


def _keep_objects(store: Store, record: SourceRecord, objects: Mapping[str, bytes]) -> None:
    with store.write() as db:
        db.execute(
            "DELETE FROM calendar_source_objects WHERE calendar_id = ?", [record.calendar_id]
        )
        db.conn.executemany(
            "INSERT INTO calendar_source_objects (calendar_id, href, data) VALUES (?, ?, ?)",
            [(record.calendar_id, href, body) for href, body in sorted(objects.items())],
        )


def scrub(message: str, record: SourceRecord, settings: Settings) -> str:
    """A message with the source's secret parts taken out, whoever wrote it.

    Our own messages name a URL by scheme and host already; this also covers what a
    library or a server put in an error: the URL's path and query, a CalDAV password.
    """
    if record.kind == FILE:
        return message
    secrets = [record.location, from_webcal(record.location)]
    try:
        parts = urlsplit(from_webcal(record.location))
        secrets += [parts.path, parts.path.lstrip("/"), parts.query]
        # a piece quoted alone: what looks like a token (long, or with digits in it)
        pieces = re.split(r"[/?&=;]", f"{parts.path}?{parts.query}")
        secrets += [
            piece
            for piece in pieces
            if len(piece) >= 16 or (len(piece) >= 8 and any(c.isdigit() for c in piece))
        ]
    except ValueError:
        pass
    credential = _credential(settings, record)
    if credential is not None:
        secrets.append(credential.password)
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) > 1:
            message = message.replace(secret, "…")
    return message


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _queue_notice(
    db: object,
    settings: Settings,
    record: SourceRecord,
    kind: str,
    attempt: Attempt,
    since: str,
    now: datetime,
) -> None:
    """The owner's mail, in the transaction that records why: never to an invitee."""
    from calshare.addresses import parse_mailbox
    from mailer.compose import Sender

    lang = settings.mail.lang
    host = record.host or record.location
    extra = {
        "source": record.shown,
        "since": _day(since),
        "last_good": _day(record.last_success_at),
    }
    if kind == OutboxKind.SOURCE_FAILING:
        extra.update(cause_words(attempt, record, host, lang))
    spec = NoticeSpec(
        kind=kind,
        sender=Sender(
            domain=settings.mail.domain,
            from_mailbox=parse_mailbox(settings.mail.from_address),
            owner=Mailbox(record.owner, ""),
        ),
        to=Mailbox(record.owner, ""),
        calendar=record.calendar,
        lang=lang,
        key=new_message_key(),
        extra=tuple(extra.items()),
        # where the owner sees the source's state and can give a new address (Add calendar)
        links=(("owner.calendars", console_url(settings.http.base_url)),),
    )
    outbox.enqueue_notice(db, spec, kind=kind, share_id=None, now=now)  # type: ignore[arg-type]
    # the owner's History page says it too, next to the shares and publications
    detail = (attempt.cause or "") if kind == OutboxKind.SOURCE_FAILING else ""
    audit(db, now, kind, record.calendar_id, record.shown, detail)  # type: ignore[arg-type]


def cause_words(attempt: Attempt, record: SourceRecord, host: str, lang: str) -> dict[str, str]:
    """The cause in plain words, naming the provider, and what the owner can do about it."""
    from calshare import wording

    cause = attempt.cause or "network"
    company = provider(host) if record.kind != FILE else "generic"
    address = wording.text(f"source.address.{company}", lang, host=host or record.shown)
    status = str(attempt.status) if attempt.status else ""
    words = wording.text(
        f"source.cause.{cause}",
        lang,
        address=address,
        status=status,
        count=f"{attempt.count:,}",
        previous=f"{record.event_count:,}",
    )
    if cause == "private_address":  # only the operator can allow it, or the owner move it
        hint = "source.hint.private_address"
    elif cause in _ADDRESS_CAUSES:
        hint = f"source.hint.{company}"
    else:
        hint = "source.hint.wait"
    return {"cause": words, "hint": wording.text(hint, lang)}


def _day(stamp: str | None) -> str:
    return stamp[:10] if stamp else "—"


def record_unchanged(
    store: Store, settings: Settings, clock: Clock, items: Sequence[tuple[SourceRecord, Attempt]]
) -> list[Refreshed]:
    """Record many plain unchanged reads (no failure to clear) in one transaction."""
    now = clock.now()
    stamp, now_ts = utc_text(now), int(now.timestamp())
    sources = settings.sources
    rows = []
    done = []
    for record, attempt in items:
        due = next_due_ts(
            now_ts,
            record.interval_seconds,
            fraction=jitter_fraction(record.calendar_id),
            jitter=sources.jitter,
            max_age=attempt.max_age,
        )
        state = attempt.state if attempt.state is not None else record.state
        rows.append(
            (attempt.etag, attempt.last_modified, state, due, stamp, stamp, record.calendar_id)
        )
        done.append(
            Refreshed(
                record.calendar,
                record.shown,
                UNCHANGED,
                None,
                "",
                False,
                record.event_count,
                due,
            )
        )
    with store.write() as db:
        db.conn.executemany(
            """UPDATE calendar_sources SET etag = ?, last_modified = ?, state = ?,
                   next_due_ts = ?, last_attempt_at = ?, last_result = 'unchanged',
                   last_success_at = ?
               WHERE calendar_id = ?""",
            rows,
        )
    return done


def refresh_round(
    store: Store,
    settings: Settings,
    clock: Clock,
    records: Iterable[SourceRecord],
    *,
    should_stop: Callable[[], bool] = lambda: False,
    on_altered: Callable[[int], None] | None = None,
) -> list[Refreshed]:
    """Read ``records`` (``sources.workers`` at a time) and record each; in this thread only.

    ``on_altered`` is called with the id of each calendar whose events changed (the WebDAV copy
    is written again there). ``should_stop``: the daemon is stopping; what is not
    read yet waits for the next round.
    """
    pending = list(records)
    if not pending:
        return []
    done: list[Refreshed] = []
    plain: list[tuple[SourceRecord, Attempt]] = []
    workers = min(settings.sources.workers, len(pending))
    with ThreadPoolExecutor(workers, thread_name_prefix="source") as pool:
        futures: dict[Future[Attempt], SourceRecord] = {
            pool.submit(read_once, record, settings): record for record in pending
        }
        for future in as_completed(futures):
            if should_stop():
                pool.shutdown(wait=False, cancel_futures=True)
                break
            record = futures[future]
            try:
                attempt = future.result()
            except Exception as exc:  # noqa: BLE001 (a library's surprise: recorded, tried again)
                # Only the type: a library's message may quote the source's secret URL.
                log.error(
                    "source of calendar %s: reading failed (%s)",
                    record.calendar,
                    type(exc).__name__,
                )
                attempt = Attempt(FAILED, "network", f"reading it failed ({type(exc).__name__})")
            if attempt.result == UNCHANGED and record.failures == 0:
                plain.append((record, attempt))
                if len(plain) >= BATCH:
                    done += record_unchanged(store, settings, clock, plain)
                    plain = []
                continue
            try:
                refreshed = record_attempt(store, settings, clock, record, attempt)
            except CalshareError as exc:  # the store is busy or full: next round tries again
                log.error("source of calendar %s not recorded: %s", record.calendar, exc)
                continue
            done.append(refreshed)
            if refreshed.altered and on_altered is not None:
                on_altered(record.calendar_id)
    if plain:
        done += record_unchanged(store, settings, clock, plain)
    return done


def refresh_one(
    store: Store, settings: Settings, clock: Clock, calendar_id: int
) -> Refreshed | None:
    """Read one calendar's source now (any kind, files included) and record it."""
    record = find_source(store.db, calendar_id)
    if record is None:
        return None
    return record_attempt(store, settings, clock, record, read_once(record, settings))


def add_following(
    store: Store,
    settings: Settings,
    clock: Clock,
    *,
    name: str,
    owner: str,
    tz: str | None,
    kind: str,
    location: str,
    interval_seconds: int,
    guarded: bool = False,
) -> tuple[Calendar, Refreshed]:
    """Add a calendar that follows ``location``, read at once: both, or neither.

    The one way a calendar with a source is added (``calshare calendar add --source``
    and the console's Add calendar page). A first read that fails takes the new
    calendar back (``remove_new_calendar``) and raises ImportFailed with why: an
    address that never worked is a typo far more often than an outage, and an empty
    calendar left behind would be shared or published as if it were the real one.
    ``guarded``: an owner adds it from the console; its first read and every later one
    go through the SSRF guard (``source_guard``). The CLI's are not guarded.
    """
    calendar = add_calendar(store, clock, name, owner, tz, settings.calendars.default_tz)
    try:
        set_source(store, calendar, kind, location, interval_seconds, None, guarded=guarded)
        refreshed = refresh_one(store, settings, clock, calendar.id)
    except BaseException:
        remove_new_calendar(store, calendar)
        raise
    if refreshed is None or refreshed.result == FAILED:
        remove_new_calendar(store, calendar)
        why = refreshed.message if refreshed is not None else "it follows nothing"
        raise ImportFailed(f"{calendar.name!r} was not added: its source could not be read: {why}")
    return get_calendar(store.db, calendar.name, calendar.owner), refreshed
