"""Where mail goes: an SMTP relay (one reused connection) or, with no relay, a local Maildir.

Both answer the same question for each message: delivered, or failed for now
(try again later), or failed for good. The sender decides what to do with that.
"""

from __future__ import annotations

import asyncio
import logging
import mailbox
import ssl
from pathlib import Path
from typing import Protocol

import aiosmtplib

from calshare.config import RelaySettings

log = logging.getLogger(__name__)


class TemporaryFailure(Exception):
    """Try again later: a 4xx reply, a refused or dropped connection, a timeout."""

    def __init__(self, reason: str, *, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.unreachable = unreachable  # no connection at all: stop trying the rest for now


class PermanentFailure(Exception):
    """Give up on this message: the relay answered 5xx for it."""


class Transport(Protocol):
    async def send(self, envelope_from: str, recipients: tuple[str, ...], raw: bytes) -> str:
        """Deliver one message; returns the receiving side's answer, raises the failures above."""
        ...

    async def close(self) -> None: ...


def _reply(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}"[:300]


class SmtpRelay:
    """aiosmtplib to the configured relay, connecting on first use and reusing the connection."""

    def __init__(self, relay: RelaySettings, *, timeout: float = 30.0) -> None:
        self._relay = relay
        self._timeout = timeout
        self._smtp: aiosmtplib.SMTP | None = None

    def _client(self) -> aiosmtplib.SMTP:
        relay = self._relay
        return aiosmtplib.SMTP(
            hostname=relay.host,
            port=relay.port,
            use_tls=relay.security == "tls",
            start_tls=relay.security == "starttls",
            username=relay.username or None,
            password=relay.password or None,
            timeout=self._timeout,
            tls_context=(
                ssl.create_default_context(cafile=relay.ca_file or None)
                if relay.security != "none"
                else None
            ),
        )

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        smtp = self._client()
        try:
            await smtp.connect()
        except aiosmtplib.SMTPResponseException as exc:
            raise TemporaryFailure(
                f"the relay {self._relay.host}:{self._relay.port} refused the connection: "
                + _reply(exc.code, exc.message),
                unreachable=True,
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TemporaryFailure(
                f"cannot reach the relay {self._relay.host}:{self._relay.port}: {exc}",
                unreachable=True,
            ) from None
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
            raise PermanentFailure("; ".join(replies)) from None
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
            smtp.close()

    async def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None and smtp.is_connected:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError) as exc:
                log.info("relay connection ended uncleanly: %s", exc)
                smtp.close()


class MaildirTransport:
    """With no relay configured, mail is written to a Maildir, so a first run needs nothing else.

    ``mailbox.Maildir.add`` writes into ``tmp/`` and renames into ``new/``: a crash
    leaves no half message for a mail reader to find.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    async def send(self, envelope_from: str, recipients: tuple[str, ...], raw: bytes) -> str:
        def write() -> str:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            box = mailbox.Maildir(self.path, create=True)
            headers = f"Return-Path: <{envelope_from}>\r\nDelivered-To: {', '.join(recipients)}\r\n"
            return box.add(headers.encode("utf-8") + raw)

        try:
            key = await asyncio.to_thread(write)
        except OSError as exc:
            reason = f"cannot write to the Maildir {self.path}: {exc}"
            raise TemporaryFailure(reason, unreachable=True) from None
        return f"written to {self.path}/new/{key}"

    async def close(self) -> None:
        return None


def transport_for(relay: RelaySettings | None, maildir: str | Path) -> Transport:
    return SmtpRelay(relay) if relay is not None else MaildirTransport(maildir)
