"""The owner's calendars: My calendars (the list), Add calendar, and one calendar's History.

My calendars reads everything it shows in four queries, whatever the number of
calendars (the calendars, their sources, their shares, their publications: each
filtered by the owner), so an owner with many calendars and shares still gets the
page in a few milliseconds. Add calendar calls what ``calshare calendar add`` calls
(``refresh.add_following`` for a URL or CalDAV collection, ``importer.add_from_data``
for an upload): the calendar is added with its first import or not at all. An
upload is streamed part by part with its own cap (``import.max_bytes``), since the
app's small ``client_max_size`` is for plain forms; its anti-forgery field must come
before the file, so a forged form is refused before a byte of the file is kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import BodyPartReader, web

from calshare import lifecycle, sessions
from calshare.calendars import Calendar, list_calendars
from calshare.config import Settings
from calshare.console import words
from calshare.console.base import (
    Visit,
    calendar_id,
    calendar_tabs,
    done_message,
    owned_calendar,
    read_form,
    render,
    see_other,
    signed_in,
)
from calshare.errors import (
    AddressError,
    CalshareError,
    DuplicateCalendar,
    ImportFailed,
    StillRunning,
    UsageError,
)
from calshare.importer import add_from_data
from calshare.levels import Level
from calshare.lifecycle import AuditLine, ShareStatus
from calshare.links import (
    ADD_CALENDAR_ROUTE,
    CALENDARS_ROUTE,
    SOURCE_SCHEMES_SHOWN,
    ConsolePage,
    calendar_page_path,
    calendar_route,
    from_webcal,
)
from calshare.netguard import literal_address, owner_guard
from calshare.owners import may_add_calendars
from calshare.publishing import Publication, live_publications
from calshare.refresh import add_following
from calshare.sharing import Share, list_shares
from calshare.sources import is_url, redact
from calshare.store import Store
from calshare.subscriptions import (
    CALDAV,
    FILE,
    URL,
    SourceRecord,
    kind_of,
    list_sources,
    parse_interval,
    shown_source,
)
from calshare.webcontext import CONTEXT

log = logging.getLogger(__name__)

HISTORY_PAGE = 200  # audit lines per History page; older ones behind a link
FIELD_BYTES = 4096  # the longest plain field of the Add form (a URL, a name)
FIELDS_BYTES = 16 * 1024  # all plain fields of one Add form together, as the app's cap
ADD_FIELDS = frozenset({"csrf", "name", "tz", "kind", "url", "every"})  # and "file"
# How often a followed URL may be read, as the Add form offers it (the server's
# minimum, ``sources.minimum_interval``, takes out the shorter ones).
INTERVALS = (("15m", 900), ("30m", 1800), ("1h", 3600), ("6h", 21600), ("24h", 86400))
# The order a calendar's people are counted in: who sees it first.
SHARE_ORDER = (
    ShareStatus.ACCEPTED,
    ShareStatus.INVITED,
    ShareStatus.EXPIRED,
    ShareStatus.DECLINED,
    ShareStatus.UNDELIVERABLE,
)
FORM_KINDS = (URL, CALDAV, FILE)  # the Add form's choices, in its order


# --- pure parts: what a page shows, from what the store holds


def local_time(utc: str | None, zone: str) -> str | None:
    """A stored UTC instant (``clock.utc_text``) as the calendar's zone reads it."""
    if not utc:
        return None
    moment = datetime.fromisoformat(utc.replace("Z", "+00:00"))
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def share_counts(shares: Iterable[Share], lang: str) -> list[str]:
    """The people a calendar is shared with, counted by status ("2 accepted", "1 invited").

    Removed shares are nobody's any more: they are not counted.
    """
    counts = Counter(share.status for share in shares)
    return [
        words.text(f"calendars.people.{status.value}", lang, count=counts[status])
        for status in SHARE_ORDER
        if counts[status]
    ]


def source_lines(record: SourceRecord | None, calendar: Calendar, lang: str) -> dict[str, Any]:
    """What a calendar follows and how reading it goes, safe to show (no secret path)."""
    if record is None:
        if calendar.source and is_url(calendar.source):
            shown = shown_source(None, calendar.source)
        elif calendar.source:  # the operator's ``calendar import FILE``: not the owner's path
            shown = words.text("calendars.source.server_file", lang)
        elif calendar.imported_at:
            shown = words.text("calendars.source.none", lang)
        else:
            shown = words.text("calendars.source.nothing", lang)
        return {"shown": shown, "kind": None, "status": [], "failing": False}
    zone = calendar.zone
    status: list[str] = []
    if record.kind != FILE:
        every = record.interval_seconds // 60
        status.append(words.text("calendars.source.every", lang, minutes=every))
    success = local_time(record.last_success_at, zone)
    status.append(
        words.text("calendars.source.success", lang, at=success)
        if success
        else words.text("calendars.source.never", lang)
    )
    failing = record.failing_since is not None
    if failing:
        cause_key = f"cause.{record.last_cause}"
        cause = (
            words.text(cause_key, lang)
            if words.has(cause_key, lang)
            else words.text("cause.other", lang)
        )
        status.append(
            words.text(
                "calendars.source.failing",
                lang,
                since=local_time(record.failing_since, zone),
                cause=cause,
            )
        )
    return {
        "shown": record.shown
        if record.kind != FILE
        else words.text("calendars.source.server_file", lang),
        "kind": words.text(f"calendars.kind.{record.kind}", lang),
        "status": status,
        "failing": failing,
    }


def calendar_rows(
    calendars: Sequence[Calendar],
    sources: Mapping[int, SourceRecord],
    shares: Mapping[str, Sequence[Share]],
    publications: Mapping[int, Publication],
    lang: str,
) -> list[dict[str, Any]]:
    """One row of My calendars per calendar: its facts, in words, and its pages."""
    rows = []
    for calendar in calendars:
        published = publications.get(calendar.id)
        rows.append(
            {
                "name": calendar.name,
                "zone": calendar.zone,
                "events": words.text(
                    "calendars.events", lang, count=words.number(calendar.event_count, lang)
                ),
                "imported": local_time(calendar.imported_at, calendar.zone)
                or words.text("calendars.never_imported", lang),
                "source": source_lines(sources.get(calendar.id), calendar, lang),
                "people": share_counts(shares.get(calendar.name, ()), lang)
                or [words.text("calendars.people.none", lang)],
                "published": words.text(
                    "calendars.published", lang, level=words.level(published.level, lang)
                )
                if published
                else words.text("calendars.not_published", lang),
                "pages": calendar_tabs(calendar, lang, None),
            }
        )
    return rows


def _level_words(text: str, lang: str) -> str:
    """A level as the audit log stored it (``titles``), in Outlook's words."""
    try:
        return words.level(Level(text.strip()), lang)
    except ValueError:
        return text


def history_line(line: AuditLine, zone: str, lang: str) -> dict[str, str]:
    """One audit line in words: when (in the calendar's zone), what, and its detail."""
    detail = line.detail
    fields: dict[str, str] = {"who": line.subject, "level": "", "old": "", "new": ""}
    shown_detail = ""
    if line.action in ("invited", "accepted", "declined", "published", "unpublished"):
        fields["level"] = _level_words(detail.removeprefix("level "), lang)
    elif line.action == "level_changed":
        old, _, new = detail.partition(" -> ")
        fields["old"], fields["new"] = _level_words(old, lang), _level_words(new, lang)
    elif line.action == "unshared":
        was = detail.removeprefix("was ")
        key = f"history.was.{was}"
        shown_detail = words.text(key, lang) if words.has(key, lang) else ""
    elif line.action == "source_failing":
        key = f"cause.{detail}"
        shown_detail = words.text(key if words.has(key, lang) else "cause.other", lang)
    elif line.action in ("snapshot", "undeliverable"):
        shown_detail = detail
    key = f"history.{line.action}"
    what = (
        words.text(key, lang, **fields)
        if words.has(key, lang)
        else words.text("history.other", lang, action=line.action)
    )
    return {"at": local_time(line.at, zone) or "", "what": what, "detail": shown_detail}


def interval_choices(settings: Settings, lang: str) -> list[dict[str, str]]:
    """The Add form's "read again every" drop-down: the server's default, then the rest."""
    minimum = settings.sources.minimum_interval
    default = words.text("add.every.default", lang, minutes=settings.sources.interval // 60)
    return [{"value": "", "label": default}] + [
        {"value": value, "label": words.text(f"add.every.{value}", lang)}
        for value, seconds in INTERVALS
        if seconds >= minimum
    ]


# --- My calendars


async def my_calendars(request: web.Request) -> web.StreamResponse:
    visit = await signed_in(request)
    context = request.app[CONTEXT]
    lang = visit.lang

    def read() -> tuple[list[dict[str, Any]], bool]:
        store = context.store
        calendars = list_calendars(store.db, owner=visit.owner)
        if not calendars:
            return [], may_add_calendars(store.db, context.settings, visit.owner)
        sources = {record.calendar_id: record for record in list_sources(store.db, visit.owner)}
        shares: dict[str, list[Share]] = {}
        for share in list_shares(store, context.clock, owner=visit.owner):
            shares.setdefault(share.calendar, []).append(share)
        publications = live_publications(store.db, visit.owner)
        return calendar_rows(calendars, sources, shares, publications, lang), True

    rows, may_add = await context.run(read)
    return render(
        visit,
        lang,
        "calendars.html",
        words.text("calendars.title", lang),
        path=CALENDARS_ROUTE,
        calendars=rows,
        may_add=may_add,
        done=done_message(request.query, lang),
    )


# --- Add calendar


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


class FormRefused(Exception):
    """The Add form cannot be taken as sent; ``key`` names the sentence that says why."""

    def __init__(self, key: str, status: int = 400, **fields: Any) -> None:
        super().__init__(key)
        self.key = key
        self.status = status
        self.fields = fields


def _forged() -> web.HTTPForbidden:
    log.info("console: refused an Add calendar form with a wrong anti-forgery field")
    return web.HTTPForbidden(
        text="This form has expired or did not come from calshare; nothing was changed.\n"
    )


async def _read_small(part: BodyPartReader, room: int) -> str:
    """One plain field: at most FIELD_BYTES, and at most ``room`` (what the form has left)."""
    data = bytearray()
    while chunk := await part.read_chunk(1024):
        data += chunk
        if len(data) > FIELD_BYTES:
            raise FormRefused("add.error.field_too_long")
        if len(data) > room:
            raise FormRefused("add.error.fields_too_large", 413)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise FormRefused("add.error.unreadable") from None


async def read_add_form(
    request: web.Request, visit: Visit, max_bytes: int, fields: dict[str, str]
) -> Upload | None:
    """The Add form's file, streamed (at most ``max_bytes``); its plain fields go to ``fields``
    as they come, so a refused form is shown again with what was typed.

    A form without a file (a URL) may come urlencoded (``read_form``). A multipart
    one must name its anti-forgery field before the file: a forged form is refused
    (403) before the file is read, and a file over the cap stops the read there.
    The whole body may take ``import.timeout_seconds`` plus a second per 100 kB of
    the cap: a 20 MB export on a slow uplink is no attack, a trickle forever is.
    """
    if request.content_type != "multipart/form-data":
        form = await read_form(request, visit)
        fields.update((name, value) for name, value in form.items() if isinstance(value, str))
        return None
    context = request.app[CONTEXT]
    upload: Upload | None = None
    checked = False
    seen: set[str] = set()
    text_bytes = 0
    allowed_seconds = context.settings.import_.timeout_seconds + max_bytes / 100_000
    try:
        async with asyncio.timeout(allowed_seconds):
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader) or not part.name:
                    raise FormRefused("add.error.unreadable")
                if part.filename is None:
                    # only the form's own fields, each once, FIELDS_BYTES in all: a body of
                    # 40,000 small fields must not become 160 MB of memory
                    if part.name not in ADD_FIELDS:
                        raise FormRefused("add.error.unknown_field")
                    if part.name in seen:
                        raise FormRefused("add.error.repeated_field")
                    seen.add(part.name)
                    value = await _read_small(part, FIELDS_BYTES - text_bytes)
                    text_bytes += len(value.encode("utf-8"))
                    if part.name == "csrf":
                        if not sessions.csrf_ok(context.csrf_key, visit.session, value):
                            raise _forged()
                        checked = True
                    fields[part.name] = value
                    continue
                if not checked:
                    raise _forged()
                if part.name != "file" or upload is not None:
                    raise FormRefused("add.error.unreadable")
                data = bytearray()
                while chunk := await part.read_chunk(65536):
                    data += chunk
                    if len(data) > max_bytes:
                        raise FormRefused(
                            "add.error.too_large", 422, megabytes=f"{max_bytes / 1e6:.1f}"
                        )
                upload = Upload(part.filename, bytes(data))
    except TimeoutError:
        raise web.HTTPRequestTimeout(text="The form came too slowly.\n") from None
    except ValueError:  # not multipart after all, or a broken boundary
        raise FormRefused("add.error.unreadable") from None
    if not checked:
        raise _forged()
    return upload


def _upload_label(filename: str) -> str:
    """How messages name an uploaded file: its base name, printable, not too long."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    shown = "".join(char if char.isprintable() else "?" for char in base)[:80].strip()
    return shown or "the uploaded file"


@dataclass(frozen=True)
class AddRequest:
    """An Add form, checked as far as can be without the store."""

    name: str
    tz: str | None
    kind: str  # URL, CALDAV or FILE (an upload)
    location: str | None
    interval_seconds: int
    upload: Upload | None


def parse_add(fields: Mapping[str, str], upload: Upload | None, settings: Settings) -> AddRequest:
    """The form's choice, or FormRefused: only a URL or an upload, never a server path."""
    name = fields.get("name", "").strip()
    tz = fields.get("tz", "").strip() or None
    choice = fields.get("kind", "")
    if choice not in FORM_KINDS:
        raise FormRefused("add.error.kind")
    if choice == FILE:
        if upload is None or (not upload.data and not upload.filename):
            raise FormRefused("add.error.no_file")
        return AddRequest(name, tz, FILE, None, 0, upload)
    location = fields.get("url", "").strip()
    if not location:
        raise FormRefused("add.error.no_url")
    if not is_url(location):
        raise FormRefused("add.error.not_url", schemes=SOURCE_SCHEMES_SHOWN)
    kind = kind_of(location, choice == CALDAV)
    try:
        redact(location)  # a URL that cannot be taken apart is refused before anything is added
    except ImportFailed:
        raise FormRefused("add.error.bad_url") from None
    # The quick, clear refusal of an internal address written out; a name that resolves
    # to one, or a redirect to one, is refused when the connection is made (netguard).
    guard = owner_guard(settings.owners.private_sources)
    literal = literal_address(from_webcal(location))
    if guard is not None and literal is not None and guard.refuses(literal):
        raise FormRefused("add.error.private_address", 422, address=literal)
    every = fields.get("every", "")
    if every and every not in dict(INTERVALS):
        raise FormRefused("add.error.every")
    try:
        interval = parse_interval(every, settings) if every else settings.sources.interval
    except UsageError:
        raise FormRefused("add.error.every") from None
    return AddRequest(name, tz, kind, location, interval, None)


def _add_page(
    visit: Visit,
    settings: Settings,
    may_add: bool,
    *,
    values: Mapping[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    lang = visit.lang
    # never the URL typed: its path is a secret (a Google or Outlook address), and
    # pages show a source only as ``shown_source``; the owner pastes it again
    values = {
        key: value
        for key, value in (values or {}).items()
        if key in ("name", "tz", "kind", "every")
    }
    return render(
        visit,
        lang,
        "add_calendar.html",
        words.text("add.title", lang),
        status=status,
        path=ADD_CALENDAR_ROUTE,
        may_add=may_add,
        domain=settings.mail.domain,
        values={"name": "", "tz": "", "url": "", "kind": URL, "every": "", **values},
        intervals=interval_choices(settings, lang),
        kinds=[
            (kind, words.text(f"add.kind.{kind}", lang, schemes=SOURCE_SCHEMES_SHOWN))
            for kind in FORM_KINDS
        ],
        max_megabytes=f"{settings.import_.max_bytes / 1e6:.1f}",
        error=error,
    )


async def add_form(request: web.Request) -> web.StreamResponse:
    visit = await signed_in(request)
    context = request.app[CONTEXT]
    may_add = await context.run(
        lambda: may_add_calendars(context.store.db, context.settings, visit.owner)
    )
    return _add_page(visit, context.settings, may_add)


async def add_post(request: web.Request) -> web.StreamResponse:
    visit = await signed_in(request)
    context = request.app[CONTEXT]
    settings = context.settings
    lang = visit.lang
    may_add = await context.run(lambda: may_add_calendars(context.store.db, settings, visit.owner))
    if not may_add:  # refused before a byte of the body is read: nothing to store
        return _add_page(
            visit,
            settings,
            False,
            error=words.text(
                "add.not_allowed", lang, domain=settings.mail.domain, owner=visit.owner
            ),
            status=403,
        )
    fields: dict[str, str] = {}
    try:
        upload = await read_add_form(request, visit, settings.import_.max_bytes, fields)
        wanted = parse_add(fields, upload, settings)
    except FormRefused as refused:
        return _add_page(
            visit,
            settings,
            True,
            values=fields,
            error=words.text(refused.key, lang, **refused.fields),
            status=refused.status,
        )

    def add(store: Store) -> str:
        # A file: on the database worker (no network). A URL: on the slow lane, with
        # that thread's own Store, so the fetch (up to ``import.timeout_seconds``)
        # holds neither the worker nor anyone else's pages; one such job per owner.
        if wanted.upload is not None:
            result = add_from_data(
                store,
                settings,
                context.clock,
                wanted.name,
                visit.owner,
                wanted.tz,
                wanted.upload.data,
                _upload_label(wanted.upload.filename),
            )
            return result.calendar.name
        assert wanted.location is not None
        calendar, _ = add_following(
            store,
            settings,
            context.clock,
            name=wanted.name,
            owner=visit.owner,
            tz=wanted.tz,
            kind=wanted.kind,
            location=wanted.location,
            interval_seconds=wanted.interval_seconds,
            guarded=True,  # an owner's source: read under the SSRF guard, now and later
        )
        return calendar.name

    try:
        if wanted.upload is not None:
            name = await context.run(lambda: add(context.store))
        else:
            name = await context.run_slow(visit.owner, add)
    except StillRunning:
        return _add_page(
            visit,
            settings,
            True,
            values=fields,
            error=words.text("slow.running", lang),
            status=429,
        )
    except (UsageError, AddressError, DuplicateCalendar, ImportFailed) as exc:
        status = 409 if isinstance(exc, DuplicateCalendar) else 400
        if isinstance(exc, ImportFailed):
            status = 422
        return _add_page(
            visit,
            settings,
            True,
            values=fields,
            error=words.text("add.failed", lang, reason=str(exc)),
            status=status,
        )
    except CalshareError as exc:  # the store was busy, or the like: nothing was added
        log.warning("console: adding a calendar failed: %s", exc)
        return _add_page(
            visit,
            settings,
            True,
            values=fields,
            error=words.text("add.failed", lang, reason=str(exc)),
            status=503,
        )
    log.info("console: %s added calendar %s", visit.owner, name)
    context.on_mail_queued()
    raise see_other(CALENDARS_ROUTE, done="added")


# --- History


async def history(request: web.Request) -> web.StreamResponse:
    visit = await signed_in(request)
    context = request.app[CONTEXT]
    lang = visit.lang
    before_text = request.query.get("before", "")
    if before_text and not (
        before_text.isascii() and before_text.isdigit() and len(before_text) <= 18
    ):
        raise web.HTTPBadRequest(text="before must be a number.\n")
    before = int(before_text) if before_text else None
    wanted = calendar_id(request)

    def read() -> tuple[Calendar, list[AuditLine]]:
        calendar = owned_calendar(context, visit, wanted)
        lines = lifecycle.history(
            context.store.db, calendar.id, before=before, limit=HISTORY_PAGE + 1
        )
        return calendar, lines

    calendar, lines = await context.run(read)
    older = None
    if len(lines) > HISTORY_PAGE:
        lines = lines[:HISTORY_PAGE]
        older = f"{calendar_page_path(calendar.id, ConsolePage.HISTORY)}?before={lines[-1].id}"
    return render(
        visit,
        lang,
        "history.html",
        words.text("history.title", lang, name=calendar.name),
        path=request.path_qs,
        tabs=calendar_tabs(calendar, lang, ConsolePage.HISTORY),
        lines=[history_line(line, calendar.zone, lang) for line in lines],
        zone=calendar.zone,
        older=older,
        newest=calendar_page_path(calendar.id, ConsolePage.HISTORY) if before else None,
    )


def register(router: web.UrlDispatcher) -> None:
    router.add_get(CALENDARS_ROUTE, my_calendars)
    router.add_get(ADD_CALENDAR_ROUTE, add_form)
    router.add_post(ADD_CALENDAR_ROUTE, add_post)
    router.add_get(calendar_route(ConsolePage.HISTORY), history)
