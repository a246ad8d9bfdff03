"""Loop latency while hostile mail arrives: does one mail stall everyone? (issue 11)

``calshare serve --smtp --http`` runs as a process of its own, from this tree and
(``--before REV``, default ``main``; ``--before ''`` skips it) from a git revision
exported to a temporary directory. For each: a published page is fetched over HTTP
and a new SMTP session opened (time to its 220 greeting and EHLO reply) over and over,
first with nothing else going on, then for ``--window`` seconds while ``--mails``
hostile mails are sent at once: HTML-only, ``<a b='`` repeated to ``--size`` bytes
(unclosed tags and attributes, which html.parser read in quadratic time), each to
``--recipients`` addresses, no token, no authentication. Printed: p50 and max of each
probe, and how long each hostile mail took to be answered (or that it was not, within
the window plus a minute: then the daemon is killed).

    .venv/bin/python bench/hostile.py [--size BYTES] [--recipients N] [--mails M]
                                      [--window S] [--before REV]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
DOMAIN = "share.example.org"
PROBE_TIMEOUT = 120.0  # seconds: a probe that takes longer counts as this long
ONE_EVENT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nBEGIN:VEVENT\r\n"
    "UID:one@bench\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20261127T100000Z\r\n"
    "DTEND:20261127T110000Z\r\nSUMMARY:Planning\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def hostile(size: int, recipients: list[str]) -> bytes:
    line = "<a b='" * 166 + "\r\n"  # under RFC 5321's 1,000 bytes a line
    head = (
        f"From: mallory@example.net\r\nTo: {', '.join(recipients)}\r\nSubject: hello\r\n"
        f"Message-ID: <{time.monotonic_ns()}@example.net>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n"
    )
    return (head + line * max(1, size // len(line))).encode()


def command_line(tree: Path) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALSHARE_")}
    env["PYTHONPATH"] = str(tree)
    return [sys.executable, "-m", "calshare"], env


def prepare(tree: Path, work: Path) -> tuple[dict[str, str], str]:
    """A database with one published calendar; the environment and the page's path."""
    base, env = command_line(tree)
    env["CALSHARE_DB"] = str(work / "calshare.db")
    env["CALSHARE_OUTBOX_MAILDIR"] = str(work / "maildir")
    (work / "one.ics").write_text(ONE_EVENT)
    for args in (
        ["calendar", "add", "project", "--owner", "ann@example.org", "--tz", "UTC"],
        ["calendar", "import", "project", str(work / "one.ics")],
    ):
        subprocess.run(base + args, env=env, cwd=work, check=True, capture_output=True)
    published = subprocess.run(
        [*base, "publish", "project", "--level", "free-busy"],
        env=env,
        cwd=work,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = re.search(r"/p/[A-Za-z2-7]+(?=\s|$)", published)
    assert found, published
    return env, found[0]


@dataclass
class Probes:
    page: list[float] = field(default_factory=list)
    greeting: list[float] = field(default_factory=list)

    def row(self) -> str:
        def show(values: list[float]) -> str:
            if not values:
                return "-"
            return f"{statistics.median(values) * 1000:.0f} / {max(values) * 1000:.0f} ms"

        return f"{show(self.page)} | {show(self.greeting)} | {len(self.page)}"


def probe_page(url: str) -> float:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT) as response:
            response.read()
    except OSError:
        return PROBE_TIMEOUT
    return time.monotonic() - started


def probe_greeting(port: int) -> float:
    started = time.monotonic()
    try:
        with socket.create_connection((HOST, port), timeout=PROBE_TIMEOUT) as sock:
            reader = sock.makefile("rb")
            reader.readline()
            sock.sendall(b"EHLO probe.test\r\n")
            while reader.readline()[3:4] == b"-":
                pass
            sock.sendall(b"QUIT\r\n")
    except OSError:
        return PROBE_TIMEOUT
    return time.monotonic() - started


def probe(url: str, port: int, until: float, into: Probes) -> None:
    while time.monotonic() < until:
        into.page.append(probe_page(url))
        into.greeting.append(probe_greeting(port))
        time.sleep(0.05)


async def send(port: int, raw: bytes, recipients: list[str]) -> tuple[float, str]:
    import aiosmtplib

    started = time.monotonic()
    client = aiosmtplib.SMTP(hostname=HOST, port=port, start_tls=False, timeout=None)
    await client.connect()
    try:
        await client.ehlo()
        await client.mail("mallory@example.net")
        for recipient in recipients:
            await client.rcpt(recipient)
        try:
            response = await client.data(raw)
            answer = f"{response.code}"
        except aiosmtplib.SMTPResponseException as exc:
            answer = f"{exc.code}"
    finally:
        client.close()
    return time.monotonic() - started, answer


def measure(tree: Path, label: str, args: argparse.Namespace) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="calshare-hostile-") as scratch:
        work = Path(scratch)
        env, page = prepare(tree, work)
        base, _ = command_line(tree)
        log = work / "serve.log"
        with log.open("wb") as output:
            daemon = subprocess.Popen(
                [*base, "serve", "--smtp", f"{HOST}:0", "--http", f"{HOST}:0"],
                env=env,
                cwd=work,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 60
            while not (
                ports := re.findall(r"serving (SMTP|HTTP) on [\d.]+:(\d+)", log.read_text())
            ):
                assert time.monotonic() < deadline and daemon.poll() is None, log.read_text()
                time.sleep(0.05)
            while len(ports) < 2:
                time.sleep(0.05)
                ports = re.findall(r"serving (SMTP|HTTP) on [\d.]+:(\d+)", log.read_text())
            port = {name: int(number) for name, number in ports}
            url = f"http://{HOST}:{port['HTTP']}{page}"
            quiet = Probes()
            probe(url, port["SMTP"], time.monotonic() + 3, quiet)

            recipients = [f"share+x{number}@{DOMAIN}" for number in range(args.recipients)]
            answers: list[tuple[float, str]] = []

            def attack() -> None:
                async def all_at_once() -> None:
                    sent = [
                        send(port["SMTP"], hostile(args.size, recipients), recipients)
                        for _ in range(args.mails)
                    ]
                    answers.extend(await asyncio.gather(*sent))

                asyncio.run(all_at_once())

            attacker = threading.Thread(target=attack, daemon=True)
            attacker.start()
            loud = Probes()
            probe(url, port["SMTP"], time.monotonic() + args.window, loud)
            attacker.join(60)
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        replied = (
            ", ".join(f"{answer} after {took:.1f} s" for took, answer in answers)
            if answers
            else f"none within {args.window + 60:.0f} s"
        )
        return [
            f"| {label}, quiet | {quiet.row()} | |",
            f"| {label}, under attack | {loud.row()} | {replied} |",
        ]


def export(revision: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=59_000, help="bytes of hostile HTML")
    parser.add_argument("--recipients", type=int, default=5)
    parser.add_argument("--mails", type=int, default=1, help="hostile mails sent at once")
    parser.add_argument("--window", type=float, default=15.0, help="seconds probed under attack")
    parser.add_argument("--before", default="main", help="git revision to compare ('': none)")
    args = parser.parse_args()
    print(
        f"hostile: {args.mails} × {args.size:,} bytes of <a b=' to {args.recipients} "
        f"recipients; probes for {args.window:.0f} s"
    )
    print("| daemon | HTTP page p50 / max | SMTP 220+EHLO p50 / max | probes | hostile answered |")
    print("|---|---|---|---|---|")
    rows = []
    if args.before:
        old = Path(tempfile.mkdtemp(prefix="calshare-before-"))
        try:
            rows += measure(export(args.before, old), f"before ({args.before})", args)
        finally:
            shutil.rmtree(old, ignore_errors=True)
    rows += measure(ROOT, "this tree", args)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
