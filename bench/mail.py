"""The mail benchmark: what does an invitation cost to compose, queue and deliver?

Everything is measured in this one process and run, each timing the best (minimum)
and the median of several repetitions with time.perf_counter and the garbage
collector left on (it runs a full collection between repetitions, outside the timed
code):

- premailer: ``mailer.templates.inline_css`` on the raw invitation template and
  ``mail.css``, beside a jinja2 render of the already inlined template
  (``mailer.templates.render``), and the first render in a process, which inlines;
- compose: ``mailer.compose.invitation`` end to end (both parts rendered, the
  EmailMessage built, serialised and its headers checked);
- share: ``calshare.sharing.share`` end to end (policy, token, the mail, one SQLite
  transaction with the outbox row) into a real database file;
- delivery to a sink over one reused connection, the same prebuilt messages:
  (a) bare aiosmtplib, (b) ``mailer.sender.flush`` from a real outbox, in turns;
  (c) the same flush to a transport that discards at once (the outbox's own work);
  then (b) again with 1, 10 and 100 mails claimed per transaction (outbox.batch).

The sink is Postfix's ``smtp-sink`` (Debian package postfix), in a process of its
own; without it, an aiosmtpd sink in another process, and the output says so. On
Linux the benchmark and the sink share one CPU (see ``pin_to_one_cpu``).

Target (from the issue): the flush delivers at least 0.8 times as many messages per
second as bare aiosmtplib. A missed target is printed as MISSED; the exit status
stays 0. See bench/README.md.

    .venv/bin/python bench/mail.py [--messages N] [--quick] [--profile] [--sink KIND] [--no-pin]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import pwd
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import aiosmtplib
from run import Target, Timing, max_rss_bytes, profile, repeat, timed

from calshare import sharing
from calshare.addresses import Mailbox, parse_mailbox
from calshare.calendars import add_calendar
from calshare.clock import FixedClock
from calshare.config import RelaySettings, Settings
from calshare.levels import Level
from calshare.store import Store
from calshare.tokens import new_token
from mailer import compose, outbox, templates
from mailer.compose import OutgoingMail
from mailer.sender import FlushResult, flush
from mailer.transports import SmtpRelay, Transport

RESULTS = Path(__file__).resolve().parent / "results" / "mail.json"
SMTP_SINK = Path("/usr/sbin/smtp-sink")
HOST = "127.0.0.1"
CALENDAR = "bench"
OWNER = "Bench Owner <bench@example.org>"
ZONE = "Europe/Oslo"
NOW = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)
LANG = "en"
LEVEL = Level.TITLES
MESSAGE = "Hi! This is my work calendar, so you can see when I'm free for the project meetings."
TEMPLATE = "invitation.html"
BATCHES = (1, 10, 100)

TARGET_FLUSH_RATIO = 0.8  # flush / bare aiosmtplib, messages per second, at least

T = TypeVar("T")


def timed_async(operation: Callable[[], Awaitable[T]]) -> tuple[float, T]:
    """One run of a coroutine in a new event loop: (seconds, its result).

    Only the awaited operation is timed, not starting and closing the loop.
    Collects garbage first, untimed.
    """

    async def measured() -> tuple[float, T]:
        began = time.perf_counter()
        result = await operation()
        return time.perf_counter() - began, result

    gc.collect()
    return asyncio.run(measured())


# --- the messages


@dataclass(frozen=True)
class Fixture:
    """What every invitation of the benchmark shares: settings, sender, clock."""

    settings: Settings
    sender: compose.Sender
    clock: FixedClock

    @property
    def expires(self) -> date:
        return (NOW + timedelta(days=self.settings.policy.invitation_days)).date()


def make_fixture(settings: Settings) -> Fixture:
    return Fixture(
        settings,
        compose.Sender(
            domain=settings.mail.domain,
            from_mailbox=parse_mailbox(settings.mail.from_address),
            owner=parse_mailbox(OWNER),
        ),
        FixedClock(NOW),
    )


def invitee(number: int) -> Mailbox:
    return Mailbox(f"person{number}@example.org", f"Person {number}")


def invitation(fixture: Fixture, number: int, token: str) -> OutgoingMail:
    """What ``calshare share bench personN@example.org --level titles --message …`` sends."""
    return compose.invitation(
        fixture.sender,
        invitee(number),
        calendar=CALENDAR,
        level=LEVEL,
        token=token,
        base_url=fixture.settings.http.base_url,
        expires=fixture.expires,
        lang=LANG,
        message=MESSAGE,
        now=NOW,
    )


def invitation_context(fixture: Fixture) -> dict[str, Any]:
    """The context ``compose.invitation`` renders the HTML part with (recorded, not rebuilt)."""
    seen: dict[str, dict[str, Any]] = {}

    def recording(name: str, **context: Any) -> str:
        seen[name] = context
        return templates.render(name, **context)

    with mock.patch.object(compose, "render", recording):
        invitation(fixture, 0, new_token())
    return seen[TEMPLATE]


def compose_many(fixture: Fixture, tokens: Sequence[str]) -> list[OutgoingMail]:
    return [invitation(fixture, number, token) for number, token in enumerate(tokens)]


def render_many(context: dict[str, Any], count: int) -> str:
    html = ""
    for _ in range(count):
        html = templates.render(TEMPLATE, **context)
    return html


def first_render(context: dict[str, Any]) -> str:
    """A new process's first invitation: load the template, premailer it, compile, render."""
    templates.environment.cache_clear()
    return templates.render(TEMPLATE, **context)


# --- the database


def fresh_store(path: Path, fixture: Fixture) -> Store:
    store = Store.open(path)
    add_calendar(store, fixture.clock, CALENDAR, OWNER, ZONE, fixture.settings.calendars.default_tz)
    return store


def share_many(store: Store, fixture: Fixture, count: int) -> int:
    for number in range(count):
        sharing.share(
            store,
            fixture.settings,
            fixture.clock,
            CALENDAR,
            str(invitee(number)),
            LEVEL,
            lang=LANG,
            message=MESSAGE,
        )
    return count


def queued_store(path: Path, mails: Sequence[OutgoingMail]) -> Store:
    """A database whose outbox holds ``mails``, queued and due (untimed).

    They are queued in one transaction, then the write-ahead log is checkpointed:
    queued one share at a time, SQLite's automatic checkpoints would have moved them
    into the database long before a flush, so the flush is not charged for it.
    """
    store = Store.open(path)
    with store.write() as db:
        for mail in mails:
            outbox.enqueue(db, mail, kind=outbox.OutboxKind.INVITATION, share_id=None, now=NOW)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return store


def count_outbox(store: Store, status: str) -> int:
    query = "SELECT count(*) FROM outbox WHERE status = ?"
    return int(store.db.execute(query, [status]).fetchone()[0])


# --- delivery


async def send_bare(port: int, mails: Sequence[OutgoingMail]) -> int:
    """aiosmtplib alone: one connection, the prebuilt bytes, nothing recorded."""
    smtp = aiosmtplib.SMTP(hostname=HOST, port=port, use_tls=False, start_tls=False, timeout=30)
    await smtp.connect()
    for mail in mails:
        await smtp.sendmail(mail.envelope_from, list(mail.recipients), mail.raw)
    await smtp.quit()
    return len(mails)


class DiscardTransport:
    """Takes every message at once: a flush to it costs only the outbox's own work."""

    async def send(self, envelope_from: str, recipients: tuple[str, ...], raw: bytes) -> str:
        return "250 discarded"

    async def close(self) -> None:
        return None


async def send_flush(
    store: Store, settings: Settings, clock: FixedClock, transport: Transport | None = None
) -> FlushResult:
    """What ``calshare outbox flush`` does with a relay configured (or to ``transport``)."""
    assert settings.relay is not None
    transport = transport or SmtpRelay(settings.relay)
    return await flush(store, settings, clock, transport, on_failed=sharing.delivery_failed)


def relay_settings(port: int, batch: int) -> Settings:
    """Built-in defaults (no calshare.toml or CALSHARE_* applies), the sink as the relay."""
    settings = Settings()
    return replace(
        settings,
        relay=RelaySettings(host=HOST, port=port, security="none"),
        outbox=replace(settings.outbox, batch=batch),
    )


# --- the sink


@dataclass
class Sink:
    """An SMTP server in a process of its own that accepts and discards every message."""

    kind: str  # "smtp-sink" or "aiosmtpd"
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    note: str = ""

    def received(self) -> int | None:
        """Messages the sink has accepted, from its counters (smtp-sink -c, or ours)."""
        counts = re.findall(r"mesg=(\d+)", self.log.read_text(errors="replace"))
        return int(counts[-1]) if counts else None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def pin_to_one_cpu() -> int | None:
    """Run this process, and the sink it starts later, on one CPU (Linux only).

    Each message is several round trips between client and sink; when the two run
    on different CPUs every reply costs a cross-CPU wake-up, which on a small VM
    makes a send 2 to 3 times slower, and the scheduler's placement changes from
    run to run. On one CPU the two simply take turns.
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def load_average() -> str:
    if not hasattr(os, "getloadavg"):
        return "unknown"
    return f"{os.getloadavg()[0]:.2f} (1 min, {os.cpu_count()} CPUs)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def listening(process: subprocess.Popen[bytes], port: int, seconds: float = 10.0) -> bool:
    """Whether the server ``process`` accepts connections on ``port`` within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def smtp_sink_command(port: int) -> list[str]:
    """``smtp-sink -c [-u nobody] 127.0.0.1:PORT 1000``: as root it must drop privileges."""
    command = [str(SMTP_SINK), "-c"]
    if os.geteuid() == 0:
        command += ["-u", "nobody"]
    return [*command, f"{HOST}:{port}", "1000"]


def aiosmtpd_command(port: int) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--serve-aiosmtpd", str(port)]


def start_sink(kind: str, work: Path) -> Sink:
    """``kind`` "auto" tries smtp-sink and falls back to aiosmtpd, saying why."""
    note = ""
    candidates = ["smtp-sink", "aiosmtpd"] if kind == "auto" else [kind]
    for candidate in candidates:
        if candidate == "smtp-sink" and not SMTP_SINK.is_file():
            note = f"{SMTP_SINK} is not installed (Debian package postfix)"
            continue
        if candidate == "smtp-sink" and os.geteuid() == 0:
            try:
                pwd.getpwnam("nobody")
            except KeyError:
                note = "smtp-sink runs as root only with -u USER, and there is no user nobody"
                continue
        port = free_port()
        log = work / f"{candidate}.log"
        command = smtp_sink_command(port) if candidate == "smtp-sink" else aiosmtpd_command(port)
        with log.open("wb") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        if listening(process, port):
            if candidate == "aiosmtpd":
                note = (
                    f"{note}; delivering to an aiosmtpd sink in another process instead"
                    if note
                    else "an aiosmtpd sink, as asked (--sink aiosmtpd), not smtp-sink"
                )
            return Sink(candidate, port, process, log, note)
        Sink(candidate, port, process, log).stop()
        tail = log.read_text(errors="replace").strip().splitlines()[-1:]
        note = f"{candidate} did not start ({' '.join(tail) or 'no output'})"
    raise SystemExit(f"no SMTP sink could be started: {note}")


def serve_aiosmtpd(port: int) -> int:
    """The fallback sink: accept every message, count it, print ``mesg=N`` when stopped."""
    from aiosmtpd.smtp import SMTP as SMTPServer

    class Counting:
        def __init__(self) -> None:
            self.messages = 0

        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            self.messages += 1
            return "250 2.0.0 Ok: discarded"

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        handler = Counting()
        server = await loop.create_server(partial(SMTPServer, handler), HOST, port)
        stopped = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stopped.set)
        await stopped.wait()
        server.close()
        print(f"mesg={handler.messages}", flush=True)

    asyncio.run(serve())
    return 0


@dataclass
class Delivery:
    """Sends the same prebuilt messages to the sink, bare or through the outbox; counts them."""

    fixture: Fixture
    sink: Sink
    mails: Sequence[OutgoingMail]
    work: Path
    sent: int = 0
    problems: list[str] = field(default_factory=list)

    def bare(self) -> float:
        seconds, count = timed_async(partial(send_bare, self.sink.port, self.mails))
        self.sent += count
        return seconds

    def flush(self, name: str, batch: int, *, discard: bool = False) -> float:
        """Queue the mails in a new database (untimed), then time one flush of it.

        With ``discard``, the flush goes to a DiscardTransport instead of the sink.
        """
        with queued_store(self.work / f"{name}.db", self.mails) as store:
            seconds, result = timed_async(self._flushing(store, batch, discard))
            self._check(name, store, result, discard)
        return seconds

    def profile(self, name: str, batch: int, *, discard: bool = False) -> str:
        """cProfile of one flush, like ``flush`` (the queueing not profiled)."""
        results: list[FlushResult] = []
        where = "the discard transport" if discard else self.sink.kind
        title = f"one flush of {len(self.mails):,} messages to {where} (batch {batch})"
        with queued_store(self.work / f"{name}.db", self.mails) as store:
            operation = self._flushing(store, batch, discard)
            text = profile(lambda: results.append(asyncio.run(operation())), title)
            self._check(name, store, results[0], discard)
        return text

    def _flushing(
        self, store: Store, batch: int, discard: bool
    ) -> Callable[[], Coroutine[Any, Any, FlushResult]]:
        settings = relay_settings(self.sink.port, batch)
        transport = DiscardTransport() if discard else None
        return partial(send_flush, store, settings, self.fixture.clock, transport)

    def _check(self, name: str, store: Store, result: FlushResult, discard: bool) -> None:
        """Count what reached the sink; note a flush that left mail behind."""
        if not discard:
            self.sent += result.sent
        left = count_outbox(store, outbox.OutboxStatus.QUEUED) + count_outbox(
            store, outbox.OutboxStatus.SENDING
        )
        if result.sent != len(self.mails) or result.problems or left:
            self.problems.append(
                f"{name}: sent {result.sent} of {len(self.mails)}, {left} left in the outbox; "
                + "; ".join(result.problems[:3])
            )


# --- reporting


def _per(seconds: float) -> str:
    if seconds < 0.001:
        return f"{seconds * 1_000_000:7.1f} µs"
    if seconds < 1:
        return f"{seconds * 1000:7.2f} ms"
    return f"{seconds:7.3f} s "


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:8,.0f}/s"


@dataclass(frozen=True)
class Row:
    """A timing of ``units`` operations per run, shown per operation and per second."""

    label: str
    timing: Timing
    units: int
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {
            **self.timing.as_json(),
            "units_per_run": self.units,
            "best_per_unit_s": self.timing.best / self.units,
            "median_per_unit_s": self.timing.median / self.units,
            "best_per_second": self.units / self.timing.best,
            "median_per_second": self.units / self.timing.median,
        }


def print_rows(title: str, rows: Sequence[Row], *, rates: bool) -> None:
    """Per operation (best, median) and, with ``rates``, operations per second."""
    columns = f"{'best':>11}{'median':>11}"
    if rates:
        print(f"{'':<36}{'per operation':^22}{'per second':^22}".rstrip())
        columns += f"{'best':>11}{'median':>11}"
    print(f"{title:<36}{columns}{'runs':>10}  detail")
    for row in rows:
        best, median = row.timing.best, row.timing.median
        line = f"{row.label:<36}{_per(best / row.units):>11}{_per(median / row.units):>11}"
        if rates:
            line += f"{_rate(row.units, best):>11}{_rate(row.units, median):>11}"
        runs = f"{len(row.timing.times)}x{row.units:,}" if row.units > 1 else len(row.timing.times)
        print(f"{line}{runs:>10}  {row.detail}")


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def postfix_version() -> str:
    if shutil.which("dpkg-query") is None:
        return "unknown"
    found = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "postfix"],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip() or "not installed"


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for name in ("premailer", "jinja2", "babel", "aiosmtplib", "aiosmtpd", "calshare"):
        found[name] = package_version(name)
    found["postfix"] = postfix_version()
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark composing and sending calshare mail.")
    parser.add_argument(
        "--messages", type=int, default=2000, help="messages per delivery run (default 2000)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer messages and repetitions")
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile one compose loop and two flushes"
    )
    parser.add_argument(
        "--sink",
        choices=("auto", "smtp-sink", "aiosmtpd"),
        default="auto",
        help="the SMTP sink (auto: smtp-sink if installed, else aiosmtpd)",
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="let the scheduler place benchmark and sink"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument("--serve-aiosmtpd", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_aiosmtpd is not None:
        return serve_aiosmtpd(args.serve_aiosmtpd)
    if args.messages < 1:
        parser.error("--messages must be at least 1")

    quick = args.quick
    messages = min(args.messages, 300) if quick else args.messages
    premailer_runs = 5 if quick else 20
    runs = 2 if quick else 5  # renders, compose loops, flushes to the discard transport
    pairs = 2 if quick else 7  # delivery (a) and (b), interleaved
    share_runs = 1 if quick else 3
    batch_runs = 1 if quick else 3
    renders = 200 if quick else 1000  # per run
    composed = 100 if quick else 500  # per run
    shares = 100 if quick else 500  # per run

    cpu = None if args.no_pin else pin_to_one_cpu()
    load_before = load_average()
    fixture = make_fixture(Settings())  # built-in defaults; no calshare.toml or CALSHARE_*
    default_batch = fixture.settings.outbox.batch
    print(
        f"calshare mail benchmark: invitations ({LANG}, level {LEVEL}, with a message); "
        f"deliveries of {messages:,} messages over one connection",
        flush=True,
    )

    # 1. premailer per call vs a render of the already inlined template
    folder = templates.template_dir()
    source = (folder / TEMPLATE).read_text(encoding="utf-8")
    css = (folder / templates.STYLESHEET).read_text(encoding="utf-8")
    premailer, inlined = repeat(lambda: templates.inline_css(source, css), premailer_runs)
    context = invitation_context(fixture)
    first, html = repeat(partial(first_render, context), 3)
    render_timing, rendered = repeat(partial(render_many, context, renders), runs)
    inlined_ok = "<style" not in inlined.lower() and "<style" not in rendered.lower()
    inlined_ok = inlined_ok and 'style="' in rendered and rendered == html

    # 2. invitations composed per second, and shares per second into SQLite
    tokens = [new_token() for _ in range(composed)]
    composing, mails = repeat(partial(compose_many, fixture, tokens), runs)
    sample = mails[0]
    del mails

    profiles: list[str] = []
    with tempfile.TemporaryDirectory(prefix="calshare-bench-mail-") as tmp:
        work = Path(tmp)
        sharing_timing = Timing()
        queued_by_share = []
        for run in range(share_runs):
            with fresh_store(work / f"share-{run}.db", fixture) as store:
                seconds, _ = timed(partial(share_many, store, fixture, shares))
                sharing_timing.times.append(seconds)
                queued_by_share.append(count_outbox(store, outbox.OutboxStatus.QUEUED))

        # 3. delivery: the same prebuilt messages, bare aiosmtplib and the outbox sender
        prebuilt = [invitation(fixture, number, new_token()) for number in range(messages)]
        sink = start_sink(args.sink, work)
        delivery = Delivery(fixture, sink, prebuilt, work)
        try:
            bare, flushed = Timing(), Timing()
            for run in range(pairs):  # interleaved, so drift in the machine hits both alike
                bare.times.append(delivery.bare())
                flushed.times.append(delivery.flush(f"flush-{run}", default_batch))
            discarded = Timing()
            for run in range(runs):
                discarded.times.append(
                    delivery.flush(f"discard-{run}", default_batch, discard=True)
                )

            # 4. the batch size: mails claimed per transaction
            batches = {batch: Timing() for batch in BATCHES}
            for batch, timing in batches.items():
                for run in range(batch_runs):
                    timing.times.append(delivery.flush(f"batch-{batch}-{run}", batch))

            if args.profile:
                profiles.append(profile(partial(compose_many, fixture, tokens), "compose loop"))
                profiles.append(delivery.profile("profile", default_batch))
                profiles.append(delivery.profile("profile-discard", default_batch, discard=True))
        finally:
            sink.stop()
        received = sink.received()

    # --- report
    ratio = bare.best / flushed.best  # rates: (N / flush) / (N / bare)
    ratio_median = bare.median / flushed.median
    ratio_paired = statistics.median(a / b for a, b in zip(bare.times, flushed.times, strict=True))
    ceiling = bare.best / (bare.best + discarded.best)
    targets = [
        Target("flush / bare aiosmtplib", "flush_over_bare", ratio, ">=", TARGET_FLUSH_RATIO)
    ]
    lib = versions()
    print(
        f"Python {lib['python']} ({platform.python_implementation()}), premailer "
        f"{lib['premailer']}, jinja2 {lib['jinja2']}, aiosmtplib {lib['aiosmtplib']}, "
        f"SQLite {lib['sqlite']}, postfix {lib['postfix']}; {platform.platform()}"
    )
    pinned = "not pinned" if cpu is None else f"both pinned to CPU {cpu}"
    load_after = load_average()
    print(
        f"sink: {sink.kind} on {HOST}:{sink.port}, a process of its own ({pinned}); "
        f"load average {load_before} before, {load_after.split(' ')[0]} after"
    )
    print("best of N runs, median beside it")
    if sink.note:
        print(f"NOTE: {sink.note}")
    print()
    template_rows = [
        Row(
            "premailer inline_css, invitation",
            premailer,
            1,
            f"{len(source):,} B template + {len(css):,} B CSS",
        ),
        Row("jinja2 render, already inlined", render_timing, renders, f"{len(rendered):,} B"),
        Row("first render in a process", first, 1, "load, premailer, compile, render"),
    ]
    print_rows("templates (per call)", template_rows, rates=False)
    per_render = render_timing.best / renders
    print(
        f"  premailer / render: {premailer.best / per_render:,.0f}x "
        f"(medians {premailer.median / (render_timing.median / renders):,.0f}x): paid once per "
        "template and process, in the first render"
    )
    print()
    compose_rows = [
        Row("compose.invitation, end to end", composing, composed, f"{len(sample.raw):,} B each"),
        Row("sharing.share, SQLite file", sharing_timing, shares, "policy, mail, 1 transaction"),
    ]
    print_rows("composing (per message)", compose_rows, rates=True)
    print()
    average = sum(len(mail.raw) for mail in prebuilt) / messages
    delivery_rows = [
        Row("(a) bare aiosmtplib", bare, messages, f"{average:,.0f} B average, to {sink.kind}"),
        Row(f"(b) calshare flush, batch {default_batch}", flushed, messages, "from a real outbox"),
        Row("(c) flush to a discard transport", discarded, messages, "the outbox's own work"),
        *(
            Row(f"    flush, batch {batch}", timing, messages, f"{-(-messages // batch):,} batches")
            for batch, timing in batches.items()
        ),
    ]
    print_rows("delivery (per message)", delivery_rows, rates=True)
    print(
        f"  (b) / (a): {ratio:.2f}x best, {ratio_median:.2f}x medians, {ratio_paired:.2f}x "
        f"median of the {pairs} interleaved pairs; (a) / ((a) + (c)) = {ceiling:.2f}x"
    )
    print()
    checks = [
        "inlined template and renders: no <style> left, inline styles present"
        if inlined_ok
        else "inlined template and renders: WRONG (a <style> is left or styles are missing)",
        f"outbox rows queued by share: {', '.join(map(str, queued_by_share))} "
        f"(expected {shares} each)",
        f"sink received {'an unknown number of' if received is None else f'{received:,}'} "
        f"messages, the benchmark sent {delivery.sent:,}: "
        + ("agree" if received == delivery.sent else "DIFFER"),
    ]
    for line in checks:
        print(line)
    for problem in delivery.problems:
        print(f"PROBLEM: {problem}")
    print()
    print("targets (best times)")
    for target in targets:
        print(
            f"  {target.label:<30}{target.show(target.value):>10}   target {target.rule():<12}"
            f"{'MET' if target.met else 'MISSED'}"
        )
    print(f"  (with medians instead: flush / bare aiosmtplib {ratio_median:.2f}x)")

    report = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "messages_per_delivery_run": messages,
        "message": {
            "template": TEMPLATE,
            "lang": LANG,
            "level": str(LEVEL),
            "bytes": len(sample.raw),
            "delivery_average_bytes": average,
        },
        "sink": {
            "kind": sink.kind,
            "note": sink.note,
            "received": received,
            "sent": delivery.sent,
        },
        "environment": {
            "pinned_cpu": cpu,
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "timings": {
            "premailer_inline_css": template_rows[0].as_json(),
            "render_inlined": template_rows[1].as_json(),
            "first_render": template_rows[2].as_json(),
            "compose_invitation": compose_rows[0].as_json(),
            "share": compose_rows[1].as_json(),
            "deliver_bare_aiosmtplib": delivery_rows[0].as_json(),
            "deliver_flush": delivery_rows[1].as_json(),
            "flush_discard_transport": delivery_rows[2].as_json(),
            "flush_by_batch": {
                str(batch): row.as_json()
                for batch, row in zip(BATCHES, delivery_rows[3:], strict=True)
            },
        },
        "checks": {
            "inlined_ok": inlined_ok,
            "queued_by_share": queued_by_share,
            "problems": delivery.problems,
        },
        "ratios": {
            "premailer_over_render": premailer.best / per_render,
            "flush_over_bare": ratio,
            "flush_over_bare_median": ratio_median,
            "flush_over_bare_paired_median": ratio_paired,
            "bare_over_bare_plus_outbox": ceiling,
        },
        "targets": {target.key: target.as_json() for target in targets},
        "memory": {"process_max_rss_bytes": max_rss_bytes()},
        "versions": lib,
        "platform": platform.platform(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    for text in profiles:
        print()
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
