"""The snapshot benchmark: how long does composing "email a calendar" take?

For the 5,000-event benchmark calendar (generate.py), in this one process, best of
several runs (garbage collected between runs, outside the timing):

- calshare: ``calshare.snapshots.compose_snapshots`` for one recipient at ``details``:
  policy, the index query, the level filter, the HTML and text schedule, the .ics
  and the MIME message, for ``next-30-days`` and for ``whole``;
- naive: the same mail made from the ICS itself, as a system without an index
  would: ``icalendar.Calendar.from_ical`` + ``recurring_ical_events.between`` over
  the same days, each instance turned into an Occurrence, then the same renderer.

Targets (from the issue): next-30-days under 50 ms, whole under 2 s; the ratio
naive / calshare is reported beside them. Missed targets print MISSED; the exit
status stays 0.

    .venv/bin/python bench/snapshot.py [--events N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import icalendar
import recurring_ical_events
from generate import ZONE, generate, reference_now
from run import max_rss_bytes, peak_memory, repeat

from calshare.addresses import parse_mailbox
from calshare.busy import Busy
from calshare.calendars import add_calendar, get_calendar
from calshare.clock import FixedClock
from calshare.config import Settings
from calshare.importer import import_calendar
from calshare.levels import Level
from calshare.occurrence import Occurrence
from calshare.ranges import DateRange
from calshare.sharing import mail_sender
from calshare.snapshots import Options, compose_snapshots
from calshare.store import Store
from mailer.snapshot import SnapshotRequest, snapshot

RESULTS = Path(__file__).resolve().parent / "results" / "snapshot.json"
CALENDAR = "bench"
OWNER = "Bench Owner <bench@example.org>"
RECIPIENT = "reader@example.org"
TARGETS = {"next-30-days": 0.050, "whole": 2.0}


def _naive_occurrences(data: bytes, days: DateRange) -> list[Occurrence]:
    """What a system without an index does for each snapshot: parse and expand the file."""
    calendar = icalendar.Calendar.from_ical(data)
    found = []
    for event in recurring_ical_events.of(calendar).between(days.start, days.end):
        start, end = event["DTSTART"].dt, event["DTEND"].dt
        all_day = not isinstance(start, datetime)
        found.append(
            Occurrence(
                uid=str(event["UID"]),
                start=start,
                end=end,
                all_day=all_day,
                busy=Busy.BUSY,
                recurrence_id=start.isoformat() if "RRULE" in event else None,
                summary=str(event.get("SUMMARY", "")) or None,
                location=str(event.get("LOCATION", "")) or None,
                description=str(event.get("DESCRIPTION", "")) or None,
            )
        )
    found.sort(key=lambda o: o.start.timestamp() if isinstance(o.start, datetime) else 0)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark composing snapshot mails.")
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    runs = 3 if args.quick else 7
    data = generate(n_events=args.events)
    now = reference_now()
    clock = FixedClock(now)
    settings = Settings()
    results: dict[str, Any] = {"events": args.events, "calendar_bytes": len(data), "ranges": {}}
    with tempfile.TemporaryDirectory() as work:
        store = Store.open(Path(work) / "bench.db")
        add_calendar(store, clock, CALENDAR, OWNER, ZONE, settings.calendars.default_tz)
        import_calendar(store, settings, clock, CALENDAR, _write(work, data))
        calendar = get_calendar(store.db, CALENDAR)
        sender = mail_sender(settings, calendar)
        to = parse_mailbox(RECIPIENT)
        print(f"snapshot of {args.events:,} events ({len(data) / 1e6:.1f} MB ICS), now {now:%F}")
        print(f"{'range':<14}{'events':>8}{'calshare':>12}{'naive':>12}{'ratio':>8}  target")
        for range_text, target in TARGETS.items():
            options = Options(range_text=range_text, detail=Level.DETAILS)

            def ours(options: Options = options) -> list[Any]:
                return compose_snapshots(store, settings, clock, CALENDAR, [RECIPIENT], options)

            ours()  # warm: templates, VTIMEZONE cache, index extension
            timing, made = repeat(ours, runs)
            (item,) = made
            request = SnapshotRequest(
                calendar=CALENDAR,
                zone=ZONE,
                days=item.days,
                level=Level.DETAILS,
                layout="daily",
                lang="en",
                include_private=False,
                working_hours=None,
            )

            def naive(request: SnapshotRequest = request) -> Any:
                found = _naive_occurrences(data, request.days)
                return snapshot(sender, to, found, request, now=now)

            naive_runs = 1 if range_text == "whole" else max(2, runs // 2)
            naive_timing, _ = repeat(naive, naive_runs)
            ratio = naive_timing.best / timing.best
            verdict = "MET" if timing.best < target else "MISSED"
            print(
                f"{range_text:<14}{item.events:>8,}{timing.best * 1000:>10.1f}ms"
                f"{naive_timing.best * 1000:>10.0f}ms{ratio:>7.0f}x  < {target * 1000:.0f} ms "
                f"{verdict}"
            )
            results["ranges"][range_text] = {
                "events": item.events,
                "days": item.days.days,
                "mail_bytes": len(item.mail.raw),
                "calshare": timing.as_json(),
                "naive": naive_timing.as_json(),
                "ratio": ratio,
                "target_s": target,
                "met": timing.best < target,
                "python_peak_bytes": peak_memory(ours),
            }
        store.close()
    results["max_rss_bytes"] = max_rss_bytes()
    print(f"peak RSS {results['max_rss_bytes'] / 2**20:.0f} MiB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


def _write(work: str, data: bytes) -> str:
    path = Path(work) / "bench.ics"
    path.write_bytes(data)
    return str(path)


if __name__ == "__main__":
    raise SystemExit(main())
