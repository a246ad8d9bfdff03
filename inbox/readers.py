"""Reading inbound mail (parse, classify, authentication) in worker processes, each
message under a deadline.

Reading is pure-Python CPU work, and the email package has inputs it reads in time
that grows faster than their size (deep nesting, many parts, long folded headers).
On the event loop one such mail stalled every SMTP and LMTP session and every HTTP
request; in a thread it still would, partly (the GIL), and a thread cannot be
stopped. So messages are read by a few worker processes. A message that is not read
within ``inbox.read_timeout_seconds`` has its worker killed and replaced, and is
stored unread (250, as any message our code cannot get through: a 451 would have
its server send it again for days, costing the same each time). Large messages use
at most all but one worker, so answers (small) always find one free.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

from calshare.config import Settings
from inbox.authresults import passes, prepare
from inbox.classify import Inbound, classify, parse_mail, unreadable

log = logging.getLogger(__name__)

SMALL_MESSAGE_BYTES = 64 * 1024  # answers are a few kB; larger messages share fewer workers
STOP_SECONDS = 5.0  # how long a worker is given to finish on shutdown before it is killed


def read_message(
    settings: Settings, raw: bytes, mail_from: str, recipients: list[str]
) -> list[Inbound]:
    """What the message is, for each recipient: parsed and read once, then per address.

    A message we cannot read at all is still stored (as unknown, with its bytes for
    an operator): answering 451 would only make the sender repeat it forever.
    """
    inbox = settings.inbox
    try:
        mail = parse_mail(raw)
    except Exception as exc:  # noqa: BLE001 - the email package on hostile input: record, do not loop
        log.warning("inbox: unreadable message (%s); stored as unknown", type(exc).__name__)
        return [
            Inbound(raw, mail_from, recipient, unreadable(raw), False) for recipient in recipients
        ]
    items = []
    for recipient in recipients:
        # The body and headers are read for the first recipient and remembered with the
        # message (inbox.classify): each further one costs only its address.
        try:
            verdict = classify(
                mail, mail_from=mail_from, recipient=recipient, domain=settings.mail.domain
            )
            authenticated = passes(
                mail.message,
                require=inbox.require_auth,
                authserv_id=inbox.authserv_id,
                author=verdict.sender,
            )
        except Exception as exc:  # noqa: BLE001 - as above: an unreadable message, not a server error
            log.warning("inbox: could not classify (%s); stored as unknown", type(exc).__name__)
            verdict, authenticated = unreadable(raw, mail.message_id), False
        items.append(Inbound(mail.raw, mail_from, recipient, verdict, authenticated))
    return items


def not_read(raw: bytes, mail_from: str, recipients: list[str], why: str) -> list[Inbound]:
    """The items of a message that was not read in time: kept unread, with its bytes."""
    verdict = replace(unreadable(raw), reason=f"not read: {why}")
    return [Inbound(raw, mail_from, recipient, verdict, False) for recipient in recipients]


# --- the worker process


class _Notes(logging.Handler):
    """The worker's log lines for one message, sent back with its result."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.name, record.levelno, record.getMessage()))


def _serve(conn: Connection, settings: Settings) -> None:
    """The worker: read messages from the pipe until it closes or says stop (None)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal: the daemon decides
    notes = _Notes()
    root = logging.getLogger()
    root.handlers[:] = [notes]
    root.setLevel(logging.INFO)
    prepare(settings.inbox.require_auth)  # what reading needs, loaded before the first message
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        notes.lines = []
        items = read_message(settings, *job)
        conn.send((items, notes.lines))


class _Worker:
    def __init__(self, context: Any, settings: Settings) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child, settings), name="calshare-inbox-reader", daemon=True
        )
        self.process.start()
        child.close()

    def stop(self, timeout: float) -> None:
        with contextlib.suppress(OSError):  # already gone
            self.conn.send(None)
        self.process.join(timeout)
        self.kill()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()


class Readers:
    """A few reader processes and the deadline on each message; ``read`` never raises."""

    def __init__(self, settings: Settings, size: int, deadline: float) -> None:
        self.settings = settings
        self.size = size
        self.deadline = deadline
        # forkserver: workers start from a small clean process, never a fork of this
        # threaded one; the reading modules are imported there once, so a killed
        # worker is replaced in milliseconds.
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["inbox.readers"])
        self._threads = ThreadPoolExecutor(max_workers=size, thread_name_prefix="inbox-read")
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._large = asyncio.Semaphore(max(1, size - 1))
        self._workers: set[_Worker] = set()
        self.replaced = 0  # workers killed at the deadline (or found dead) and replaced
        self._closed = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self.size):
            worker = await loop.run_in_executor(self._threads, self._new_worker)
            self._idle.put_nowait(worker)

    def _new_worker(self) -> _Worker:
        worker = _Worker(self._context, self.settings)
        self._workers.add(worker)
        return worker

    async def read(self, raw: bytes, mail_from: str, recipients: list[str]) -> list[Inbound]:
        """The message read for each recipient, or stored unread if reading failed or
        took longer than the deadline (time spent waiting for a worker not counted)."""
        if len(raw) <= SMALL_MESSAGE_BYTES:
            return await self._read(raw, mail_from, recipients)
        async with self._large:
            return await self._read(raw, mail_from, recipients)

    async def _read(self, raw: bytes, mail_from: str, recipients: list[str]) -> list[Inbound]:
        worker = await self._idle.get()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            self._threads, self._call, worker, (raw, mail_from, recipients)
        )
        # The worker goes back when its call is over, even if this session is gone.
        future.add_done_callback(lambda done: self._idle.put_nowait(done.result()[1]))
        items, _ = await asyncio.shield(future)
        return items

    def _call(
        self, worker: _Worker, job: tuple[bytes, str, list[str]]
    ) -> tuple[list[Inbound], _Worker]:
        """Send one message to a worker and wait (in a thread of ours) for its reading."""
        raw, mail_from, recipients = job
        started = time.monotonic()
        try:
            worker.conn.send(job)
            if worker.conn.poll(self.deadline):
                items, notes = worker.conn.recv()
                for name, level, line in notes:
                    logging.getLogger(name).log(level, "%s", line)
                return items, worker
            why = f"reading took longer than {self.deadline:g} s"
        except Exception as exc:  # noqa: BLE001 - the worker died (killed, out of memory) or a bug: logged below
            why = f"the reader failed ({type(exc).__name__})"
        log.warning(
            "inbox: message of %d bytes not read (%s after %.1f s); stored unread, reader replaced",
            len(raw),
            why,
            time.monotonic() - started,
        )
        worker.kill()
        self._workers.discard(worker)
        if self._closed:  # shutting down: no replacement
            return not_read(raw, mail_from, recipients, why), worker
        self.replaced += 1
        try:
            replacement = self._new_worker()
        except (OSError, RuntimeError, ValueError) as exc:
            # Cannot start a process (out of memory, no forkserver): keep the slot; the
            # next message on it fails fast, is stored unread, and tries again.
            log.error("inbox: could not start a reader process: %s", exc)
            return not_read(raw, mail_from, recipients, why), worker
        return not_read(raw, mail_from, recipients, why), replacement

    async def close(self) -> None:
        """Stop the workers (those still reading are killed after ``STOP_SECONDS``)."""
        loop = asyncio.get_running_loop()
        self._closed = True
        workers = list(self._workers)
        self._workers.clear()
        await asyncio.gather(
            *(loop.run_in_executor(self._threads, worker.stop, STOP_SECONDS) for worker in workers)
        )
        self._threads.shutdown(wait=True)
