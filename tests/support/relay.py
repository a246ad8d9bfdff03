"""A real SMTP relay for the sender to deliver to: aiosmtpd on a port of its own, recording."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

WAIT = 60.0  # seconds: a bound on every wait, never a pause


@dataclass
class Delivery:
    """One message the relay accepted (answered 250 to)."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    session: Session
    tls: bool  # the connection was encrypted (STARTTLS or implicit TLS) when it arrived

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


@dataclass
class Sink:
    """An aiosmtpd handler: records what it accepts, refuses on demand, can hold a delivery."""

    deliveries: list[Delivery] = field(default_factory=list)
    # one per connection that said EHLO/HELO (aiosmtpd starts a new Session after STARTTLS)
    sessions: list[Session] = field(default_factory=list)
    refusals: list[tuple[str, str]] = field(default_factory=list)  # (stage, reply) answered
    _planned: dict[str, list[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # hold_at(n): the n-th delivery is recorded, `reached` is set, and its 250 waits for `release`
    _hold_at: int | None = None
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def refuse(self, stage: str, reply: str, times: int) -> None:
        """Answer ``reply`` at ``stage`` (MAIL, RCPT or DATA) for the next ``times`` messages."""
        with self._lock:
            self._planned.setdefault(stage, []).extend([reply] * times)

    def hold_at(self, count: int) -> None:
        self._hold_at = count

    def message_ids(self) -> Counter[str]:
        with self._lock:
            return Counter(delivery.message_id for delivery in self.deliveries)

    def _refusal(self, server: SMTP, stage: str, sender: str = "") -> str | None:
        """The next planned reply at ``stage``; ``{sender}`` in it quotes MAIL FROM, as
        Postfix's "Sender address rejected" does."""
        with self._lock:
            planned = self._planned.get(stage)
            if not planned:
                return None
            reply = planned.pop(0).replace("{sender}", sender)
            self.refusals.append((stage, reply))
        if reply.startswith("421"):
            # 421 means the server is closing the channel (RFC 5321 3.8): close it right
            # after the reply is written, as a relay shutting down would.
            assert server.transport is not None
            server.loop.call_soon(server.transport.close)
        return reply

    def _greeted(self, session: Session, hostname: str) -> None:
        session.host_name = hostname
        with self._lock:
            if not any(known is session for known in self.sessions):
                self.sessions.append(session)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self._greeted(session, hostname)
        return responses

    async def handle_HELO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        self._greeted(session, hostname)
        return f"250 {server.hostname}"

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        refused = self._refusal(server, "MAIL", address)
        if refused:
            return refused
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refused = self._refusal(server, "RCPT", envelope.mail_from or "")
        if refused:
            return refused
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        refused = self._refusal(server, "DATA", envelope.mail_from or "")
        if refused:
            return refused
        raw = envelope.original_content
        assert isinstance(raw, bytes) and envelope.mail_from is not None
        assert server.transport is not None
        tls = server.transport.get_extra_info("ssl_object") is not None
        with self._lock:
            self.deliveries.append(
                Delivery(envelope.mail_from, list(envelope.rcpt_tos), raw, session, tls)
            )
            count = len(self.deliveries)
        if count == self._hold_at:
            self.reached.set()
            await asyncio.to_thread(self.release.wait, WAIT)
        return f"250 OK queued as {count}"


class _Controller(Controller):
    """aiosmtpd's Controller on the port the kernel gave it.

    With port=0 the stock Controller binds fine but then probes port 0 to wake the
    server up; this learns the real port first.
    """

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclass
class Relay:
    sink: Sink
    controller: Controller

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def env(self, **more: str) -> dict[str, str]:
        return relay_env(self.port) | more


def relay_env(port: int, security: str = "none") -> dict[str, str]:
    return {
        "CALSHARE_RELAY_HOST": "127.0.0.1",
        "CALSHARE_RELAY_PORT": str(port),
        "CALSHARE_RELAY_SECURITY": security,
    }


def start_relay(sink: Sink, port: int = 0, **smtp: Any) -> Controller:
    controller = _Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        server_hostname="relay.test",  # else aiosmtpd asks socket.getfqdn() (DNS)
        ready_timeout=WAIT,
        **smtp,
    )
    controller.start()
    return controller


@contextmanager
def running_relay(sink: Sink, port: int = 0, **smtp: Any) -> Iterator[Relay]:
    controller = start_relay(sink, port, **smtp)
    try:
        yield Relay(sink, controller)
    finally:
        sink.release.set()  # a held delivery must not keep the server's thread waiting
        controller.stop()


@pytest.fixture
def relay() -> Iterator[Relay]:
    with running_relay(Sink()) as running:
        yield running
