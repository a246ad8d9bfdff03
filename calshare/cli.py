"""The ``calshare`` command line.

The one place where our exceptions become one line on stderr and exit code 2.
Commands are thin: they parse arguments, call the domain, and print.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import IO, Any, NoReturn
from zoneinfo import ZoneInfo

from calshare import __version__
from calshare.calendars import Calendar, add_calendar, get_calendar, list_calendars
from calshare.clock import Clock, SystemClock
from calshare.config import Settings, load_settings
from calshare.errors import CalshareError, UsageError
from calshare.importer import import_calendar
from calshare.index import occurrences_between
from calshare.levels import Level, filter_occurrence
from calshare.occurrence import Occurrence, occurrence_to_json
from calshare.store import DEFAULT_DB, Store

EXIT_ERROR = 2
MAX_WINDOW_DAYS = 100 * 366


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


@dataclass
class Context:
    store: Store
    settings: Settings
    clock: Clock
    out: IO[str]
    err: IO[str]

    def print_json(self, value: Any) -> None:
        json.dump(value, self.out, ensure_ascii=False, indent=2)
        self.out.write("\n")

    def warn(self, message: str) -> None:
        self.err.write(f"calshare: warning: {_one_line(message)}\n")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# --- commands


def cmd_calendar_add(ctx: Context, args: argparse.Namespace) -> int:
    """calshare calendar add project --owner ann@example.org --tz Europe/Oslo"""
    calendar = add_calendar(
        ctx.store, ctx.clock, args.name, args.owner, args.tz, ctx.settings.calendars.default_tz
    )
    if args.json:
        ctx.print_json(_calendar_json(calendar))
    else:
        print(
            f"Added calendar {calendar.name!r} for {calendar.owner} ({calendar.zone})", file=ctx.out
        )
    return 0


def cmd_calendar_import(ctx: Context, args: argparse.Namespace) -> int:
    """calshare calendar import project ~/Downloads/project.ics"""
    result = import_calendar(ctx.store, ctx.settings, ctx.clock, args.name, args.source)
    for warning in result.warnings:
        ctx.warn(warning)
    if args.json:
        ctx.print_json(
            {
                "calendar": result.calendar.name,
                "source": result.source,
                "events": result.events,
                "series": result.series,
                "occurrences": result.occurrences,
                "warnings": result.warnings,
            }
        )
    else:
        print(
            f"Imported {result.events:,} events ({result.series:,} recurring) into "
            f"{result.calendar.name!r} from {result.source}; "
            f"{result.occurrences:,} occurrences indexed",
            file=ctx.out,
        )
    return 0


def cmd_calendar_list(ctx: Context, args: argparse.Namespace) -> int:
    """calshare calendar list --json"""
    calendars = list_calendars(ctx.store.db)
    if args.json:
        ctx.print_json([_calendar_json(calendar) for calendar in calendars])
        return 0
    if not calendars:
        print(
            "No calendars yet; add one with: calshare calendar add NAME --owner EMAIL", file=ctx.out
        )
    for calendar in calendars:
        imported = calendar.imported_at or "never imported"
        print(
            f"{calendar.name:<20} {calendar.owner:<28} {calendar.zone:<20} "
            f"{calendar.event_count:>7,} events  {imported}",
            file=ctx.out,
        )
    return 0


def cmd_events(ctx: Context, args: argparse.Namespace) -> int:
    """calshare events project --from 2026-12-01 --to 2026-12-31 --level titles --json"""
    calendar = get_calendar(ctx.store.db, args.name)
    zone = calendar.zoneinfo
    start = _moment(args.start, zone, ctx.clock, "--from", end_of_day=False)
    end = _moment(args.end, zone, ctx.clock, "--to", end_of_day=True)
    if end <= start:
        raise UsageError(f"--to {args.end} is not after --from {args.start}")
    if end - start > timedelta(days=MAX_WINDOW_DAYS):
        raise UsageError("That window is longer than 100 years; ask for a shorter one")
    # The owner at the CLI sees everything unless a level is asked for.
    level = Level.parse(args.level) if args.level else Level.DETAILS
    include_private = args.include_private or args.level is None
    found = [
        filter_occurrence(occurrence, level, include_private=include_private)
        for occurrence in occurrences_between(ctx.store, calendar, start, end)
    ]
    if args.json:
        ctx.print_json([occurrence_to_json(occurrence) for occurrence in found])
    else:
        _print_agenda(ctx.out, calendar, found)
    return 0


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


def cmd_demo(ctx: Context, args: argparse.Namespace) -> int:
    """calshare demo   # add the demo calendars (once) and show their next 7 days"""
    from calshare.demo import seed_demo

    for result in seed_demo(ctx.store, ctx.settings, ctx.clock):
        print(
            f"Imported the demo calendar {result.calendar.name!r}: {result.events} events",
            file=ctx.out,
        )
    today = ctx.clock.now().date().isoformat()
    for calendar in list_calendars(ctx.store.db, owner="demo@example.org"):
        print(f"\n{calendar.name} — the next 7 days:", file=ctx.out)
        ns = argparse.Namespace(
            name=calendar.name, start=today, end="+6", level=None, include_private=False, json=False
        )
        cmd_events(ctx, ns)
    return 0


def _moment(text: str, zone: ZoneInfo, clock: Clock, flag: str, *, end_of_day: bool) -> datetime:
    """A date (whole days in the calendar's zone), ``today``, ``+N`` days, or an ISO datetime."""
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

    calendar = commands.add_parser("calendar", help="add, import and list calendars")
    calendar_commands = calendar.add_subparsers(
        dest="calendar_command", required=True, parser_class=_Parser
    )

    add = command(calendar_commands, "add", cmd_calendar_add, "add a calendar for an owner")
    add.add_argument("name")
    add.add_argument("--owner", required=True, metavar="EMAIL")
    add.add_argument("--tz", metavar="ZONE", help="IANA zone, e.g. Europe/Oslo")
    add.add_argument("--json", action="store_true")

    imp = command(
        calendar_commands,
        "import",
        cmd_calendar_import,
        "replace a calendar's events with a file's or URL's",
    )
    imp.add_argument("name")
    imp.add_argument("source", metavar="FILE_OR_URL")
    imp.add_argument("--json", action="store_true")

    lst = command(calendar_commands, "list", cmd_calendar_list, "list calendars")
    lst.add_argument("--json", action="store_true")

    events = command(commands, "events", cmd_events, "occurrences of a calendar in a window")
    events.add_argument("name")
    events.add_argument("--from", dest="start", required=True, metavar="DATE")
    events.add_argument(
        "--to", dest="end", required=True, metavar="DATE", help="inclusive when a date"
    )
    events.add_argument(
        "--level",
        choices=[level.value for level in Level],
        help="show only what this level may see",
    )
    events.add_argument(
        "--include-private", action="store_true", help="with --level: show private items too"
    )
    events.add_argument("--json", action="store_true")

    command(commands, "demo", cmd_demo, "add the demo calendars and show their next 7 days")
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
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(
            level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
            format="calshare: %(levelname)s %(name)s: %(message)s",
            stream=err,
        )
        settings = load_settings(getattr(args, "config", None), env)
        db_path = getattr(args, "db", None) or env.get("CALSHARE_DB") or str(DEFAULT_DB)
        with Store.open(db_path) as store:
            ctx = Context(store, settings, clock or SystemClock(), out, err)
            return int(args.handler(ctx, args))
    except CalshareError as exc:
        err.write(f"calshare: error: {_one_line(str(exc))}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        err.write("calshare: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
