"""The SMTP/LMTP side of the inbox: take a message, store what it means, then answer.

``InboxHandler`` is an aiosmtpd handler. RCPT refuses addresses we do not serve;
DATA parses and classifies off the event loop, hands the result to the
``GroupCommitter`` and answers 250 only once the committer says it is stored
(451 if it cannot be, or not soon enough: the sending server will try again, and
a second delivery of the same message changes nothing). The committer is one
thread with its own connection that stores every message waiting in one
transaction: with synchronous=FULL a commit costs a disk flush, and sharing it
is how the inbox keeps up without giving up durability.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from calshare.answers import Inbound, record
from calshare.calendars import utc_text
from calshare.clock import Clock
from calshare.config import Settings
from calshare.errors import CalshareError
from calshare.store import Store
from inbox.authresults import passes
from inbox.classify import classify, parse_mail, recipient_form

log = logging.getLogger(__name__)

TEMPORARY = "451 4.3.0 Temporary failure, please try again later"
NOT_HERE = "550 5.1.1 No such address here"
MAX_GROUP = 500


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
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._db_path = db_path
        self._settings = settings
        self._clock = clock
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
        results: list[list[str] | BaseException] = []
        now = self._clock.now()
        try:
            with self._store.write() as db:
                for number, job in enumerate(group):
                    db.execute(f"SAVEPOINT job{number}")
                    try:
                        results.append(
                            [record(db, self._settings, now, item) for item in job.items]
                        )
                    except Exception as exc:  # one bad message must not sink the group
                        log.exception("inbox: could not record a message; answering 451")
                        db.execute(f"ROLLBACK TO job{number}")
                        results.append(exc)
                    db.execute(f"RELEASE job{number}")
            self.commits += 1
        except (CalshareError, OSError) as exc:  # the store: locked, full, read-only, gone
            log.error("inbox: commit of %d messages failed: %s", len(group), exc)
            results = [exc] * len(group)
        for job, result in zip(group, results, strict=True):
            job.loop.call_soon_threadsafe(_settle, job.future, result)
        if self._on_commit is not None:
            self._on_commit()


def _settle(future: asyncio.Future[list[str]], result: list[str] | BaseException) -> None:
    if future.done():  # the session gave up waiting (and answered 451)
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


@dataclass
class InboxHandler:
    """aiosmtpd handler for SMTP and LMTP alike (``lmtp`` decides the DATA answer's shape)."""

    settings: Settings
    committer: GroupCommitter
    lmtp: bool = False
    in_flight: set[asyncio.Task[Any]] = field(default_factory=set)

    def serves(self, address: str) -> bool:
        address = address.strip().strip("<>").lower()
        form, detail = recipient_form(address, self.settings.mail.domain)
        if form is not None and detail:
            return True
        return any(fnmatchcase(address, pattern) for pattern in self.settings.inbox.operators)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if not self.serves(address):
            log.info("inbox: refused RCPT %s", address.split("+", 1)[0])
            return NOT_HERE
        if len(envelope.rcpt_tos) >= self.settings.inbox.max_recipients:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        task = asyncio.current_task()
        if task is not None:
            self.in_flight.add(task)
        try:
            return await self._data(envelope)
        finally:
            if task is not None:
                self.in_flight.discard(task)

    async def _data(self, envelope: Any) -> str:
        raw: bytes = envelope.original_content or b""
        recipients = list(envelope.rcpt_tos)
        mail_from = envelope.mail_from or ""
        loop = asyncio.get_running_loop()
        # Parsing a large message takes time: not on the loop that serves every session.
        items = await loop.run_in_executor(None, self._read, raw, mail_from, recipients)
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

    def _each(self, reply: str, count: int) -> str:
        """LMTP answers DATA once per recipient (RFC 2033); SMTP once."""
        return "\r\n".join([reply] * count) if self.lmtp else reply

    def _read(self, raw: bytes, mail_from: str, recipients: list[str]) -> list[Inbound]:
        mail = parse_mail(raw)
        inbox = self.settings.inbox
        items = []
        for recipient in recipients:
            verdict = classify(
                mail, mail_from=mail_from, recipient=recipient, domain=self.settings.mail.domain
            )
            authenticated = passes(
                mail.message,
                require=inbox.require_auth,
                authserv_id=inbox.authserv_id,
                author=verdict.sender,
            )
            items.append(Inbound(mail.raw, mail_from, recipient, verdict, authenticated))
        return items

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
