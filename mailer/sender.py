"""Send the outbox: claim a batch, deliver it over one connection, record the outcomes.

Durability without a commit per message: a batch is marked ``sending`` in one
transaction and its outcomes are recorded in the next, so a thousand mails cost
twenty commits, not two thousand. If the process dies in between, the next
sender (which holds the flush lock, so the old one is surely gone) puts the
batch back in the queue and sends it again with the same Message-IDs: a receiving
system may see a message twice, never two different messages.

What a refused mail means (an invitation nobody can receive makes its share
undeliverable) is not the sender's business: ``flush`` is handed an ``OnFailed``
(``calshare.sharing.delivery_failed``, given by the CLI and the daemon), as aiosmtpd
is handed its handler. So the mailer imports nothing above itself.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from sqlite_utils import Database

from calshare.clock import Clock
from calshare.config import InboxSettings, OutboxSettings, Settings
from calshare.errors import StoreBusy
from calshare.links import hide_bounce_key
from calshare.store import Store
from mailer import outbox
from mailer.transports import (
    PermanentFailure,
    RelayProblem,
    TemporaryFailure,
    Transport,
    transport_for,
)

log = logging.getLogger(__name__)
MARK_ATTEMPTS = 20  # × 0.5 s, on top of the connection's own 5 s busy timeout
T = TypeVar("T")

# Called in the transaction that marks ``mail`` failed for good because the
# recipient's side refused it (never for the relay's own problems), with the reason.
OnFailed = Callable[[Database, outbox.Claimed, datetime, str], None]


@dataclass
class FlushResult:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    busy: bool = False  # another process holds the flush lock
    problems: list[str] = field(default_factory=list)
    # the relay could not be reached or refused calshare itself: the operator must act
    relay_problem: str | None = None

    @property
    def ok(self) -> bool:
        """Nothing failed and the relay took what it was offered (a recipient's 4xx aside)."""
        return self.failed == 0 and self.relay_problem is None


@dataclass(frozen=True)
class _Outcome:
    mail: outbox.Claimed
    error: str | None = None  # None: delivered
    permanent: bool = False
    relay: bool = False  # the relay's problem (or ours), never the recipient's


def retry_delay(attempts: int, settings: OutboxSettings) -> int:
    """Seconds to wait after the ``attempts``-th failure: doubling, capped."""
    exponent = min(max(attempts - 1, 0), 30)
    return int(min(settings.retry_base_seconds * 2**exponent, settings.retry_max_seconds))


@contextmanager
def flush_lock(db_path: Path) -> Iterator[bool]:
    """An exclusive lock beside the database, released by the kernel if its holder dies."""
    path = db_path.with_name(db_path.name + ".outbox.lock")
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(descriptor)


def helo_name(settings: Settings) -> str:
    """The name calshare greets the relay with: ``[relay] helo_name``, else the inbox's
    host name when the operator set one, else the mail domain.

    Never ``socket.getfqdn()``: on many hosts that is ``localhost``, which relays that
    want a fully-qualified name (Postfix's reject_non_fqdn_helo_hostname) refuse.
    """
    if settings.relay is not None and settings.relay.helo_name:
        return settings.relay.helo_name
    if settings.inbox.hostname != InboxSettings().hostname:
        return settings.inbox.hostname
    return settings.mail.domain


def default_transport(settings: Settings) -> Transport:
    return transport_for(settings.relay, settings.outbox.maildir, helo_name=helo_name(settings))


async def _inline(work: Callable[[], T]) -> T:
    return work()


async def flush(
    store: Store,
    settings: Settings,
    clock: Clock,
    transport: Transport,
    *,
    on_failed: OnFailed,
    force: bool = False,
    offload: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
) -> FlushResult:
    """Send every due mail once (with ``force``, also those waiting to retry).

    ``offload`` runs the database work and the composing of queued notices in a
    worker thread, for the daemon, whose event loop also serves SMTP sessions:
    a locked database must not stall them. ``store`` must then have been opened
    with ``same_thread=False``. ``on_failed`` is told of each mail the recipient's
    side refused for good, in the transaction that records it.
    """
    run: Callable[[Callable[[], Any]], Awaitable[Any]] = asyncio.to_thread if offload else _inline
    result = FlushResult()
    with flush_lock(store.path) as locked:
        if not locked:
            result.busy = True
            return result
        released = await run(lambda: _with_write(store, outbox.release_interrupted))
        if released:
            log.warning(
                "outbox: %d mails were being sent when a sender died; sending again", released
            )
        after_id = 0
        marks = Store.open(store.path, durable=False, same_thread=not offload)
        try:
            while True:
                now = clock.now()
                claim = partial(
                    outbox.claim, limit=settings.outbox.batch, force=force, after_id=after_id
                )
                batch: list[outbox.Claimed] = await run(
                    partial(_with_write, store, partial(_claim, claim, now))
                )
                if not batch:
                    break
                after_id = batch[-1].id
                deliver = _Delivery(
                    marks, transport, settings.outbox, clock, result, run, should_stop, on_failed
                )
                reachable = await deliver.batch(batch)
                ids = [mail.id for mail in batch]
                # durably: these bytes hold tokens
                await run(partial(_with_write, store, partial(_drop, ids)))
                if not reachable or should_stop():
                    break  # the relay is gone, or the daemon is stopping: the rest waits
        finally:
            marks.close()
            await transport.close()
    if result.relay_problem is not None:  # the operator's to fix: said once a flush, loudly
        log.warning("outbox: mail waits for the relay: %s", result.relay_problem)
    return result


def relay_said(exc: Exception) -> str:
    """A relay's refusal as text to log and store, the key of our bounce address hidden.

    Relays quote the envelope sender back ("553 <bounces+KEY@…>: Sender address
    rejected"), and the key lets whoever reads it forge a bounce: every line logged,
    every ``outbox.last_error``, every ``outbox flush`` report goes through here.
    """
    return hide_bounce_key(str(exc))


def _with_write(store: Store, work: Callable[[Database], T]) -> T:
    with store.write() as db:
        return work(db)


def _claim(
    claim: Callable[..., list[outbox.Claimed]], now: datetime, db: Database
) -> list[outbox.Claimed]:
    return claim(db, now)


def _drop(ids: list[int], db: Database) -> None:
    outbox.drop_bodies(db, ids)


def _unclaim(ids: list[int], db: Database) -> None:
    outbox.unclaim(db, ids)


@dataclass
class _Delivery:
    marks: Store
    transport: Transport
    settings: OutboxSettings
    clock: Clock
    result: FlushResult
    run: Callable[[Callable[[], Any]], Awaitable[Any]]
    should_stop: Callable[[], bool]
    on_failed: OnFailed

    async def batch(self, batch: list[outbox.Claimed]) -> bool:
        """Send a claimed batch, recording each outcome as it comes; False if the relay is gone.

        Each outcome is committed at once on ``marks``, a connection with
        ``synchronous=NORMAL`` (survives a killed process, not a power cut): after a
        crash at most the message in flight is sent again, and losing a mark to a power
        cut only means a resend, never a lost mail.
        """
        for position, mail in enumerate(batch):
            if not await self.run(partial(outbox.still_claimed, self.marks.db, mail.id)):
                continue  # cancelled since it was claimed (the share was withdrawn)
            try:
                raw = mail.raw
                if raw is None:  # a notice queued as a spec: compose it now, off the loop
                    raw = await self.run(partial(mail.message, self.clock.now()))
                answer = await self.transport.send(mail.envelope_from, mail.recipients, raw)
                outcome = _Outcome(mail)
                log.info(
                    "outbox: sent %s to %s: %s",
                    mail.message_id,
                    ", ".join(mail.recipients),
                    hide_bounce_key(answer),
                )
            except TemporaryFailure as exc:
                said = relay_said(exc)
                outcome = _Outcome(mail, said, relay=isinstance(exc, RelayProblem))
                if outcome.relay:
                    self.result.relay_problem = said
                if exc.unreachable:
                    await self._record(outcome, batch[position + 1 :])
                    return False
            except PermanentFailure as exc:
                outcome = _Outcome(mail, relay_said(exc), permanent=True)
            except Exception as exc:
                log.exception("outbox: %s could not be composed or sent", mail.message_id)
                outcome = _Outcome(
                    mail, f"calshare could not send it: {type(exc).__name__}", permanent=True
                )
            await self._record(outcome, [])
            if self.should_stop():
                await self._unclaim(batch[position + 1 :])
                return False
        return True

    async def _unclaim(self, untried: list[outbox.Claimed]) -> None:
        ids = [mail.id for mail in untried]
        await self.run(partial(_with_write, self.marks, partial(_unclaim, ids)))

    async def _record(self, outcome: _Outcome, untried: list[outbox.Claimed]) -> None:
        """Commit one outcome; if the database is busy, wait and try again: the mail is
        already with the relay, and giving up here would send it a second time."""
        now = self.clock.now()
        work = partial(
            _record,
            outcomes=[outcome],
            untried=untried,
            settings=self.settings,
            now=now,
            result=self.result,
            on_failed=self.on_failed,
        )
        for attempt in range(MARK_ATTEMPTS):
            try:
                await self.run(partial(_with_write, self.marks, work))
                return
            except StoreBusy:
                if attempt == MARK_ATTEMPTS - 1:
                    raise
                busy = "outbox: the database is busy; recording %s again"
                log.warning(busy, outcome.mail.message_id)
                await asyncio.sleep(0.5)


def _record(
    db: Database,
    outcomes: list[_Outcome],
    untried: list[outbox.Claimed],
    settings: OutboxSettings,
    now: datetime,
    result: FlushResult,
    on_failed: OnFailed,
) -> None:
    for outcome in outcomes:
        mail = outcome.mail
        if outcome.error is None:
            outbox.mark_sent(db, mail.id, now)
            result.sent += 1
            continue
        gave_up = now - mail.created_at >= timedelta(hours=settings.give_up_hours)
        if outcome.permanent or gave_up:
            reason = (
                outcome.error
                if outcome.permanent
                else (f"gave up after {settings.give_up_hours} hours; last: {outcome.error}")
            )
            outbox.mark_failed(db, mail.id, reason)
            # Only the recipient's refusal says the address takes no mail; a relay that
            # was down or refused us says nothing about it.
            if not outcome.relay:
                on_failed(db, mail, now, reason)
            log.warning(
                "outbox: %s to %s failed: %s", mail.message_id, ", ".join(mail.recipients), reason
            )
            result.failed += 1
            result.problems.append(f"{', '.join(mail.recipients)}: {reason}")
            continue
        delay = retry_delay(mail.attempts + 1, settings)
        outbox.mark_deferred(db, mail.id, outcome.error, now + timedelta(seconds=delay))
        log.info("outbox: %s deferred %d s: %s", mail.message_id, delay, outcome.error)
        result.deferred += 1
        result.problems.append(
            f"{', '.join(mail.recipients)}: {outcome.error} (retry in {delay} s)"
        )
    outbox.unclaim(db, [mail.id for mail in untried])
