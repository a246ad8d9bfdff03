"""The ``calshare`` command line.

The one place where our exceptions become one line on stderr and exit code 2, and
the one place that words them for a shell user (``worded``): the domain says what
is wrong in plain words, with the part of the request it is about (``errors.Field``)
and what to do next (``errors.Remedy``); here they become flags and commands.
Commands are thin: they parse arguments, call the domain, and print. Owners are
tenants: every command that names a calendar takes ``--owner`` for when two owners
use that name.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import IO, Any, NoReturn
from zoneinfo import ZoneInfo

from calshare import __version__
from calshare.addresses import parse_mailbox
from calshare.calendars import (
    Calendar,
    add_calendar,
    calendar_by_id,
    get_calendar,
    list_calendars,
)
from calshare.clock import Clock, SystemClock, utc_text
from calshare.config import Settings, load_settings
from calshare.errors import CalshareError, Field, LevelError, Remedy, UsageError
from calshare.expansion import Caps
from calshare.importer import import_calendar
from calshare.levels import Level
from calshare.occurrence import Occurrence, occurrence_to_json
from calshare.ranges import DateRange
from calshare.sources import redact
from calshare.store import DEFAULT_DB, Store
from calshare.subscriptions import shown_source
from calshare.views import visible_occurrences

EXIT_ERROR = 2
DEMO_SMTP = "127.0.0.1:8025"  # the Makefile's SMTP for `make run`, which passes it to both
EXIT_MAIL_FAILED = 1  # outbox flush: a mail failed, or the relay was down or refused us
MAX_WINDOW_DAYS = 100 * 366


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


@dataclass
class Context:
    db_path: Path
    settings: Settings
    clock: Clock
    out: IO[str]
    err: IO[str]
    _store: Store | None = field(default=None, init=False, repr=False)

    @property
    def store(self) -> Store:
        """The database, opened (and created) on first use.

        Commands that need no store (``inbox classify``) never touch this, so they
        create no ``var/calshare.db`` in the folder they are run from.
        """
        if self._store is None:
            self._store = Store.open(self.db_path)
        return self._store

    def close_store(self) -> None:
        """Close the database if a command opened it; the next use opens it again."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def print_json(self, value: Any) -> None:
        json.dump(value, self.out, ensure_ascii=False, indent=2)
        self.out.write("\n")

    def warn(self, message: str) -> None:
        self.err.write(f"calshare: warning: {_one_line(message)}\n")


def _level_argument(text: str) -> Level:
    try:
        return Level.parse(text)
    except LevelError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _owner_argument(text: str) -> str:
    """``--owner``: the address as the store holds it (normalized, without a name)."""
    try:
        return parse_mailbox(text).address
    except CalshareError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# The flag that sets each part of a request a domain error can be about.
FLAGS: dict[Field, str] = {
    Field.RANGE: "--range",
    Field.RECIPIENTS: "--to",
    Field.LAYOUT: "--layout",
    Field.LEVEL: "--level",
    Field.WEBDAV: "--webdav",
    Field.INTERVAL: "--every",
    Field.CALDAV: "--caldav",
    Field.WORKING_HOURS: "--working-hours-only",
    Field.OWNER: "--owner",
}

# The command that does what a remedy says; {name} is the calendar, {owner} its
# " --owner EMAIL" when the command line named one.
COMMANDS: dict[Remedy, str] = {
    Remedy.ADD_CALENDAR: "add it with: calshare calendar add {name} --owner EMAIL",
    Remedy.ADD_SOURCE: "give it one with: calshare calendar add {name} --owner EMAIL "
    "--source URL_OR_FILE",
    Remedy.IMPORT: "calshare calendar import {name}{owner} FILE_OR_URL",
    Remedy.PUSH: "`calshare push {name}{owner}` tries again",
    Remedy.PUSH_FORCE: "`calshare push {name}{owner} --force` writes it even over "
    "someone else's change",
    Remedy.UNPUBLISH: "`calshare unpublish {name}{owner}` withdraws it",
    Remedy.UNPUBLISH_AGAIN: "`calshare unpublish {name}{owner}` tries again",
    Remedy.UNPUBLISH_FORCE: "`calshare unpublish {name}{owner} --force` deletes them "
    "even if someone changed them",
    Remedy.NAME_OWNER: "add --owner EMAIL",
}


def commands_for(remedies: Sequence[Remedy], calendar: str | None, owner: str | None) -> str:
    """The commands that carry out ``remedies``, as one clause ("" for none)."""
    said = [
        COMMANDS[remedy].format(name=calendar or "NAME", owner=f" --owner {owner}" if owner else "")
        for remedy in remedies
    ]
    return "; ".join(said)


def _address_of(owner: str | None) -> str | None:
    """``--owner`` as a command can repeat it (``calendar add`` takes "Name <address>")."""
    if not owner:
        return None
    try:
        return parse_mailbox(owner).address
    except CalshareError:
        return None


def worded(exc: CalshareError, args: argparse.Namespace | None = None) -> str:
    """A domain error as a shell user needs it: with the flag it is about and the command
    to run. The domain's message stays plain words (the web shows it as is)."""
    owner = _address_of(getattr(args, "owner", None))
    said = []
    if exc.field is not None:
        flag = FLAGS[exc.field]
        said.append(f"{flag} {exc.suggestion}" if exc.suggestion else flag)
    then = commands_for(exc.remedies, exc.calendar, owner)
    said += [then] if then else []
    message = str(exc)
    return f"{message.rstrip('.')} ({'; '.join(said)})" if said else message


def _one_line(text: str) -> str:
    """One line of printable text: messages can quote a server's or a file's words."""
    flat = " ".join(str(text).split())
    return "".join(char if char.isprintable() else "?" for char in flat)


# --- commands


def cmd_calendar_add(ctx: Context, args: argparse.Namespace) -> int:
    """calshare calendar add project --owner ann@example.org --source https://example.org/p.ics"""
    from calshare.subscriptions import FILE, kind_of, parse_interval

    source = args.source
    if source is None and (args.caldav or args.every):
        raise UsageError("--caldav and --every go with --source URL_OR_FILE")
    if source is not None:
        kind = kind_of(source, args.caldav)
        interval = (
            parse_interval(args.every, ctx.settings)
            if args.every
            else ctx.settings.sources.interval
        )
        if kind == FILE:
            path = Path(source).expanduser()
            if not path.is_file():
                raise UsageError(f"{source} is not a file (a source is a URL or a calendar file)")
            source = str(path.resolve())
        else:
            redact(source)  # a URL that cannot be taken apart fails here, before anything is added
    refreshed = None
    if source is None:
        calendar = add_calendar(
            ctx.store, ctx.clock, args.name, args.owner, args.tz, ctx.settings.calendars.default_tz
        )
    else:
        from calshare.refresh import add_following

        calendar, refreshed = add_following(
            ctx.store,
            ctx.settings,
            ctx.clock,
            name=args.name,
            owner=args.owner,
            tz=args.tz,
            kind=kind,
            location=source,
            interval_seconds=interval,
        )
    if args.json:
        ctx.print_json(
            {
                **_calendar_json(calendar),
                **({"refresh": _refreshed_json(refreshed)} if refreshed else {}),
            }
        )
    else:
        print(
            f"Added calendar {calendar.name!r} for {calendar.owner} ({calendar.zone})", file=ctx.out
        )
        if refreshed is not None:
            print(
                f"It follows {refreshed.source}: {calendar.event_count:,} events now"
                + ("" if kind == FILE else f", read again every {_every(interval)}"),
                file=ctx.out,
            )
    if refreshed is not None and refreshed.altered:
        _republish(ctx, calendar)
    return 0


def _every(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _due_text(moment: int | None) -> str | None:
    if moment is None:
        return None
    return utc_text(datetime.fromtimestamp(moment, UTC))


def _refreshed_json(refreshed: Any) -> dict[str, Any]:
    return {
        "calendar": refreshed.calendar,
        "source": refreshed.source,
        "result": refreshed.result,
        "cause": refreshed.cause,
        "message": refreshed.message or None,
        "altered": refreshed.altered,
        "events": refreshed.events,
        "next_due": _due_text(refreshed.next_due_ts),
        "owner_mail": refreshed.mail,
    }


def cmd_calendar_refresh(ctx: Context, args: argparse.Namespace) -> int:
    """calshare calendar refresh project   (or --all)"""
    from calshare.refresh import FAILED, refresh_round
    from calshare.subscriptions import FILE, get_source, list_sources

    if bool(args.all) == bool(args.name):
        raise UsageError("Name one calendar, or give --all")
    if args.all:
        records = [
            record for record in list_sources(ctx.store.db, args.owner) if record.kind != FILE
        ]
    else:
        records = [get_source(ctx.store.db, args.name, args.owner)]
    altered: list[int] = []
    done = refresh_round(ctx.store, ctx.settings, ctx.clock, records, on_altered=altered.append)
    for calendar_id in altered:
        try:
            _republish(ctx, calendar_by_id(ctx.store.db, calendar_id))
        except CalshareError as exc:
            ctx.warn(worded(exc, args))
    done.sort(key=lambda item: item.calendar)
    if args.json:
        ctx.print_json([_refreshed_json(item) for item in done])
    else:
        if not done:
            print("No calendar follows a source that can be read again", file=ctx.out)
        for item in done:
            if item.result == FAILED:
                what = (
                    f"failed: {item.message}; it keeps its last good copy ({item.events:,} events)"
                )
            elif item.altered:
                what = f"changed: {item.events:,} events now"
            else:
                what = "unchanged"
            print(f"{item.calendar}: {_one_line(what)}", file=ctx.out)
    failed = [item for item in done if item.result == FAILED]
    if failed:
        ctx.err.write(
            f"calshare: error: {len(failed)} of {len(done)} sources could not be read "
            "(see calshare calendar sources)\n"
        )
        return EXIT_ERROR
    return 0


def cmd_calendar_sources(ctx: Context, args: argparse.Namespace) -> int:
    """calshare calendar sources --json"""
    from calshare.subscriptions import list_sources

    records = list_sources(ctx.store.db, args.owner)
    rows: list[dict[str, Any]] = [
        {
            "calendar": record.calendar,
            "owner": record.owner,
            "kind": record.kind,
            "source": record.shown,
            "every_seconds": record.interval_seconds if record.kind != "file" else None,
            "last_success": record.last_success_at,
            "last_attempt": record.last_attempt_at,
            "last_result": record.last_result,
            "last_cause": record.last_cause,
            "last_error": record.last_error,
            "next_due": _due_text(record.next_due_ts),
            "last_change_altered_events": None
            if record.last_altered is None
            else bool(record.last_altered),
            "last_changed": record.last_changed_at,
            "failing_since": record.failing_since,
            "owner_told": record.owner_told_at,
            "failures": record.failures,
            "events": record.event_count,
        }
        for record in records
    ]
    if args.json:
        ctx.print_json(rows)
        return 0
    if not rows:
        print("No calendar follows a source; add one with: calshare calendar add NAME "
              "--owner EMAIL --source URL_OR_FILE", file=ctx.out)  # fmt: skip
    for row in rows:
        result = row["last_result"] or "never read"
        if row["last_cause"]:
            result += f" ({row['last_cause']}, failing since {row['failing_since']})"
        altered = {True: "altered events", False: "no visible change", None: "—"}[
            row["last_change_altered_events"]
        ]
        print(
            f"{row['calendar']:<20} {row['source']}\n"
            f"    last attempt {row['last_attempt'] or '—'}: {result}; "
            f"last success {row['last_success'] or '—'}; "
            f"next due {row['next_due'] or 'never (a file)'}; last change: {altered}",
            file=ctx.out,
        )
        if row["last_error"]:
            print(f"    {_one_line(row['last_error'])}", file=ctx.out)
    return 0


def cmd_calendar_import(ctx: Context, args: argparse.Namespace) -> int:
    """calshare calendar import project ~/Downloads/project.ics"""
    result = import_calendar(
        ctx.store, ctx.settings, ctx.clock, args.name, args.source, pause_gc=True, owner=args.owner
    )
    for warning in result.warnings:
        ctx.warn(warning)
    if args.json:
        ctx.print_json(
            {
                "calendar": result.calendar.name,
                "source": result.source,
                "unchanged": result.unchanged,
                "events": result.events,
                "series": result.series,
                "occurrences": result.occurrences,
                "warnings": result.warnings,
            }
        )
    elif result.unchanged:
        print(
            f"{result.calendar.name!r}: {result.source} is unchanged since its last import; "
            "nothing to do",
            file=ctx.out,
        )
    else:
        print(
            f"Imported {result.events:,} events ({result.series:,} recurring) into "
            f"{result.calendar.name!r} from {result.source}; "
            f"{result.occurrences:,} occurrences indexed",
            file=ctx.out,
        )
    if not result.unchanged:
        _republish(ctx, result.calendar)
    return 0


def _republish(ctx: Context, calendar: Calendar) -> None:
    """A calendar published to WebDAV is written there again after each import."""
    from calshare.errors import WebDavError
    from calshare.publishing import rewrite_after_import

    try:
        pushed = rewrite_after_import(ctx.store, ctx.settings, ctx.clock, calendar.id)
    except WebDavError as exc:
        raise WebDavError(
            f"Imported, but the published copy on WebDAV was not updated: {exc}",
            exc.status,
            remedies=exc.remedies,
            calendar=exc.calendar,
        ) from None
    if pushed:
        ctx.err.write(f"calshare: updated the published copy of {calendar.name!r} on WebDAV\n")


def cmd_calendar_list(ctx: Context, args: argparse.Namespace) -> int:
    """calshare calendar list --json"""
    from calshare.subscriptions import list_sources

    calendars = list_calendars(ctx.store.db, args.owner)
    follows = {record.calendar_id: record.shown for record in list_sources(ctx.store.db)}
    if args.json:
        ctx.print_json(
            [
                {**_calendar_json(calendar), "follows": follows.get(calendar.id)}
                for calendar in calendars
            ]
        )
        return 0
    if not calendars:
        print(
            "No calendars yet; add one with: calshare calendar add NAME --owner EMAIL", file=ctx.out
        )
    for calendar in calendars:
        imported = calendar.imported_at or "never imported"
        source = follows.get(calendar.id) or shown_source(None, calendar.source)
        print(
            f"{calendar.name:<20} {calendar.owner:<28} {calendar.zone:<20} "
            f"{calendar.event_count:>7,} events  {imported}  {source}".rstrip(),
            file=ctx.out,
        )
    return 0


def cmd_events(ctx: Context, args: argparse.Namespace) -> int:
    """calshare events project --from 2026-12-01 --to 2026-12-31 --level titles --json"""
    calendar = get_calendar(ctx.store.db, args.name, args.owner)
    found = _events(ctx, calendar, args.start, args.end, args.level, args.include_private)
    if args.json:
        ctx.print_json([occurrence_to_json(occurrence) for occurrence in found])
    else:
        _print_agenda(ctx.out, calendar, found)
    return 0


def _events(
    ctx: Context,
    calendar: Calendar,
    start_text: str,
    end_text: str,
    level: Level | None,
    include_private: bool,
) -> list[Occurrence]:
    """The window's occurrences as a viewer at ``level`` sees them (None: the owner)."""
    zone = calendar.zoneinfo
    start = _moment(start_text, zone, ctx.clock, "--from", end_of_day=False)
    end = _moment(end_text, zone, ctx.clock, "--to", end_of_day=True)
    if end <= start:
        raise UsageError(f"--to {end_text} is not after --from {start_text}")
    if end - start > timedelta(days=MAX_WINDOW_DAYS):
        raise UsageError("That window is longer than 100 years; ask for a shorter one")
    cut: list[str] = []
    found = visible_occurrences(
        ctx.store,
        calendar,
        start,
        end,
        level,
        include_private=include_private,
        now=ctx.clock.now(),
        limit_years=ctx.settings.calendars.index_limit_years,
        caps=Caps.of(ctx.settings.calendars),
        warnings=cut,
    )
    for warning in cut:
        ctx.warn(warning)
    return found


def _print_agenda(out: IO[str], calendar: Calendar, found: Sequence[Occurrence]) -> None:
    zone = calendar.zoneinfo
    if not found:
        print(f"No events in {calendar.name!r} in that window.", file=out)
    for occurrence in found:
        if occurrence.all_day:
            assert isinstance(occurrence.start, date)
            day, hours = occurrence.start, "all day    "
        else:
            assert isinstance(occurrence.start, datetime) and isinstance(occurrence.end, datetime)
            local_start, local_end = (
                occurrence.start.astimezone(zone),
                occurrence.end.astimezone(zone),
            )
            day, hours = local_start.date(), f"{local_start:%H:%M}–{local_end:%H:%M}"
        what = occurrence.summary or ""
        if occurrence.location:
            what += f" · {occurrence.location}"
        print(f"{day:%a %Y-%m-%d}  {hours}  {occurrence.busy:<9}  {what}".rstrip(), file=out)
    print(f"({len(found)} occurrences, times in {calendar.zone})", file=out)


def cmd_share(ctx: Context, args: argparse.Namespace) -> int:
    """calshare share project bob@example.org --level titles --message "For the launch" """
    from calshare.sharing import ShareAction, share

    outcome = share(
        ctx.store,
        ctx.settings,
        ctx.clock,
        args.name,
        args.email,
        args.level,
        lang=args.lang,
        message=args.message,
        owner=args.owner,
    )
    if args.json:
        ctx.print_json(
            {
                "action": outcome.action,
                "message_id": outcome.message_id,
                **_share_json(outcome.share),
            }
        )
        return 0
    who, level = outcome.share.invitee, outcome.share.level
    if outcome.action == ShareAction.UNCHANGED:
        print(f"{args.name!r} is already shared with {who} at {level}; nothing sent", file=ctx.out)
    elif outcome.action == ShareAction.LEVEL_CHANGED:
        print(f"{who} now has {level} on {args.name!r}; a notice is in the outbox", file=ctx.out)
    else:
        print(
            f"Invited {who} to {args.name!r} at {level} (valid until "
            f"{outcome.share.expires_at[:10]}); the invitation is in the outbox",
            file=ctx.out,
        )
    return 0


def cmd_snapshot(ctx: Context, args: argparse.Namespace) -> int:
    """calshare snapshot project --range next-7-days --detail titles --to bob@example.org"""
    from calshare.snapshots import Options, preview, send_snapshots
    from mailer.snapshot import Layout

    options = Options(
        range_text=args.range,
        detail=args.detail,
        working_hours_only=args.working_hours_only,
        include_private=args.include_private,
        layout=Layout(args.layout),
        lang=args.lang,
    )
    if args.out is not None:
        made = preview(ctx.store, ctx.settings, ctx.clock, args.name, options, owner=args.owner)
        _write_file(Path(args.out), made.mail.raw)
        if args.json:
            ctx.print_json(
                {
                    "file": args.out,
                    "level": str(made.level),
                    "events": made.events,
                    "range": _days_json(made.days),
                }
            )
        else:
            print(
                f"Wrote {args.out}: {made.events:,} events at {made.level}; nothing was sent",
                file=ctx.out,
            )
        return 0
    sent = send_snapshots(
        ctx.store, ctx.settings, ctx.clock, args.name, args.to, options, owner=args.owner
    )
    if args.json:
        ctx.print_json(
            [
                {
                    "to": item.recipient.address,
                    "level": str(item.level),
                    "capped": item.capped,
                    "events": item.events,
                    "range": _days_json(item.days),
                    "message_id": item.mail.message_id,
                }
                for item in sent
            ]
        )
        return 0
    for item in sent:
        why = f" (policy allows {item.recipient.address} no more)" if item.capped else ""
        print(
            f"Snapshot of {args.name!r} for {item.recipient.address}: {item.events:,} events "
            f"at {item.level}{why}; it is in the outbox",
            file=ctx.out,
        )
    return 0


def _days_json(days: DateRange) -> dict[str, str]:
    return {"from": days.first.isoformat(), "to": days.last.isoformat()}


def _write_file(path: Path, data: bytes) -> None:
    """Write whole or not at all: a half-written .eml is worse than none."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_bytes(data)
        temporary.replace(path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise UsageError(f"Cannot write {path}: {exc.strerror or exc}") from None


def cmd_publish(ctx: Context, args: argparse.Namespace) -> int:
    """calshare publish project --level free-busy [--webdav https://dav.example.org/cal/]"""
    from calshare.publishing import publish

    made = publish(
        ctx.store,
        ctx.settings,
        ctx.clock,
        args.name,
        args.level,
        webdav=args.webdav,
        owner=args.owner,
    )
    if args.json:
        ctx.print_json(
            {
                "calendar": made.calendar,
                "level": str(made.level),
                "capped": made.capped,
                "html": made.links.html,
                "ics": made.links.ics,
                "webcal": made.links.webcal,
                "webdav": made.webdav,
                "webdav_files": list(made.webdav_files),
                "webdav_etags": made.webdav_etags,
                "webdav_error": made.webdav_error,
            }
        )
    else:
        if made.capped:
            print(f"Policy allows publishing at {made.level} at most; published at that",
                  file=ctx.out)  # fmt: skip
        print(f"Published {made.calendar!r} at {made.level}. Anyone with these links can see it:",
              file=ctx.out)  # fmt: skip
        print(f"  web page:  {made.links.html}", file=ctx.out)
        print(f"  subscribe: {made.links.webcal}", file=ctx.out)
        print(f"  ICS file:  {made.links.ics}", file=ctx.out)
        _print_webdav_files(ctx, made.webdav_files)
        print("calshare keeps only a hash of these links: note them now.", file=ctx.out)
    _warn_no_etags(ctx, made.webdav, made.webdav_etags)
    if made.webdav_error:
        # the links above stand; the copy did not get written
        then = commands_for(made.webdav_remedies, made.calendar, args.owner)
        said = f"{made.webdav_error} ({then})" if then else made.webdav_error
        ctx.err.write(f"calshare: error: {_one_line(said)}\n")
        return EXIT_ERROR
    return 0


def _print_webdav_files(ctx: Context, urls: Sequence[str]) -> None:
    for number, url in enumerate(urls):
        print(f"  {'WebDAV:' if number == 0 else '':<10} {url}", file=ctx.out)


def _warn_no_etags(ctx: Context, folder: str | None, etags: bool | None) -> None:
    """Say when the server cannot refuse a write over someone else's change itself."""
    if folder and etags is False:
        ctx.warn(
            f"the WebDAV server for {folder} gives no ETags, so it cannot refuse to overwrite "
            "a file someone else changed; calshare reads each file back and compares it "
            "before replacing or deleting it, but a change made in between can be lost"
        )


def cmd_push(ctx: Context, args: argparse.Namespace) -> int:
    """calshare push project [--force]"""
    from calshare.publishing import sync

    copy = sync(ctx.store, ctx.settings, ctx.clock, args.name, force=args.force, owner=args.owner)
    if args.json:
        ctx.print_json(
            {
                "calendar": args.name,
                "webdav": copy.folder,
                "webdav_files": list(copy.written),
                "webdav_etags": copy.etags,
                "removed": list(copy.removed),
                "forgotten": [{"url": url, "why": why} for url, why in copy.forgotten],
                "webdav_error": " ".join(copy.problems) or None,
            }
        )
    else:
        if copy.written:
            print(f"Wrote the WebDAV copy of {args.name!r}; its links are unchanged:",
                  file=ctx.out)  # fmt: skip
            _print_webdav_files(ctx, copy.written)
        for url in copy.removed:
            print(f"Removed the old copy {url}", file=ctx.out)
        if not (copy.written or copy.removed or copy.problems or copy.forgotten):
            print(f"No WebDAV copy of {args.name!r} is left to write or remove", file=ctx.out)
    _warn_forgotten(ctx, copy.forgotten)
    _warn_no_etags(ctx, copy.folder, copy.etags)
    if copy.problems:
        then = commands_for(copy.remedies, args.name, args.owner)
        said = " ".join(copy.problems) + (f" ({then})" if then else "")
        ctx.err.write(f"calshare: error: {_one_line(said)}\n")
        return EXIT_ERROR
    return 0


def _warn_forgotten(ctx: Context, forgotten: Sequence[tuple[str, str]]) -> None:
    for url, why in forgotten:
        ctx.warn(
            f"{url} stays on the WebDAV server and calshare no longer keeps track of it "
            f"(it could not be deleted: {why}); remove it there yourself"
        )


def cmd_unpublish(ctx: Context, args: argparse.Namespace) -> int:
    """calshare unpublish project [--force]"""
    from calshare.publishing import unpublish

    done = unpublish(
        ctx.store, ctx.settings, ctx.clock, args.name, force=args.force, owner=args.owner
    )
    if args.json:
        ctx.print_json(
            {
                "calendar": done.calendar,
                "unpublished": True,
                "forgotten": [{"url": url, "why": why} for url, why in done.forgotten],
            }
        )
    elif done.links_withdrawn:
        print(f"Unpublished {done.calendar!r}: its links no longer work", file=ctx.out)
    else:
        print(f"Removed what was left of {done.calendar!r} on WebDAV", file=ctx.out)
    _warn_forgotten(ctx, done.forgotten)
    return 0


def cmd_unshare(ctx: Context, args: argparse.Namespace) -> int:
    """calshare unshare project bob@example.org"""
    from calshare.sharing import unshare

    result = unshare(ctx.store, ctx.settings, ctx.clock, args.name, args.email, owner=args.owner)
    if args.json:
        ctx.print_json(_share_json(result))
    else:
        print(f"Stopped sharing {args.name!r} with {result.invitee}", file=ctx.out)
    return 0


def cmd_shares(ctx: Context, args: argparse.Namespace) -> int:
    """calshare shares project --json"""
    from calshare.sharing import list_shares

    found = list_shares(ctx.store, ctx.clock, args.name, owner=args.owner)
    if args.json:
        ctx.print_json([_share_json(item) for item in found])
        return 0
    if not found:
        print("Not shared with anyone.", file=ctx.out)
    for item in found:
        answered = item.answered_at or item.revoked_at or ""
        print(
            f"{item.calendar:<16} {item.invitee:<32} {item.level:<10} {item.status:<14} "
            f"invited {item.invited_at[:10]}  {answered[:10]}".rstrip(),
            file=ctx.out,
        )
    return 0


def _share_json(item: Any) -> dict[str, Any]:
    return {
        "calendar": item.calendar,
        "email": item.invitee,
        "name": item.invitee_name,
        "level": str(item.level),
        "status": item.status,
        "lang": item.lang,
        "invited_at": item.invited_at,
        "expires_at": item.expires_at,
        "answered_at": item.answered_at,
        "revoked_at": item.revoked_at,
    }


def cmd_outbox(ctx: Context, args: argparse.Namespace) -> int:
    """calshare outbox --json"""
    from calshare.clock import parse_utc
    from mailer.outbox import OutboxStatus, entries

    waiting = entries(ctx.store.db)
    if args.json:
        ctx.print_json(
            [
                {
                    "id": entry.id,
                    "message_id": entry.message_id,
                    "kind": entry.kind,
                    "to": list(entry.recipients),
                    "subject": entry.subject,
                    "status": entry.status,
                    "attempts": entry.attempts,
                    "next_attempt_at": parse_utc(entry.next_attempt_at).isoformat(),
                    "last_error": entry.last_error,
                    "created_at": entry.created_at,
                }
                for entry in waiting
            ]
        )
        return 0
    if not waiting:
        print("The outbox is empty: every mail has been sent.", file=ctx.out)
    for entry in waiting:
        when = parse_utc(entry.next_attempt_at).strftime("%Y-%m-%d %H:%M")
        why = f" — {entry.last_error}" if entry.last_error else ""
        state = (
            f"{entry.status}, next try {when}"
            if entry.status == OutboxStatus.QUEUED
            else entry.status
        )
        print(
            f"#{entry.id} {entry.kind} to {', '.join(entry.recipients)}: {state}, "
            f"{entry.attempts} attempts{why}",
            file=ctx.out,
        )
    return 0


def cmd_outbox_flush(ctx: Context, args: argparse.Namespace) -> int:
    """calshare outbox flush --force"""
    import asyncio

    from calshare.sharing import delivery_failed
    from mailer.sender import default_transport, flush

    result = asyncio.run(
        flush(
            ctx.store,
            ctx.settings,
            ctx.clock,
            default_transport(ctx.settings),
            on_failed=delivery_failed(ctx.settings),
            force=args.force,
        )
    )
    if result.busy:
        print(
            "Another calshare process is sending the outbox right now; nothing to do.", file=ctx.out
        )
        return 0
    for problem in result.problems:
        ctx.warn(problem)
    where = "the relay" if ctx.settings.relay else f"the Maildir {ctx.settings.outbox.maildir}"
    print(
        f"Sent {result.sent} to {where}; {result.deferred} to retry later; {result.failed} failed",
        file=ctx.out,
    )
    if result.relay_problem is not None:
        ctx.warn(
            "mail waits because of the relay or calshare's settings, not the recipients; "
            "it is tried again after the fix (calshare outbox shows what waits)"
        )
    # non-zero for cron and monitoring: something needs someone's attention
    return 0 if result.ok else EXIT_MAIL_FAILED


def cmd_serve(ctx: Context, args: argparse.Namespace) -> int:
    """calshare serve --smtp 127.0.0.1:8025 --lmtp 127.0.0.1:8024"""
    import asyncio

    from calshare.daemon import Listen, serve

    smtp = Listen.parse(args.smtp, "--smtp") if args.smtp else None
    lmtp = Listen.parse(args.lmtp, "--lmtp") if args.lmtp else None
    http = Listen.parse(args.http, "--http") if args.http else None
    if smtp is None and lmtp is None and http is None:
        raise UsageError(
            "Say where to listen: --smtp HOST:PORT, --lmtp HOST:PORT and/or --http HOST:PORT"
        )
    logging.getLogger().setLevel(logging.INFO)
    # Opened (created, migrated) here, so a bad database is one line before listening.
    db_path = ctx.store.path
    ctx.close_store()  # the daemon opens its own connections
    try:
        asyncio.run(serve(ctx.settings, db_path, ctx.clock, smtp=smtp, lmtp=lmtp, http=http))
    except OSError as exc:  # the port is taken, or not ours to bind
        raise UsageError(f"Cannot listen: {exc.strerror or exc}") from None
    return 0


def cmd_inbox_classify(ctx: Context, args: argparse.Namespace) -> int:
    """calshare inbox classify reply.eml --json"""
    from calshare.links import parse_address
    from calshare.tokens import log_id, redact
    from inbox.classify import addresses, classify, parse_mail

    try:
        raw = Path(args.file).read_bytes()
    except OSError as exc:
        raise UsageError(f"Cannot read {args.file}: {exc.strerror or exc}") from None
    mail = parse_mail(raw)
    domain = ctx.settings.mail.domain
    recipient = args.to or next(
        (
            address
            for name in ("Delivered-To", "X-Original-To", "To", "Cc")
            for address in addresses(mail.message, name)
            if parse_address(address, domain)[0]
        ),
        "",
    )
    mail_from = args.sender if args.sender is not None else _return_path(mail.message)
    verdict = classify(mail, mail_from=mail_from, recipient=recipient, domain=domain)
    result = {
        "kind": verdict.kind,
        "reason": verdict.reason,
        "message_id": verdict.message_id,
        "from": verdict.sender,
        "to": redact(recipient) or None,
        "form": verdict.form,
        "token": log_id(verdict.token) if verdict.token else None,  # a hash prefix, not the token
    }
    if args.json:
        ctx.print_json(result)
    else:
        print(f"{verdict.kind}: {verdict.reason}", file=ctx.out)
    return 0


def _return_path(message: Any) -> str:
    value = str(message.get("Return-Path") or "").strip().strip("<>")
    return value


def cmd_demo(ctx: Context, args: argparse.Namespace) -> int:
    """calshare demo   # add the demo calendars (once) and show their next 7 days"""
    from calshare.daemon import Listen
    from calshare.demo import how_to_answer, publish_demo, seed_demo

    smtp = Listen.parse(args.smtp, "--smtp")
    results = seed_demo(ctx.store, ctx.settings, ctx.clock)
    published = publish_demo(ctx.store, ctx.settings, ctx.clock)
    for result in results:
        print(
            f"Imported the demo calendar {result.calendar.name!r}: {result.events} events",
            file=ctx.out,
        )
    for calendar in list_calendars(ctx.store.db, owner="demo@example.org"):
        print(f"\n{calendar.name} — the next 7 days:", file=ctx.out)
        _print_agenda(ctx.out, calendar, _events(ctx, calendar, "today", "+6", None, False))
    print(f"\n{how_to_answer(ctx.settings, smtp.host, smtp.port)}", file=ctx.out)
    if published is not None:
        print(
            f"\n'family' is published at {published.level}: open {published.links.html} in a "
            f"browser, or subscribe to {published.links.webcal}",
            file=ctx.out,
        )
    return 0


def _moment(text: str, zone: ZoneInfo, clock: Clock, flag: str, *, end_of_day: bool) -> datetime:
    """A date (whole days in the calendar's zone), ``today``, ``+N`` days, or an ISO datetime."""
    try:
        moment = _parse_moment(text, zone, clock, flag, end_of_day=end_of_day)
        moment.timestamp()  # must be representable, whatever the zone
    except UsageError:
        raise
    except (OverflowError, ValueError):
        raise UsageError(f"{flag} {text!r} is too far from today to be used") from None
    if not 1900 <= moment.year <= 2199:
        raise UsageError(f"{flag} {text!r} is outside the years calshare handles (1900–2199)")
    return moment


def _parse_moment(
    text: str, zone: ZoneInfo, clock: Clock, flag: str, *, end_of_day: bool
) -> datetime:
    value = text.strip()
    today = clock.now().astimezone(zone).date()
    day: date | None = None
    if value == "today":
        day = today
    elif value == "tomorrow":
        day = today + timedelta(days=1)
    elif value[:1] in "+-" and value[1:].isdigit():
        day = today + timedelta(days=int(value))
    else:
        try:
            if len(value) == 10:
                day = date.fromisoformat(value)
            else:
                moment = datetime.fromisoformat(value)
                return moment if moment.tzinfo else moment.replace(tzinfo=zone)
        except ValueError:
            raise UsageError(
                f"{flag} {text!r} is not a date: "
                "use YYYY-MM-DD, today, +N (days) or an ISO datetime"
            ) from None
    if end_of_day:
        day += timedelta(days=1)
    return datetime.combine(day, time(), zone)


def _calendar_json(calendar: Calendar) -> dict[str, Any]:
    return {
        "name": calendar.name,
        "owner": calendar.owner,
        "zone": calendar.zone,
        "events": calendar.event_count,
        "imported_at": calendar.imported_at,
        "version": calendar.version,
        "title": calendar.source_name,  # the source's X-WR-CALNAME
        "source": shown_source(None, calendar.source) or None,
    }


# --- the parser


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        default=argparse.SUPPRESS,
        help="SQLite file (default ./var/calshare.db, or CALSHARE_DB)",
    )
    common.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help="TOML file (default ./calshare.toml, or CALSHARE_CONFIG)",
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log what happens"
    )

    parser = _Parser(
        prog="calshare", description="Email-driven calendar sharing.", parents=[common]
    )
    parser.add_argument("--version", action="version", version=f"calshare {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(
        group: Any, name: str, handler: Callable[[Context, argparse.Namespace], int], help: str
    ) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(
            name,
            parents=[common],
            help=help,
            description=help,
            epilog=f"Example: {handler.__doc__}",
        )
        sub.set_defaults(handler=handler)
        return sub

    def owner_option(sub: argparse.ArgumentParser, what: str) -> None:
        sub.add_argument(
            "--owner",
            type=_owner_argument,
            metavar="EMAIL",
            help=f"{what} (needed when two owners have a calendar of that name)",
        )

    calendar = commands.add_parser("calendar", help="add, import and list calendars")
    calendar_commands = calendar.add_subparsers(
        dest="calendar_command", required=True, parser_class=_Parser
    )

    add = command(calendar_commands, "add", cmd_calendar_add, "add a calendar for an owner")
    add.add_argument("name")
    add.add_argument("--owner", required=True, metavar="EMAIL")
    add.add_argument("--tz", metavar="ZONE", help="IANA zone, e.g. Europe/Oslo")
    add.add_argument(
        "--source",
        metavar="URL_OR_FILE",
        help="follow this https/webcal URL (or CalDAV collection, or file) from now on",
    )
    add.add_argument(
        "--caldav", action="store_true", help="the --source URL is a CalDAV collection"
    )
    add.add_argument("--every", metavar="DURATION", help="how often to read it (default 15m)")
    add.add_argument("--json", action="store_true")

    imp = command(
        calendar_commands,
        "import",
        cmd_calendar_import,
        "replace a calendar's events with a file's or URL's",
    )
    imp.add_argument("name")
    imp.add_argument("source", metavar="FILE_OR_URL")
    owner_option(imp, "whose calendar")
    imp.add_argument("--json", action="store_true")

    lst = command(calendar_commands, "list", cmd_calendar_list, "list calendars")
    lst.add_argument("--owner", type=_owner_argument, metavar="EMAIL", help="only this owner's")
    lst.add_argument("--json", action="store_true")

    ref = command(
        calendar_commands, "refresh", cmd_calendar_refresh, "read calendars' sources again now"
    )
    ref.add_argument("name", nargs="?")
    ref.add_argument(
        "--all", action="store_true", help="every calendar with a URL or CalDAV source"
    )
    owner_option(ref, "whose calendar (with --all: only this owner's)")
    ref.add_argument("--json", action="store_true")

    src = command(
        calendar_commands,
        "sources",
        cmd_calendar_sources,
        "what each calendar follows, and how it goes",
    )
    src.add_argument("--owner", type=_owner_argument, metavar="EMAIL", help="only this owner's")
    src.add_argument("--json", action="store_true")

    events = command(commands, "events", cmd_events, "occurrences of a calendar in a window")
    events.add_argument("name")
    owner_option(events, "whose calendar")
    events.add_argument("--from", dest="start", required=True, metavar="DATE")
    events.add_argument(
        "--to", dest="end", required=True, metavar="DATE", help="inclusive when a date"
    )
    events.add_argument(
        "--level", type=_level_argument, metavar="LEVEL", help="free-busy, titles or details"
    )
    events.add_argument(
        "--include-private", action="store_true", help="with --level: show private items too"
    )
    events.add_argument("--json", action="store_true")

    share = command(
        commands, "share", cmd_share, "invite someone to a calendar, or change their level"
    )
    share.add_argument("name")
    share.add_argument("email")
    owner_option(share, "whose calendar")
    share.add_argument(
        "--level",
        required=True,
        type=_level_argument,
        metavar="LEVEL",
        help="free-busy, titles or details",
    )
    share.add_argument(
        "--lang", choices=["en", "nb"], help="language of the mail (default mail.lang)"
    )
    share.add_argument("--message", help="a note from you, shown in the invitation")
    share.add_argument("--json", action="store_true")

    snap = command(
        commands, "snapshot", cmd_snapshot, "email a copy of a date range (HTML and .ics)"
    )
    snap.add_argument("name")
    owner_option(snap, "whose calendar")
    snap.add_argument(
        "--range",
        required=True,
        metavar="RANGE",
        help="today, tomorrow, next-7-days, next-30-days, whole or YYYY-MM-DD..YYYY-MM-DD",
    )
    snap.add_argument(
        "--detail",
        type=_level_argument,
        default=Level.DETAILS,
        metavar="LEVEL",
        help="free-busy, titles or details (default; capped by policy per recipient)",
    )
    snap.add_argument(
        "--working-hours-only", action="store_true", help="only the owner's working hours"
    )
    snap.add_argument(
        "--include-private", action="store_true", help="show private items (else busy time)"
    )
    # mailer.snapshot.Layout's values: not imported here, the parser stays light
    snap.add_argument("--layout", choices=["daily", "list"], default="daily")
    snap.add_argument("--lang", choices=["en", "nb"], help="language (default mail.lang)")
    where = snap.add_mutually_exclusive_group(required=True)
    where.add_argument("--to", nargs="+", metavar="EMAIL", help="queue one mail per recipient")
    where.add_argument("--out", metavar="FILE.eml", help="write the mail for preview; send nothing")
    snap.add_argument("--json", action="store_true")

    pub = command(commands, "publish", cmd_publish, "HTML and ICS links anyone can open")
    pub.add_argument("name")
    owner_option(pub, "whose calendar")
    pub.add_argument(
        "--level",
        required=True,
        type=_level_argument,
        metavar="LEVEL",
        help="free-busy, titles or details (capped by policy.publish_max_level)",
    )
    pub.add_argument("--webdav", metavar="URL", help="also write NAME.ics and NAME.html there")
    pub.add_argument("--json", action="store_true")
    for name, run, about, force in (
        (
            "unpublish",
            cmd_unpublish,
            "make a calendar's links stop working",
            "delete WebDAV copies even if someone changed them; forget any that cannot go",
        ),
        (
            "push",
            cmd_push,
            "write the WebDAV copy again; the links stay",
            "replace or delete WebDAV files even if someone else changed or wrote them",
        ),
    ):
        webdav = command(commands, name, run, about)
        webdav.add_argument("name")
        owner_option(webdav, "whose calendar")
        webdav.add_argument("--force", action="store_true", help=force)
        webdav.add_argument("--json", action="store_true")

    unshare = command(commands, "unshare", cmd_unshare, "stop sharing a calendar with someone")
    unshare.add_argument("name")
    unshare.add_argument("email")
    owner_option(unshare, "whose calendar")
    unshare.add_argument("--json", action="store_true")

    shares = command(commands, "shares", cmd_shares, "who has which calendar, at which level")
    shares.add_argument("name", nargs="?")
    owner_option(shares, "whose calendar (without a name: only this owner's)")
    shares.add_argument("--json", action="store_true")

    box = command(commands, "outbox", cmd_outbox, "mail waiting to be sent, and why")
    box.add_argument("--json", action="store_true")
    box_commands = box.add_subparsers(dest="outbox_command", parser_class=_Parser)
    flush = command(box_commands, "flush", cmd_outbox_flush, "send what is due now")
    flush.add_argument("--force", action="store_true", help="also send mail waiting to retry")

    serve = command(
        commands, "serve", cmd_serve, "run the daemon: inbox, web pages and feeds, outbox sender"
    )
    serve.add_argument("--smtp", metavar="HOST:PORT", help="listen for SMTP (replies, bounces)")
    serve.add_argument("--lmtp", metavar="HOST:PORT", help="listen for LMTP (behind Postfix)")
    serve.add_argument("--http", metavar="HOST:PORT", help="serve feeds and answer pages")

    inbox = commands.add_parser("inbox", help="the inbox's view of a message")
    inbox_commands = inbox.add_subparsers(dest="inbox_command", required=True, parser_class=_Parser)
    classify = command(
        inbox_commands,
        "classify",
        cmd_inbox_classify,
        "what the inbox would make of a message; changes nothing",
    )
    classify.add_argument("file", metavar="FILE.eml")
    classify.add_argument(
        "--to", help="the address it was delivered to (default: from its headers)"
    )
    classify.add_argument(
        "--from", dest="sender", help="the envelope sender (default: Return-Path)"
    )
    classify.add_argument("--json", action="store_true")

    demo = command(commands, "demo", cmd_demo, "add the demo calendars and show their next 7 days")
    demo.add_argument(
        "--smtp",
        metavar="HOST:PORT",
        default=DEMO_SMTP,
        help=f"where `calshare serve --smtp` listens (default {DEMO_SMTP}): the demo says so",
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    clock: Clock | None = None,
    env: Mapping[str, str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    env = os.environ if env is None else env
    args: argparse.Namespace | None = None
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(
            level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
            format="calshare: %(levelname)s %(name)s: %(message)s",
            stream=err,
        )
        settings = load_settings(getattr(args, "config", None), env)
        db_path = getattr(args, "db", None) or env.get("CALSHARE_DB") or str(DEFAULT_DB)
        ctx = Context(Path(db_path), settings, clock or SystemClock(), out, err)
        try:
            return int(args.handler(ctx, args))
        finally:
            ctx.close_store()
    except CalshareError as exc:
        err.write(f"calshare: error: {_one_line(worded(exc, args))}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        err.write("calshare: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
