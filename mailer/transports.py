"""Where mail goes: an SMTP relay (one reused connection) or, with no relay, a local Maildir.

Both answer the same question for each message: delivered, or failed for now
(try again later), or failed for good. The sender decides what to do with that.
"""

from __future__ import annotations

import asyncio
import logging
import mailbox
import re
import ssl
from pathlib import Path
from typing import Any, Protocol

import aiosmtplib

from calshare.config import RelaySecurity, RelaySettings

log = logging.getLogger(__name__)


class TemporaryFailure(Exception):
    """Try again later: a 4xx reply, a refused or dropped connection, a timeout."""

    def __init__(self, reason: str, *, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.unreachable = unreachable  # no connection at all: stop trying the rest for now


class RelayProblem(TemporaryFailure):
    """The relay cannot be reached, or refused calshare itself: its greeting (EHLO), its
    login (AUTH) or its envelope sender (MAIL FROM), not the recipient.

    That is the operator's to fix, in calshare's settings or the relay's, and says
    nothing about the recipient's address: the mail waits and is tried again (with
    backoff), the rest of the queue waits too (it would meet the same refusal), and
    no share is ever marked undeliverable for it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason, unreachable=True)


class PermanentFailure(Exception):
    """Give up on this message: the relay answered 5xx for it."""


# Replies to RCPT that are about us, not the recipient. Postfix evaluates its HELO,
# client and sender restrictions at RCPT (smtpd_delay_reject), so "504 5.5.2 <localhost>:
# Helo command rejected: need fully-qualified hostname" arrives as a recipient's refusal.
_ABOUT_US = re.compile(
    r"\b(?:helo|ehlo)\b|client host rejected|sender address rejected|relay access denied"
    r"|authentication required|\b[45]\.1\.[78]\b|\b[45]\.7\.8\b",
    re.IGNORECASE,
)


def _fully_qualified(name: str) -> bool:
    """'mail.example.org' or an address literal, not 'localhost' or a bare host name."""
    return name.startswith("[") or "." in name.strip(".")


def about_us(reply: str) -> bool:
    """Whether a refusal names our greeting, host, sender or login rather than the recipient."""
    return _ABOUT_US.search(reply) is not None


class Transport(Protocol):
    async def send(self, envelope_from: str, recipients: tuple[str, ...], raw: bytes) -> str:
        """Deliver one message; returns the receiving side's answer, raises the failures above."""
        ...

    async def close(self) -> None: ...


def _reply(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}"[:300]


class SmtpRelay:
    """aiosmtplib to the configured relay, connecting on first use and reusing the connection."""

    def __init__(
        self, relay: RelaySettings, *, helo_name: str | None = None, timeout: float = 30.0
    ) -> None:
        self._relay = relay
        # None lets aiosmtplib ask socket.getfqdn(), often "localhost": relays that want
        # a fully-qualified name refuse it, so callers pass one (see sender.helo_name).
        self._helo_name = helo_name or relay.helo_name or None
        if self._helo_name and not _fully_qualified(self._helo_name):
            log.warning(
                "greeting the relay as %r, which is not a fully-qualified name: relays that "
                "check (Postfix's reject_non_fqdn_helo_hostname) refuse it; set [relay] helo_name",
                self._helo_name,
            )
        self._timeout = timeout
        self._smtp: aiosmtplib.SMTP | None = None

    @property
    def _where(self) -> str:
        return f"the relay {self._relay.host}:{self._relay.port}"

    def _ours(self, what: str, reply: str) -> RelayProblem:
        return RelayProblem(
            f"{self._where} refused calshare itself ({what}), not the recipient: {reply}. "
            f"Fix calshare's [relay] settings (helo_name {self._helo_name or '(unset)'}, "
            "username, password) or the relay's; the mail waits and is tried again"
        )

    def _client(self) -> aiosmtplib.SMTP:
        relay = self._relay
        return aiosmtplib.SMTP(
            hostname=relay.host,
            port=relay.port,
            use_tls=relay.security == RelaySecurity.TLS,
            start_tls=relay.security == RelaySecurity.STARTTLS,
            username=relay.username or None,
            password=relay.password or None,
            timeout=self._timeout,
            local_hostname=self._helo_name,
            tls_context=(
                ssl.create_default_context(cafile=relay.ca_file or None)
                if relay.security != RelaySecurity.NONE
                else None
            ),
        )

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        smtp = self._client()
        try:
            await smtp.connect()
        except aiosmtplib.SMTPHeloError as exc:
            raise self._ours(f"EHLO {self._helo_name}", _reply(exc.code, exc.message)) from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            login = f"AUTH as {self._relay.username}"
            raise self._ours(login, _reply(exc.code, exc.message)) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise RelayProblem(
                f"{self._where} refused the connection: " + _reply(exc.code, exc.message)
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise RelayProblem(f"cannot reach {self._where}: {exc}") from None
        self._smtp = smtp
        return smtp

    async def send(self, envelope_from: str, recipients: tuple[str, ...], raw: bytes) -> str:
        smtp = await self._connected()
        try:
            errors, answer = await smtp.sendmail(envelope_from, list(recipients), raw)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            replies = [_reply(refused.code, refused.message) for refused in exc.recipients]
            if all(400 <= refused.code < 500 for refused in exc.recipients):
                raise TemporaryFailure("; ".join(replies)) from None
            if any(about_us(reply) for reply in replies):
                await self._forget()  # greet afresh next time, after the operator's fix
                raise self._ours("at RCPT", "; ".join(replies)) from None
            raise PermanentFailure("; ".join(replies)) from None
        except aiosmtplib.SMTPHeloError as exc:
            await self._forget()
            reply = _reply(exc.code, exc.message)
            if 400 <= exc.code < 500:
                raise TemporaryFailure(reply) from None
            raise self._ours(f"EHLO {self._helo_name}", reply) from None
        except aiosmtplib.SMTPSenderRefused as exc:
            reply = _reply(exc.code, exc.message)
            if exc.code >= 500:
                await self._forget()
                raise self._ours("MAIL FROM (our bounce address)", reply) from None
            if exc.code == 421 or not self._smtp_alive():
                await self._forget()
            raise TemporaryFailure(reply) from None
        except aiosmtplib.SMTPResponseException as exc:
            reply = _reply(exc.code, exc.message)
            if exc.code == 421 or not self._smtp_alive():
                await self._forget()
                raise TemporaryFailure(reply) from None
            if 400 <= exc.code < 500:
                raise TemporaryFailure(reply) from None
            raise PermanentFailure(reply) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self._forget()
            raise TemporaryFailure(f"the relay connection failed: {exc}") from None
        if errors:  # some recipients refused, others accepted: we send one recipient a mail
            raise PermanentFailure("; ".join(_reply(r.code, r.message) for r in errors.values()))
        return answer

    def _smtp_alive(self) -> bool:
        return self._smtp is not None and self._smtp.is_connected

    async def _forget(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None and smtp.is_connected:
            socket = _socket_of(smtp)
            smtp.close()
            await _closed(socket)

    async def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None and smtp.is_connected:
            socket = _socket_of(smtp)
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError) as exc:
                log.info("relay connection ended uncleanly: %s", exc)
                smtp.close()
            await _closed(socket)


def _socket_of(smtp: aiosmtplib.SMTP) -> Any:
    transport = smtp.transport
    return None if transport is None else transport.get_extra_info("socket")


async def _closed(socket: Any, within: float = 2.0) -> None:
    """Wait (briefly) until a closed connection's socket is really closed.

    asyncio closes it in later turns of the loop (after the TLS shutdown, with TLS);
    the flush's loop may end right after, which would leave the socket open.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while socket is not None and socket.fileno() != -1 and loop.time() < deadline:
        await asyncio.sleep(0.005)


class MaildirTransport:
    """With no relay configured, mail is written to a Maildir, so a first run needs nothing else.

    ``mailbox.Maildir.add`` writes into ``tmp/`` and renames into ``new/``: a crash
    leaves no half message for a mail reader to find. Lines end in LF, as in every
    Maildir (mail readers and MDAs write them so; a CR would show up as part of the
    text in tools that read the files directly).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    async def send(self, envelope_from: str, recipients: tuple[str, ...], raw: bytes) -> str:
        def write() -> str:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            box = mailbox.Maildir(self.path, create=True)
            headers = f"Return-Path: <{envelope_from}>\nDelivered-To: {', '.join(recipients)}\n"
            return box.add(headers.encode("utf-8") + raw.replace(b"\r\n", b"\n"))

        try:
            key = await asyncio.to_thread(write)
        except OSError as exc:
            reason = f"cannot write to the Maildir {self.path}: {exc}"
            raise TemporaryFailure(reason, unreachable=True) from None
        return f"written to {self.path}/new/{key}"

    async def close(self) -> None:
        return None


def transport_for(
    relay: RelaySettings | None, maildir: str | Path, *, helo_name: str | None = None
) -> Transport:
    if relay is None:
        return MaildirTransport(maildir)
    return SmtpRelay(relay, helo_name=helo_name)
