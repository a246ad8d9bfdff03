"""The inbox benchmark: how many real accept replies a second does ``calshare serve`` take?

One run measures, for two load shapes (S concurrent sessions with a new connection per
message, then S reused connections), each server in a process of its own, started
afresh for every run:

- (a) a bare aiosmtpd server, the ``aiosmtpd.smtp.SMTP`` class the daemon runs, built
  with the same limits, whose handler only answers 250 to DATA; fed by Postfix's
  ``smtp-source`` and by our load generator;
- (b) ``calshare serve --smtp`` on a fresh copy of a database of open invitations,
  processing real accept replies (parse, classify, commit with synchronous=FULL, queue
  the welcome mail and the owner's notice); fed by the same generator. Every reply
  answers a different invitation (its own token, invitee and Message-ID), so each one
  is a grant: ``smtp-source`` sends one fixed message to one recipient (or numbered
  ones, ``-N``, which are not addresses calshare serves), so it cannot; the load
  generator (``--load``, aiosmtplib in a process of its own) can, and times each
  message. Beside (b): the same with the outbox sender held off, and ``smtp-source``
  sending one of the replies over and over (a grant, then duplicates);
- the inbox's own work per reply measured in this process, piece by piece (parse,
  classify, record, composing the two mails), against the budget the target leaves.

On Linux servers run on one CPU, clients on the others (``--no-pin``: the scheduler
decides). The daemon's peak memory is its VmHWM, CPU times come from /proc.

Target (from the issue): the inbox takes at least 0.7 times the bare server's messages
per second, same client, same shape. A missed target is printed as MISSED; the exit
status stays 0. See bench/README.md.

    .venv/bin/python bench/inbox.py [--messages N] [--sessions S] [--runs R] [--quick]
                                    [--profile] [--no-pin]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import html
import json
import os
import platform
import re
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime
from functools import partial
from pathlib import Path
from typing import Any
from unittest import mock

import aiosmtplib
from mail import free_port, listening, load_average, package_version, postfix_version
from run import Target

from calshare import sharing
from calshare.addresses import Mailbox
from calshare.calendars import add_calendar
from calshare.clock import SystemClock
from calshare.config import Settings
from calshare.levels import Level
from calshare.store import Store
from mailer import compose, outbox

RESULTS = Path(__file__).resolve().parent / "results" / "inbox.json"
SMTP_SOURCE = Path("/usr/sbin/smtp-source")
HOST = "127.0.0.1"
CALENDAR = "bench"
OWNER = "Bench Owner <bench@example.org>"
ZONE = "Europe/Oslo"
FIRST_LINE = "Yes, I accept. Thanks!"
SHAPES = {"new": "new connection per message", "reuse": "reused connections"}

TARGET_RATIO = 0.7  # inbox / bare aiosmtpd, messages per second, at least


def unshadow_inbox_package() -> None:
    """Look in bench/ last for modules: this file, bench/inbox.py, shadows the inbox package.

    Python puts a script's directory first on sys.path; ``import inbox.classify`` would
    then find this file. run.py and mail.py are still found, later.
    """
    here = Path(__file__).resolve().parent
    others = [entry for entry in sys.path if Path(entry or ".").resolve() != here]
    sys.path[:] = [*others, str(here)]


# --- the replies


@dataclass(frozen=True)
class Reply:
    """One accept reply as it is sent: envelope and bytes."""

    mail_from: str
    rcpt: str
    raw: bytes


def invitee(number: int) -> Mailbox:
    return Mailbox(f"person{number}@example.org", f"Person {number}")


def accept_reply(number: int, invitation: EmailMessage) -> Reply:
    """What a mail client sends when person N answers "Yes" to their invitation.

    Like Gmail's: a plain and an HTML part, the invitation quoted below (``>`` lines, a
    gmail_quote blockquote), Re: subject, In-Reply-To and References; sent to the
    invitation's Reply-To (``share+TOKEN@…``), so the answer is read from the first line.
    """
    person = invitee(number)
    reply_to = invitation["Reply-To"].addresses[0].addr_spec
    body = invitation.get_body(("plain",))
    assert body is not None
    quoted_text = body.get_content().strip().splitlines()
    attribution = "On Mon, 16 Mar 2026 at 12:00, Bench Owner <bench@example.org> wrote:"
    reply = EmailMessage()
    reply["From"] = str(person)
    reply["To"] = reply_to
    reply["Subject"] = f"Re: {invitation['Subject']}"
    reply["Date"] = format_datetime(datetime.now(UTC))
    reply["Message-ID"] = f"<reply-{number}.{os.getpid()}@mail.example.org>"
    reply["In-Reply-To"] = invitation["Message-ID"]
    reply["References"] = invitation["Message-ID"]
    quoted = "\n".join(f"> {line}" if line else ">" for line in quoted_text)
    reply.set_content(f"{FIRST_LINE}\n\n{attribution}\n{quoted}\n")
    lines = "<br>\n".join(html.escape(line) for line in quoted_text)
    reply.add_alternative(
        f'<div dir="ltr">{FIRST_LINE}</div><br><div class="gmail_quote">'
        f'<div dir="ltr" class="gmail_attr">{html.escape(attribution)}<br></div>'
        '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;'
        f'border-left:1px solid rgb(204,204,204);padding-left:1ex">{lines}</blockquote></div>\n',
        subtype="html",
    )
    return Reply(person.address, reply_to, reply.as_bytes(policy=email_policy.SMTP))


def prepare(path: Path, count: int) -> list[Reply]:
    """A database with ``count`` open invitations, and an accept reply to each.

    Built with the system clock, the daemon's. The invitations are then marked sent (and
    their bytes dropped, as the sender does): the daemon must not deliver them during
    the run.
    """
    settings, clock = Settings(), SystemClock()
    replies = []
    with Store.open(path) as store:
        add_calendar(store, clock, CALENDAR, OWNER, ZONE, settings.calendars.default_tz)
        for number in range(count):
            person = str(invitee(number))
            sharing.share(store, settings, clock, CALENDAR, person, Level.TITLES, lang="en")
        rows = store.db.execute(
            """SELECT o.recipients, b.raw FROM outbox o JOIN outbox_bodies b ON b.outbox_id = o.id
               WHERE o.kind = ? ORDER BY o.id""",
            [outbox.OutboxKind.INVITATION],
        ).fetchall()
        for number, (recipients, raw) in enumerate(rows):
            assert invitee(number).address in recipients, (number, recipients)
            message = message_from_bytes(raw, policy=email_policy.default)
            assert isinstance(message, EmailMessage)
            replies.append(accept_reply(number, message))
        with store.write() as db:
            db.execute("DELETE FROM outbox_bodies")
            db.execute(
                "UPDATE outbox SET status = ?, sent_at = created_at WHERE kind = ?",
                [outbox.OutboxStatus.SENT, outbox.OutboxKind.INVITATION],
            )
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return replies


def write_replies(path: Path, replies: Sequence[Reply]) -> None:
    """For the generator's process: JSON, the bytes as Latin-1 text (a character a byte)."""
    rows = [[reply.mail_from, reply.rcpt, reply.raw.decode("latin-1")] for reply in replies]
    path.write_text(json.dumps(rows), encoding="utf-8")


def read_replies(path: Path) -> list[Reply]:
    rows = json.loads(path.read_text(encoding="utf-8"))
    return [Reply(mail_from, rcpt, raw.encode("latin-1")) for mail_from, rcpt, raw in rows]


# --- processes: where they run, what they cost


def pinning(enabled: bool) -> tuple[set[int], set[int]] | None:
    """(server CPUs, client CPUs): the last CPU for servers, the others for clients."""
    if not enabled or not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[-1]}, set(cpus[:-1])


def spawn(
    command: Sequence[str], cpus: set[int] | None, log: Path, **options: Any
) -> subprocess.Popen[bytes]:
    """Start ``command`` on ``cpus``, set before the fork: every thread it starts inherits it."""
    before = os.sched_getaffinity(0) if cpus else None
    try:
        if cpus:
            os.sched_setaffinity(0, cpus)
        with log.open("ab") as output:
            return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, **options)
    finally:
        if before:
            os.sched_setaffinity(0, before)


def stop(process: subprocess.Popen[bytes], signum: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(signum)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss(pid: int) -> int | None:
    """VmHWM of process ``pid`` in bytes: the most resident memory it has had."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found[1]) * 1024 if found else None


@dataclass
class Server:
    """An SMTP server in a process of its own: the bare handler or calshare's daemon."""

    kind: str  # "bare" or "calshare"
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> str:
        """SIGTERM (calshare finishes what is in flight); the server's log."""
        stop(self.process)
        return self.log.read_text(errors="replace")

    def received(self) -> int | None:
        """The bare server's count: it prints ``mesg=N`` when stopped."""
        counts = re.findall(r"mesg=(\d+)", self.log.read_text(errors="replace"))
        return int(counts[-1]) if counts else None


def start_server(
    kind: str, work: Path, name: str, cpus: set[int] | None, db: Path | None = None
) -> Server:
    port = free_port()
    log = work / f"{name}.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("CALSHARE_")}
    if kind == "bare":
        command = [sys.executable, str(Path(__file__).resolve()), "--serve-bare", str(port)]
    else:  # built-in defaults: no calshare.toml in the work directory, no CALSHARE_* but these
        assert db is not None
        env |= {"CALSHARE_DB": str(db), "CALSHARE_OUTBOX_MAILDIR": str(work / f"{name}-maildir")}
        command = [sys.executable, "-m", "calshare", "serve", "--smtp", f"{HOST}:{port}"]
    server = Server(kind, port, spawn(command, cpus, log, env=env, cwd=work), log)
    if not listening(server.process, port, seconds=30):
        server.stop()
        raise SystemExit(f"the {kind} server did not start:\n{log.read_text(errors='replace')}")
    return server


def serve_bare(port: int) -> int:
    """The bare server: aiosmtpd's SMTP class built as the daemon builds it, with a handler
    that only answers 250; prints ``mesg=N`` when stopped."""
    from aiosmtpd.smtp import SMTP as SMTPServer

    limits = Settings().inbox

    class Bare:
        def __init__(self) -> None:
            self.messages = 0

        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            self.messages += 1
            return "250 2.0.0 OK"

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        handler = Bare()
        factory = partial(
            SMTPServer,
            handler,
            data_size_limit=limits.max_message_bytes,
            hostname=limits.hostname,
            ident="calshare",
            timeout=limits.command_timeout_seconds,
            loop=loop,
        )
        server = await loop.create_server(factory, HOST, port)
        stopped = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stopped.set)
        await stopped.wait()
        server.close()
        print(f"mesg={handler.messages}", flush=True)

    asyncio.run(serve())
    return 0


@contextlib.contextmanager
def sender_held(db: Path) -> Iterator[None]:
    """Hold the outbox's flush lock: the daemon's sender finds it busy and sends nothing."""
    descriptor = os.open(db.with_name(db.name + ".outbox.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


# --- the clients


@dataclass
class Load:
    """What one client run reports."""

    client: str  # "generator" or "smtp-source"
    seconds: float
    sent: int  # messages answered 250
    latencies: list[float] = field(default_factory=list)  # seconds, one per message
    failures: list[str] = field(default_factory=list)
    answers: dict[str, int] = field(default_factory=dict)  # the replies to the data, counted
    client_cpu: float | None = None  # CPU seconds the client used while sending

    @property
    def rate(self) -> float:
        return self.sent / self.seconds


def generate_load(port: int, replies: Sequence[Reply], sessions: int, reuse: bool) -> Load:
    """The load generator, in a process of its own: ``sessions`` clients, one shared queue.

    A message's latency runs from its MAIL command (with a new connection per message,
    from the connect) to the reply to its data; QUIT is not counted.
    """
    load = Load("generator", 0.0, 0)

    async def client(queue: Iterator[Reply]) -> None:
        smtp: aiosmtplib.SMTP | None = None
        try:
            for reply in queue:
                began = time.perf_counter()
                try:
                    if smtp is None:
                        smtp = aiosmtplib.SMTP(
                            hostname=HOST, port=port, start_tls=False, use_tls=False, timeout=120
                        )
                        await smtp.connect()
                    refused, answer = await smtp.sendmail(reply.mail_from, [reply.rcpt], reply.raw)
                except aiosmtplib.SMTPException as exc:
                    load.failures.append(f"{type(exc).__name__}: {exc}")
                    if smtp is not None:
                        smtp.close()
                    smtp = None
                    continue
                load.latencies.append(time.perf_counter() - began)
                if refused:
                    load.failures.append(f"refused: {refused}")
                    continue
                load.sent += 1
                load.answers[answer] = load.answers.get(answer, 0) + 1
                if not reuse:
                    await smtp.quit()
                    smtp = None
        finally:
            if smtp is not None and smtp.is_connected:
                await smtp.quit()

    async def run() -> None:
        queue = iter(replies)  # one event loop: the clients can share a plain iterator
        await asyncio.gather(*(client(queue) for _ in range(sessions)))

    usage = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    asyncio.run(run())
    load.seconds = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    load.client_cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
    return load


def run_generator(
    work: Path, port: int, replies: Path, sessions: int, reuse: bool, cpus: set[int] | None
) -> Load:
    """The generator in a process of its own (``--load``); its report comes back as JSON."""
    report = work / "load.json"
    report.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--load", str(port)]
    command += ["--replies", str(replies), "--sessions", str(sessions), "--report", str(report)]
    if reuse:
        command.append("--reuse")
    log = work / "generator.log"
    if spawn(command, cpus, log).wait() != 0:
        raise SystemExit(f"the load generator failed:\n{log.read_text(errors='replace')[-3000:]}")
    return Load(**json.loads(report.read_text()))


def run_smtp_source(
    port: int,
    sample: Path,
    reply: Reply,
    count: int,
    sessions: int,
    reuse: bool,
    cpus: set[int] | None,
    log: Path,
) -> Load:
    """``smtp-source -s S [-d] -m N -F sample``: one fixed message, timed by the wall clock."""
    command = [str(SMTP_SOURCE), "-s", str(sessions), "-m", str(count), "-F", str(sample)]
    command += ["-M", "client.example.org", "-f", reply.mail_from, "-t", reply.rcpt]
    if reuse:
        command.append("-d")
    began = time.perf_counter()
    code = spawn([*command, f"{HOST}:{port}"], cpus, log).wait()
    seconds = time.perf_counter() - began
    failures = [] if code == 0 else [f"smtp-source exited {code}; see {log.name}"]
    return Load("smtp-source", seconds, count if code == 0 else 0, failures=failures)


# --- runs


@dataclass
class Run:
    """One client run against one fresh server."""

    load: Load
    server_cpu: float  # CPU seconds the server used during the load
    peak_rss: int | None  # the server's VmHWM after the load, bytes
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.load.rate


@dataclass
class Bench:
    work: Path
    replies: list[Reply]
    template_db: Path
    replies_file: Path
    sample_file: Path  # one reply, for smtp-source -F
    sessions: int
    pins: tuple[set[int], set[int]] | None
    started: int = 0

    def cpus(self, role: str) -> set[int] | None:
        return None if self.pins is None else self.pins[0 if role == "server" else 1]

    def bare(self, shape: str, client: str) -> Run:
        self.started += 1
        server = start_server("bare", self.work, f"bare-{self.started}", self.cpus("server"))
        try:
            load, cpu, peak = self._measure(server, shape, client)
        finally:
            server.stop()
        problems = load.failures[:3]
        if server.received() != load.sent:
            problems.append(f"the bare server counted {server.received()}, the client {load.sent}")
        return Run(load, cpu, peak, problems)

    def calshare(
        self,
        shape: str,
        client: str = "generator",
        *,
        hold_sender: bool = False,
        profile: Path | None = None,
    ) -> Run:
        self.started += 1
        name = f"calshare-{self.started}"
        db = self.work / f"{name}.db"
        shutil.copyfile(self.template_db, db)
        with contextlib.ExitStack() as stack:
            if hold_sender:
                stack.enter_context(sender_held(db))
            server = start_server("calshare", self.work, name, self.cpus("server"), db)
            try:
                spy = start_py_spy(server.process.pid, profile, self.work) if profile else None
                load, cpu, peak = self._measure(server, shape, client)
                if spy is not None:
                    stop(spy, signal.SIGINT)  # py-spy writes its samples on SIGINT
            finally:
                log = server.stop()
        problems = load.failures[:3]
        expected = len(self.replies) if client == "generator" else 1
        problems += self._check_database(db, load, expected)
        if "Traceback" in log:
            problems.append(f"{name}: the daemon logged a traceback")
        return Run(load, cpu, peak, problems)

    def _measure(self, server: Server, shape: str, client: str) -> tuple[Load, float, int | None]:
        pid = server.process.pid
        cpu = cpu_seconds(pid)
        reuse = shape == "reuse"
        if client == "smtp-source":
            log = self.work / "smtp-source.log"
            load = run_smtp_source(
                server.port,
                self.sample_file,
                self.replies[0],
                len(self.replies),
                self.sessions,
                reuse,
                self.cpus("client"),
                log,
            )
        else:
            cpus = self.cpus("client")
            load = run_generator(
                self.work, server.port, self.replies_file, self.sessions, reuse, cpus
            )
        return load, cpu_seconds(pid) - cpu, peak_rss(pid)

    def _check_database(self, db: Path, load: Load, grants: int) -> list[str]:
        """Every reply that got 250 was stored: ``grants`` grants, welcome mails queued."""
        with contextlib.closing(sqlite3.connect(db)) as connection:
            accepted, inbound, welcome = connection.execute(
                """SELECT (SELECT count(*) FROM shares WHERE status = 'accepted'),
                          (SELECT count(*) FROM inbound),
                          (SELECT count(*) FROM outbox WHERE kind = ?)""",
                [outbox.OutboxKind.WELCOME],
            ).fetchone()
        stored = inbound == load.sent if grants > 1 else inbound == 1  # duplicates: one row
        if accepted == welcome == grants and stored and load.sent == len(self.replies):
            return []
        return [
            f"{db.name}: {load.sent} of {len(self.replies)} answered 250; {accepted} shares "
            f"accepted, {inbound} inbound rows, {welcome} welcome mails (expected {grants})"
        ]


# --- where the time goes


@dataclass(frozen=True)
class Part:
    label: str
    seconds: float  # per reply
    detail: str = ""


def inbox_work(template: Path, replies: Sequence[Reply], work: Path) -> list[Part]:
    """The inbox's own work per accept reply, in this process, one piece after the other.

    What the daemon does for each message off the event loop (``parse_mail``,
    ``classify``, ``authresults.passes``), then ``answers.record`` for every reply in
    one transaction on a fresh copy of the database, the way the group committer
    stores them, with the time spent in ``compose.notice`` (the welcome mail and the
    owner's notice) counted apart.
    """
    from calshare import answers
    from inbox.authresults import passes
    from inbox.classify import Inbound, VerdictKind, classify, parse_mail

    settings, clock = Settings(), SystemClock()
    domain, limits = settings.mail.domain, settings.inbox
    count = len(replies)

    began = time.perf_counter()
    mails = [parse_mail(reply.raw) for reply in replies]
    parsing = time.perf_counter() - began

    began = time.perf_counter()
    items = []
    for reply, mail in zip(replies, mails, strict=True):
        verdict = classify(mail, mail_from=reply.mail_from, recipient=reply.rcpt, domain=domain)
        trusted = passes(
            mail.message,
            require=limits.require_auth,
            authserv_id=limits.authserv_id,
            author=verdict.sender,
        )
        items.append(Inbound(mail.raw, reply.mail_from, reply.rcpt, verdict, trusted))
    classifying = time.perf_counter() - began
    assert all(item.verdict.kind == VerdictKind.ACCEPT for item in items), (
        "a reply is not read as accept"
    )

    composing = 0.0
    compose_notice = compose.notice

    def timed_notice(*args: Any, **kwargs: Any) -> Any:
        nonlocal composing
        began = time.perf_counter()
        try:
            return compose_notice(*args, **kwargs)
        finally:
            composing += time.perf_counter() - began

    db = work / "inbox-work.db"
    shutil.copyfile(template, db)
    with Store.open(db) as store, mock.patch.object(compose, "notice", timed_notice):
        now = clock.now()
        began = time.perf_counter()
        with store.write() as transaction:
            outcomes = [answers.record(transaction, settings, now, item) for item in items]
        recording = time.perf_counter() - began
    assert outcomes == ["accepted"] * count, Counter(outcomes)
    return [
        Part("parse_mail", parsing / count, "email.message_from_bytes, policy.default"),
        Part("classify (+ authresults.passes)", classifying / count),
        Part("answers.record, one transaction", recording / count, "all of it, commit included"),
        Part(
            "  of which compose.notice",
            composing / count,
            "the welcome and owner mails, if made here",
        ),
        Part("  of which the rest", (recording - composing) / count, "SQL, outbox rows, commit"),
    ]


# --- profiling: py-spy samples whichever thread holds the GIL in the running daemon


def start_py_spy(pid: int, out: Path | None, work: Path) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if out is None or not Path(spy).is_file():
        return None
    command = [spy, "record", "--pid", str(pid), "--rate", "250", "--gil", "--threads"]
    command += ["--nonblocking", "--format", "raw", "--output", str(out)]
    process = spawn(command, None, work / "py-spy.log")
    time.sleep(1.0)  # attached by then
    return process


def summarize_profile(path: Path, top: int = 25) -> str:
    """Where the daemon's Python time went, from py-spy's collapsed stacks."""
    if not path.exists() or not path.stat().st_size:
        return "py-spy wrote nothing: install it (.venv/bin/pip install py-spy) and run as root\n"
    threads: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        count = int(number)
        frames = stack.split(";")
        thread = next((frame for frame in frames if frame.startswith("thread ")), "thread ?")
        thread = re.sub(r"\s*\(0x[0-9a-f]+\)|\s*\(\d+\)", "", thread).removeprefix("thread ")
        names = [_frame_name(frame) for frame in frames if re.search(r"\.py(:\d+)?\)$", frame)]
        total += count
        threads[thread.strip() or "?"] += count
        for name in set(names):
            inclusive[name] += count
        if names:
            own[names[-1]] += count
            packages[_package(names[-1])] += count
    if not total:
        return "py-spy recorded no samples\n"
    lines = [f"{total:,} samples of the thread holding the GIL (py-spy --gil)", "  by thread:"]
    lines += [f"    {count / total:6.1%}  {name}" for name, count in threads.most_common(8)]
    lines.append("  own time by package (where the running line was):")
    lines += [f"    {count / total:6.1%}  {name}" for name, count in packages.most_common(10)]
    lines.append("  by function, inclusive (the function and what it calls):")
    lines += [f"    {count / total:6.1%}  {name}" for name, count in inclusive.most_common(top)]
    lines.append("  own time:")
    lines += [f"    {count / total:6.1%}  {name}" for name, count in own.most_common(15)]
    return "\n".join(lines) + "\n"


def _package(name: str) -> str:
    """``record (calshare/answers.py)`` -> ``calshare``; ``get (email/message.py)`` -> ``email``."""
    where = name.rsplit(" (", 1)[-1].rstrip(")")
    return where.split("/", 1)[0].removesuffix(".py")


def _frame_name(frame: str) -> str:
    """``handle_DATA (/x/inbox/server.py:160)`` -> ``handle_DATA (inbox/server.py)``."""
    found = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame.strip())
    if not found:
        return frame.strip()
    function, where = found[1], found[2]
    root = str(Path(__file__).resolve().parent.parent) + "/"
    where = where.removeprefix(root)
    for marker in ("site-packages/", "/lib/python3."):
        if marker in where:
            where = where.split(marker, 1)[1]
            where = where.split("/", 1)[1] if marker.startswith("/lib") else where
    return f"{function} ({where})"


# --- reporting


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class Row:
    key: str
    label: str
    measure: Callable[[], Run]
    runs: list[Run] = field(default_factory=list)

    @property
    def rates(self) -> list[float]:
        return [run.rate for run in self.runs]

    @property
    def best(self) -> float:
        return max(self.rates)

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    def latency(self, fraction: float) -> float | None:
        pooled = [latency for run in self.runs for latency in run.load.latencies]
        return percentile(pooled, fraction) if pooled else None

    @property
    def server_cpu(self) -> float:
        """Median server CPU seconds per message."""
        return statistics.median(run.server_cpu / max(run.load.sent, 1) for run in self.runs)

    @property
    def client_busy(self) -> float | None:
        """Median share of one CPU the client used while sending."""
        busy = [run.load.client_cpu / run.load.seconds for run in self.runs if run.load.client_cpu]
        return statistics.median(busy) if busy else None

    @property
    def peak(self) -> int | None:
        peaks = [run.peak_rss for run in self.runs if run.peak_rss]
        return max(peaks) if peaks else None

    def as_json(self) -> dict[str, Any]:
        answers: Counter[str] = Counter()
        for run in self.runs:
            answers.update(run.load.answers)
        return {
            "label": self.label,
            "client": self.runs[0].load.client,
            "messages_per_run": [run.load.sent for run in self.runs],
            "seconds_runs": [run.load.seconds for run in self.runs],
            "per_second_runs": self.rates,
            "best_per_second": self.best,
            "median_per_second": self.median,
            "latency_p50_s": self.latency(0.50),
            "latency_p99_s": self.latency(0.99),
            "server_cpu_per_message_s": self.server_cpu,
            "client_cpu_busy": self.client_busy,
            "server_peak_rss_bytes": self.peak,
            "answers": dict(answers.most_common(5)),
        }


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _mib(size: int | None) -> str:
    return "-" if size is None else f"{size / 1048576:.1f} MiB"


def print_rows(rows: Sequence[Row]) -> None:
    widths = (8, 8, 9, 9, 9, 7, 10)
    names = ("best", "median", "p50", "p99", "CPU/msg", "CPU", "peak RSS")
    print(f"{'':<46}{'messages/s':^16}{'latency':^18}{'server':>9}{'client':>7}{'server':>10}")
    print(" " * 46 + "".join(f"{name:>{width}}" for name, width in zip(names, widths, strict=True)))
    for row in rows:
        busy = "-" if row.client_busy is None else f"{row.client_busy:.0%}"
        print(
            f"{row.label:<46}{row.best:>8,.0f}{row.median:>8,.0f}"
            f"{_ms(row.latency(0.5)):>9}{_ms(row.latency(0.99)):>9}"
            f"{_ms(row.server_cpu):>9}{busy:>7}{_mib(row.peak):>10}"
        )


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for name in ("aiosmtpd", "aiosmtplib", "calshare"):
        found[name] = package_version(name)
    found["postfix"] = postfix_version()
    return found


# --- main


def main(argv: list[str] | None = None) -> int:
    unshadow_inbox_package()
    parser = argparse.ArgumentParser(description="Benchmark calshare's inbox beside aiosmtpd.")
    parser.add_argument("--messages", type=int, default=1000, help="replies per run (1000)")
    parser.add_argument("--sessions", type=int, default=10, help="concurrent sessions (10)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each row (3)")
    parser.add_argument("--quick", action="store_true", help="300 replies, one run of each row")
    parser.add_argument(
        "--profile", action="store_true", help="also sample one daemon run with py-spy"
    )
    parser.add_argument("--no-pin", action="store_true", help="let the scheduler place processes")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    # internal: the processes the benchmark starts
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--load", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--replies", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--reuse", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare is not None:
        return serve_bare(args.serve_bare)
    if args.load is not None:
        load = generate_load(args.load, read_replies(args.replies), args.sessions, args.reuse)
        args.report.write_text(json.dumps(asdict(load)))
        return 0
    if min(args.messages, args.sessions, args.runs) < 1:
        parser.error("--messages, --sessions and --runs must be at least 1")
    if not SMTP_SOURCE.is_file():
        raise SystemExit(f"{SMTP_SOURCE} is missing: install Debian's postfix (make bench does)")

    messages = min(args.messages, 300) if args.quick else args.messages
    runs = 1 if args.quick else args.runs
    pins = pinning(not args.no_pin)
    load_before = load_average()
    print(
        f"calshare inbox benchmark: {messages:,} accept replies per run, {args.sessions} "
        f"concurrent sessions, {runs} run(s) of each row",
        flush=True,
    )

    profile_text = ""
    with tempfile.TemporaryDirectory(prefix="calshare-bench-inbox-") as tmp:
        work = Path(tmp)
        began = time.perf_counter()
        template = work / "template.db"
        replies = prepare(template, messages)
        replies_file = work / "replies.json"
        write_replies(replies_file, replies)
        sample = work / "reply.eml"  # for smtp-source -F: LF line ends, it sends CRLF
        sample.write_bytes(replies[0].raw.replace(b"\r\n", b"\n"))
        average = sum(len(reply.raw) for reply in replies) / messages
        print(f"prepared the invitations and replies in {time.perf_counter() - began:.1f} s")
        bench = Bench(work, replies, template, replies_file, sample, args.sessions, pins)

        rows: dict[str, list[Row]] = {}
        for shape, name in SHAPES.items():
            rows[shape] = [
                Row(
                    "bare_smtp_source",
                    "(a) bare aiosmtpd  <- smtp-source",
                    partial(bench.bare, shape, "smtp-source"),
                ),
                Row(
                    "bare_generator",
                    "(a) bare aiosmtpd  <- generator",
                    partial(bench.bare, shape, "generator"),
                ),
                Row("inbox", "(b) calshare serve <- generator", partial(bench.calshare, shape)),
                Row(
                    "inbox_sender_held",
                    "    the same, outbox sender held off",
                    partial(bench.calshare, shape, hold_sender=True),
                ),
                Row(
                    "inbox_smtp_source_duplicates",
                    "    calshare <- smtp-source, 1 reply again",
                    partial(bench.calshare, shape, "smtp-source"),
                ),
            ]
            print(f"{name}: ", end="", flush=True)
            for _ in range(runs):  # interleaved, so drift in the machine's load hits every row
                for row in rows[shape]:
                    row.runs.append(row.measure())
                    print(".", end="", flush=True)
            print(flush=True)
        parts = inbox_work(template, replies, work)
        if args.profile:
            profile_file = work / "py-spy.txt"
            run = bench.calshare("reuse", profile=profile_file)
            profile_text = (
                f"profile: one more daemon run (reused connections, {run.rate:,.0f} messages/s "
                f"while sampled): {summarize_profile(profile_file)}"
            )

    # --- report
    lib = versions()
    load_after = load_average()
    print()
    print(
        f"Python {lib['python']}, aiosmtpd {lib['aiosmtpd']}, aiosmtplib {lib['aiosmtplib']}, "
        f"SQLite {lib['sqlite']}, postfix {lib['postfix']}; {platform.platform()}"
    )
    where = (
        "not pinned"
        if pins is None
        else (
            f"servers on CPU {','.join(map(str, sorted(pins[0])))}, "
            f"clients on CPU {','.join(map(str, sorted(pins[1])))}"
        )
    )
    print(f"{where}; load average {load_before} before, {load_after.split(' ')[0]} after")
    print(
        f"replies: multipart/alternative, the invitation quoted, {average:,.0f} B average; "
        f"best and median of {runs} run(s); latency pooled over the runs"
    )
    for shape, name in SHAPES.items():
        print()
        print(f"{name}, {args.sessions} sessions")
        print_rows(rows[shape])

    ratios: dict[str, dict[str, float]] = {}
    targets = []
    print()
    for shape, name in SHAPES.items():
        by_key = {row.key: row for row in rows[shape]}
        bare, inbox = by_key["bare_generator"], by_key["inbox"]
        paired = statistics.median(
            b.rate / a.rate for a, b in zip(bare.runs, inbox.runs, strict=True)
        )
        ratio = {
            "inbox_over_bare": inbox.best / bare.best,
            "inbox_over_bare_median": inbox.median / bare.median,
            "inbox_over_bare_paired_median": paired,
            "inbox_over_bare_smtp_source": inbox.best / by_key["bare_smtp_source"].best,
            "inbox_sender_held_over_bare": by_key["inbox_sender_held"].best / bare.best,
            "generator_over_smtp_source_on_bare": bare.best / by_key["bare_smtp_source"].best,
        }
        ratios[shape] = ratio
        print(
            f"{name}: (b)/(a) {ratio['inbox_over_bare']:.2f}x best, "
            f"{ratio['inbox_over_bare_median']:.2f}x medians, {paired:.2f}x paired; "
            f"over smtp-source's bare rate {ratio['inbox_over_bare_smtp_source']:.2f}x; "
            f"sender held off {ratio['inbox_sender_held_over_bare']:.2f}x"
        )
        targets.append(
            Target(
                f"inbox / bare, {name}",
                f"inbox_over_bare_{shape}",
                ratio["inbox_over_bare"],
                ">=",
                TARGET_RATIO,
            )
        )

    bare_cpu = next(row for row in rows["reuse"] if row.key == "bare_generator").server_cpu
    budget = bare_cpu * (1 / TARGET_RATIO - 1)
    own = sum(part.seconds for part in parts[:3])
    print()
    print(
        "the inbox's own work per accept reply, measured in this process, one piece after another"
    )
    for part in parts:
        print(f"  {part.label:<40}{_ms(part.seconds):>10}  {part.detail}")
    print(f"  {'total':<40}{_ms(own):>10}")
    print(
        f"  the bare server spends {_ms(bare_cpu)} of CPU per message (reused connections): for "
        f"{TARGET_RATIO:.1f}x its rate on one CPU, the inbox's own work may cost "
        f"{_ms(budget)} per message; it costs {own / budget:,.0f} times that"
    )

    problems = [
        problem
        for shape in SHAPES
        for row in rows[shape]
        for run in row.runs
        for problem in run.problems
    ]
    print()
    for problem in problems[:20]:
        print(f"PROBLEM: {problem}")
    if not problems:
        print(
            "checks: every reply was answered 250; after each daemon run every invitation was "
            "accepted, logged once and had its welcome mail queued (with smtp-source's repeated "
            "reply: one grant, one inbound row); each bare server counted every message"
        )
    print()
    print("targets (best runs, the same generator for both)")
    for target in targets:
        verdict = "MET" if target.met else "MISSED"
        value = target.show(target.value)
        print(f"  {target.label:<46}{value:>8}   target {target.rule():<9}{verdict}")

    report = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "messages_per_run": messages,
        "sessions": args.sessions,
        "runs": runs,
        "reply_average_bytes": average,
        "pinning": None
        if pins is None
        else {"servers": sorted(pins[0]), "clients": sorted(pins[1])},
        "load_average_before": load_before,
        "load_average_after": load_after,
        "rows": {shape: {row.key: row.as_json() for row in rows[shape]} for shape in SHAPES},
        "ratios": ratios,
        "inbox_work_per_reply_s": {part.label.strip(): part.seconds for part in parts},
        "inbox_work_budget_s": budget,
        "targets": {target.key: target.as_json() for target in targets},
        "problems": problems,
        "profile": profile_text or None,
        "versions": lib,
        "platform": platform.platform(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    if profile_text:
        print()
        print(profile_text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
