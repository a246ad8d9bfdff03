"""The SMTP/LMTP side of the inbox: take a message, store what it means, then answer.

``InboxHandler`` is an aiosmtpd handler. RCPT refuses addresses we do not serve;
DATA has the message read (parsed and classified) by a worker process under a
deadline (``inbox.readers``), hands the result to the
``GroupCommitter`` and answers 250 only once the committer says it is stored
(451 if it cannot be, or not soon enough: the sending server will try again, and
a second delivery of the same message changes nothing). The committer is one
thread with its own connection that stores every message waiting in one
transaction: with synchronous=FULL a commit costs a disk flush, and sharing it
is how the inbox keeps up without giving up durability.

What a message does is not the inbox's business: the committer is handed a
``Record`` (``calshare.answers.record``, given by ``calshare.daemon``), as aiosmtpd
is handed its handler. So the inbox imports nothing above itself.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP
from sqlite_utils import Database

from calshare.clock import Clock, utc_text
from calshare.config import RequireAuth, Settings
from calshare.errors import CalshareError, StoreError
from calshare.links import parse_address
from calshare.store import Store
from calshare.tokens import redact
from inbox.authresults import peer_trusted
from inbox.classify import Inbound, Verdict, unreadable
from inbox.readers import Readers

log = logging.getLogger(__name__)

TEMPORARY = "451 4.3.0 Temporary failure, please try again later"
NOT_HERE = "550 5.1.1 No such address here"
MAX_GROUP = 500
YIELD_EVERY = 64  # lines of DATA read before other sessions get a turn of the loop

# Does everything one message for one recipient implies, inside the caller's
# transaction, and says what it did (the outcome the 250 reply carries).
Record = Callable[[Database, Settings, datetime, Inbound], str]


@dataclass
class _Job:
    items: list[Inbound]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[str]]


class GroupCommitter:
    """Stores inbound messages, many per transaction, in a thread of its own."""

    def __init__(
        self,
        db_path: Path,
        settings: Settings,
        clock: Clock,
        record: Record,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._db_path = db_path
        self._settings = settings
        self._clock = clock
        self._record = record
        self._on_commit = on_commit
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="inbox-commit", daemon=True)
        self.commits = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join()

    async def store(self, items: list[Inbound]) -> list[str]:
        """The outcome of each item, once committed; raises if they could not be stored."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[str]] = loop.create_future()
        self._jobs.put(_Job(items, loop, future))
        return await future

    def _run(self) -> None:
        # SQLite connections belong to the thread that made them: this one is ours.
        self._store = Store.open(self._db_path)
        try:
            self._serve_jobs()
        finally:
            self._store.close()

    def _serve_jobs(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                return
            group = [first]
            while len(group) < MAX_GROUP:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._jobs.put(None)  # stop after this group
                    break
                group.append(job)
            self._commit(group)

    def _commit(self, group: list[_Job]) -> None:
        """Store a group in one transaction; whatever happens, every job gets its answer.

        One message that fails is rolled back to its savepoint and kept unread, or
        answered 451 alone if the store refused it (see ``_kept_unread``).
        If the whole transaction is gone (SQLite rolls everything back on some errors,
        a full disk among them) or the commit fails, the whole group is answered 451.
        The thread itself never dies: a dead committer would be a daemon that
        answers 451 to everything while looking healthy.
        """
        results: list[list[str] | BaseException] = []
        now = self._clock.now()
        conn = self._store.db.conn
        try:
            with self._store.write() as db:
                for number, job in enumerate(group):
                    db.execute(f"SAVEPOINT job{number}")
                    try:
                        results.append(
                            [self._record(db, self._settings, now, item) for item in job.items]
                        )
                    except Exception as exc:  # one bad message must not sink the group
                        if not conn.in_transaction:
                            raise StoreError("the database rolled the transaction back") from exc
                        db.execute(f"ROLLBACK TO job{number}")
                        results.append(self._kept_unread(db, now, job, exc))
                    db.execute(f"RELEASE job{number}")
            self.commits += 1
        except Exception as exc:  # noqa: BLE001 - the store: locked, full, read-only, gone; or a bug
            log.error("inbox: commit of %d messages failed: %s", len(group), exc)
            results = [exc] * len(group)
        for job, result in zip(group, results, strict=True):
            job.loop.call_soon_threadsafe(_settle, job.future, result)
        if self._on_commit is not None:
            self._on_commit()

    def _kept_unread(
        self, db: Any, now: datetime, job: _Job, exc: Exception
    ) -> list[str] | BaseException:
        """A message our own code failed on is kept as unread and taken (250), not refused.

        A 451 makes the sending server retry the same message for days, failing the
        same way each time, and then bounce it to a person who did nothing wrong.
        Kept, it changes nothing, and the operator finds it in the inbound log. Errors
        of the store itself (locked, full, a trigger) still answer 451: they pass.
        """
        if isinstance(exc, sqlite3.Error):
            log.error("inbox: could not record a message (%s); answering 451", exc)
            return exc
        log.exception("inbox: could not read a message; keeping it unread")
        db.execute("SAVEPOINT unread")
        try:
            outcomes = [
                self._record(db, self._settings, now, replace(item, verdict=_failed(item, exc)))
                for item in job.items
            ]
        except Exception as again:  # noqa: BLE001 - answered 451, and logged
            log.error("inbox: could not keep it unread either (%s); answering 451", again)
            db.execute("ROLLBACK TO unread")
            db.execute("RELEASE unread")
            return again
        db.execute("RELEASE unread")
        return outcomes


def _failed(item: Inbound, exc: Exception) -> Verdict:
    verdict = unreadable(item.raw, item.verdict.message_id or None)
    return replace(verdict, reason=f"not read: calshare failed on it ({type(exc).__name__})")


def _settle(future: asyncio.Future[list[str]], result: list[str] | BaseException) -> None:
    if future.done():  # the session gave up waiting (and answered 451)
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class Sessions:
    """The open SMTP/LMTP connections, and which of them are in the middle of a message."""

    def __init__(self) -> None:
        self.open: set[Any] = set()

    def receiving(self) -> int:
        return sum(1 for session in self.open if session.calshare_receiving)

    async def drain(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until no session is receiving or storing a message."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.receiving() and loop.time() < deadline:
            await asyncio.sleep(0.02)

    def close_idle(self) -> None:
        """Tell the remaining clients we are going (421) and close their connections."""
        for session in list(self.open):
            transport = session.transport
            if transport is not None and not transport.is_closing():
                transport.write(b"421 4.3.2 Shutting down, please try again later\r\n")
                transport.close()


def _yielding(
    readuntil: Callable[[bytes], Awaitable[bytes]],
) -> Callable[[bytes], Awaitable[bytes]]:
    """A line reader that lets the loop serve others every ``YIELD_EVERY`` lines.

    aiosmtpd reads DATA line by line, and a line already buffered is returned without
    a turn of the loop: a megabyte of empty lines held every other session and every
    HTTP request for as long as it took (about a second). Now it takes turns.
    """
    lines = 0

    async def read(separator: bytes = b"\n") -> bytes:
        nonlocal lines
        lines += 1
        if lines % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        return await readuntil(separator)

    return read


def protocol_class(kind: type[SMTP], line_length: int, sessions: Sessions) -> type[SMTP]:
    """aiosmtpd's SMTP or LMTP, with the configured line length, session tracking for a
    graceful stop, the command timeout as a silence timeout, and, for LMTP, refusals
    after DATA repeated once per recipient."""

    class Protocol(kind):  # type: ignore[valid-type,misc]
        line_length_limit = line_length
        calshare_receiving = False  # from DATA until its answer is sent
        calshare_storing = False  # the message is in: being read and stored
        calshare_heard = 0.0  # loop time of the last bytes received
        _copies = 1

        def data_received(self, data: bytes) -> None:
            self.calshare_heard = self.loop.time()
            super().data_received(data)

        def _cb_client_connected(
            self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            super()._cb_client_connected(reader, writer)
            reader.readuntil = _yielding(reader.readuntil)  # type: ignore[method-assign,assignment]

        def _timeout_cb(self) -> None:
            # aiosmtpd times each command from its arrival, DATA included: a large
            # message on a slow link, or one we are still reading, would be cut however
            # lively. Within DATA the timeout runs from the last bytes received, and not
            # while the message is read and stored (their own deadlines bound that).
            if self.calshare_receiving:
                silent = self.loop.time() - self.calshare_heard
                if self.calshare_storing or silent < self._timeout_duration:
                    left = self._timeout_duration - (0 if self.calshare_storing else silent)
                    self._reset_timeout(max(left, 0.1))
                    return
            super()._timeout_cb()

        async def _call_handler_hook(self, command: str, *args: Any) -> Any:
            if command != "DATA":
                return await super()._call_handler_hook(command, *args)
            self.calshare_storing = True
            try:
                return await super()._call_handler_hook(command, *args)
            finally:
                self.calshare_storing = False
                self.calshare_heard = self.loop.time()

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            sessions.open.add(self)

        def connection_lost(self, error: Exception | None) -> None:
            sessions.open.discard(self)
            super().connection_lost(error)

        async def smtp_DATA(self, arg: str) -> None:
            self.calshare_receiving = True
            try:
                await super().smtp_DATA(arg)
            finally:
                self.calshare_receiving = False
                self._copies = 1

        async def push(self, status: str | bytes) -> None:
            if self.calshare_receiving and isinstance(status, str):
                if status.startswith("354"):
                    # RFC 2033: from here on, DATA is answered once per recipient.
                    self._copies = len(self.envelope.rcpt_tos) if issubclass(kind, LMTP) else 1
                elif self._copies > 1 and "\r\n" not in status:
                    status = "\r\n".join([status] * self._copies)
            await super().push(status)

    Protocol.__name__ = f"Calshare{kind.__name__}"
    return Protocol


@dataclass
class InboxHandler:
    """aiosmtpd handler for SMTP and LMTP alike (``lmtp`` decides the DATA answer's shape)."""

    settings: Settings
    committer: GroupCommitter
    readers: Readers
    lmtp: bool = False

    def serves(self, address: str) -> bool:
        address = address.strip().strip("<>").lower()
        form, detail = parse_address(address, self.settings.mail.domain)
        if form is not None and detail:
            return True
        return any(fnmatchcase(address, pattern) for pattern in self.settings.inbox.operators)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if not self.serves(address):
            log.info("inbox: refused RCPT %s", redact(address))
            return NOT_HERE
        if len(envelope.rcpt_tos) >= self.settings.inbox.max_recipients:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw: bytes = envelope.original_content or b""
        recipients = list(envelope.rcpt_tos)
        mail_from = envelope.mail_from or ""
        # Read in a worker process, under a deadline: never on the loop that serves
        # every session and every HTTP request (inbox.readers).
        items = await self.readers.read(raw, mail_from, recipients)
        if not peer_trusted(session.peer, self.settings.inbox.trusted_peers):
            items = [self._unvouched(item) for item in items]
        try:
            outcomes = await asyncio.wait_for(
                self.committer.store(items), self.settings.inbox.commit_timeout_seconds
            )
        except (TimeoutError, CalshareError, OSError) as exc:
            log.warning("inbox: answering 451 for %d recipients: %s", len(recipients), exc)
            return self._each(TEMPORARY, len(recipients))
        except Exception:  # unforeseen: the sender must retry, not bounce
            log.exception("inbox: answering 451 after an unexpected error")
            return self._each(TEMPORARY, len(recipients))
        replies = [f"250 2.0.0 OK {outcome}" for outcome in outcomes]
        return (
            "\r\n".join(replies)
            if self.lmtp
            else replies[0]
            if len(replies) == 1
            else "250 2.0.0 OK"
        )

    def _unvouched(self, item: Inbound) -> Inbound:
        """A message from a peer that is not the mail server in front: its
        Authentication-Results were written by the client itself (RFC 8601 §5), so
        they count for nothing; without [inbox] require_auth there is nothing to vouch."""
        return replace(item, authenticated=self.settings.inbox.require_auth == RequireAuth.NONE)

    def _each(self, reply: str, count: int) -> str:
        """LMTP answers DATA once per recipient (RFC 2033); SMTP once."""
        return "\r\n".join([reply] * count) if self.lmtp else reply

    async def handle_exception(self, error: Exception) -> str:
        """Never aiosmtpd's "500 (the exception)": a permanent bounce that leaks internals."""
        log.error("inbox: session error, answered 451: %s", type(error).__name__)
        return TEMPORARY


def purge_raw(store: Store, keep_days: int, now: datetime) -> int:
    """Forget raw inbound bytes older than ``keep_days``; the log rows stay."""
    with store.write() as db:
        return db.execute(
            """DELETE FROM inbound_raw WHERE inbound_id IN
                   (SELECT id FROM inbound WHERE received_at < ?)""",
            [utc_text(now - timedelta(days=keep_days))],
        ).rowcount
