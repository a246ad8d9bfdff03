"""``calshare serve``: one asyncio process for the inbox (SMTP and/or LMTP) and the outbox.

aiosmtpd's SMTP and LMTP protocol classes run on ``loop.create_server`` in this
loop (its threaded Controller is for tests). The outbox sender runs as a task in
the same loop, woken when the inbox queues mail and every few seconds anyway.
SIGTERM or SIGINT: stop listening, let messages in flight finish (each still
answers after its commit), stop the sender, exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

from calshare import answers, sharing
from calshare.clock import Clock
from calshare.config import Settings
from calshare.errors import UsageError
from calshare.store import Store
from inbox.readers import Readers
from inbox.server import GroupCommitter, InboxHandler, Sessions, protocol_class, purge_raw
from mailer.sender import default_transport, flush

if TYPE_CHECKING:
    from calshare.web import WebServer

log = logging.getLogger(__name__)

SEND_EVERY = 10.0  # seconds between outbox flushes when nothing wakes the sender
DRAIN_SECONDS = 30.0  # how long SIGTERM waits for messages in flight
PURGE_EVERY = timedelta(hours=6)  # how often old raw inbound messages are forgotten
REFRESH_TICK = 15.0  # seconds between looks for calendars whose source is due


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, flag: str) -> Listen:
        host, colon, port = text.rpartition(":")
        if not colon or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise UsageError(f"{flag} {text!r} is not HOST:PORT, like 127.0.0.1:8025")
        return cls(host.strip("[]") or "127.0.0.1", int(port))


def _tls(settings: Settings) -> ssl.SSLContext | None:
    if not settings.inbox.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.inbox.tls_cert, settings.inbox.tls_key)
    return context


class Daemon:
    def __init__(self, settings: Settings, db_path: Path, clock: Clock) -> None:
        self.settings = settings
        self.db_path = db_path
        self.clock = clock
        self.wake_sender = asyncio.Event()
        self.stopping = asyncio.Event()
        self.servers: list[asyncio.AbstractServer] = []
        self.handlers: list[InboxHandler] = []
        self.sessions = Sessions()
        inbox = settings.inbox
        self.readers = Readers(settings, inbox.readers, inbox.read_timeout_seconds)
        self.ports: dict[str, int] = {}
        self.web: WebServer | None = None
        self.refresh_tick = REFRESH_TICK

    async def start(
        self, smtp: Listen | None, lmtp: Listen | None, http: Listen | None = None
    ) -> None:
        loop = asyncio.get_running_loop()
        # aiosmtpd logs every command at INFO, RCPT TO:<accept+TOKEN@…> included: tokens
        # must never reach a log, so its protocol log stays at warnings.
        logging.getLogger("mail.log").setLevel(logging.WARNING)

        def wake() -> None:  # from the committer's thread: mail may have been queued
            loop.call_soon_threadsafe(self.wake_sender.set)

        self.committer = GroupCommitter(
            self.db_path, self.settings, self.clock, answers.record, on_commit=wake
        )
        self.committer.start()
        await self.readers.start()
        with Store.open(self.db_path, same_thread=False) as store:
            keep = self.settings.inbox.keep_raw_days
            purged = await asyncio.to_thread(purge_raw, store, keep, self.clock.now())
        if purged:
            log.info(
                "inbox: forgot %d raw messages older than %d days",
                purged,
                self.settings.inbox.keep_raw_days,
            )
        for name, listen, kind in (("smtp", smtp, SMTP), ("lmtp", lmtp, LMTP)):
            if listen is None:
                continue
            handler = InboxHandler(self.settings, self.committer, self.readers, lmtp=kind is LMTP)
            protocol = protocol_class(kind, self.settings.inbox.max_line_length, self.sessions)
            factory = partial(
                protocol,
                handler,
                data_size_limit=self.settings.inbox.max_message_bytes,
                hostname=self.settings.inbox.hostname,
                ident="calshare",
                timeout=self.settings.inbox.command_timeout_seconds,
                tls_context=_tls(self.settings) if kind is SMTP else None,
                loop=loop,
            )
            server = await loop.create_server(factory, listen.host, listen.port)
            self.servers.append(server)
            self.handlers.append(handler)
            self.ports[name] = server.sockets[0].getsockname()[1]
            log.info("serving %s on %s:%d", name.upper(), listen.host, self.ports[name])
        self.wake_sender.set()  # what waited while the daemon was down goes out now
        self.sender_task = asyncio.create_task(self._send_forever(), name="outbox-sender")
        self.refresher_task = asyncio.create_task(self._refresh_forever(), name="refresher")
        if http is not None:
            from calshare.web import WebServer

            self.web = WebServer(self.settings, self.db_path, self.clock, on_mail_queued=wake)
            await self.web.start(http.host, http.port)
            self.ports["http"] = self.web.port

    async def _send_forever(self) -> None:
        """Flush the outbox when woken and every few seconds, until the daemon stops.

        Nothing may end this task early: a dead sender would be a daemon that takes
        answers and never mails anyone. Errors are logged and retried.
        """
        store = Store.open(self.db_path, same_thread=False)
        purged_at = self.clock.now()
        try:
            while not self.stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake_sender.wait(), SEND_EVERY)
                self.wake_sender.clear()
                try:
                    if self.clock.now() - purged_at > PURGE_EVERY:
                        purged_at = self.clock.now()
                        keep = self.settings.inbox.keep_raw_days
                        await asyncio.to_thread(purge_raw, store, keep, purged_at)
                    result = await flush(
                        store,
                        self.settings,
                        self.clock,
                        default_transport(self.settings),
                        on_failed=sharing.delivery_failed(self.settings),
                        offload=True,
                        should_stop=self.stopping.is_set,
                    )
                except Exception:
                    log.exception("outbox: sending failed; trying again in %s s", SEND_EVERY)
                    continue
                if result.sent or result.deferred or result.failed:
                    log.info(
                        "outbox: sent %d, deferred %d, failed %d",
                        result.sent,
                        result.deferred,
                        result.failed,
                    )
        finally:
            store.close()

    async def _refresh_forever(self) -> None:
        """Read the calendars whose source is due, round after round, until the daemon stops.

        A round runs in a worker thread (its fetches in a pool of their own), so the
        loop keeps serving feeds and mail meanwhile. Like the sender, nothing may end
        this task early: errors are logged and the next tick tries again.
        """
        from calshare.refresh import refresh_round
        from calshare.subscriptions import due_sources

        store = Store.open(self.db_path, same_thread=False)

        def republish(calendar_id: int) -> None:  # in the round's thread
            from calshare.errors import CalshareError
            from calshare.publishing import rewrite_after_import

            try:
                rewrite_after_import(store, self.settings, self.clock, calendar_id)
            except CalshareError as exc:
                log.warning(
                    "calendar #%d changed, but its WebDAV copy was not: %s", calendar_id, exc
                )

        try:
            while not self.stopping.is_set():
                try:
                    due = await asyncio.to_thread(due_sources, store.db, self.clock.now())
                    if due:
                        done = await asyncio.to_thread(
                            refresh_round,
                            store,
                            self.settings,
                            self.clock,
                            due,
                            should_stop=self.stopping.is_set,
                            on_altered=republish,
                        )
                        if any(item.mail for item in done):
                            self.wake_sender.set()
                        for item in done:
                            if item.result == "failed":
                                log.warning(
                                    "source of calendar %s failed (%s): %s",
                                    item.calendar,
                                    item.cause,
                                    item.message,
                                )
                        log.info(
                            "sources: read %d, changed %d, failed %d",
                            len(done),
                            sum(item.altered for item in done),
                            sum(item.result == "failed" for item in done),
                        )
                except Exception:
                    log.exception(
                        "sources: a round failed; trying again in %s s", self.refresh_tick
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), self.refresh_tick)
        finally:
            store.close()

    async def stop(self) -> None:
        """Stop listening, finish what is in flight, then stop the sender and the committer."""
        for server in self.servers:
            server.close()  # no new connections
        if self.web is not None:
            await self.web.stop()
        if self.sessions.receiving():
            log.info("waiting for %d messages in flight", self.sessions.receiving())
            await self.sessions.drain(DRAIN_SECONDS)
        self.sessions.close_idle()
        for server in self.servers:
            await server.wait_closed()
        self.stopping.set()
        self.wake_sender.set()
        try:
            await self.sender_task
            await self.refresher_task
        finally:
            await asyncio.get_running_loop().run_in_executor(None, self.committer.stop)
            await self.readers.close()
        log.info("stopped")


async def serve(
    settings: Settings,
    db_path: Path,
    clock: Clock,
    *,
    smtp: Listen | None,
    lmtp: Listen | None,
    http: Listen | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Run until SIGTERM or SIGINT."""
    daemon = Daemon(settings, db_path, clock)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await daemon.start(smtp, lmtp, http)
    if ready is not None:
        ready.set()
    await stop.wait()
    log.info("stopping on a signal")
    await daemon.stop()
