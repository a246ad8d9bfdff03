"""Signing in to the owner console by email: a link that works once, for 15 minutes.

Nothing to remember: the owner types an address and gets a link. Only the link's
hash is stored (``tokens.token_hash``), as with invitations, so a copy of the
database signs nobody in. Every ask is recorded in ``signin_requests`` whatever
becomes of it, and counted for the rate limits per address and per client
(``[owners] links_per_address`` and ``links_per_client`` per hour): over either,
no mail is sent. Whether a mail goes out (the address may sign in, nothing is over
a limit) is never told to the asker: the page says the same in every case, so the
form cannot be used to learn who has calendars here. For the same reason the
mail is composed before anything is decided: a known and an unknown address cost
the request about the same time.

One link does not end the others of the same address when it is sent (mails can
arrive out of order, and the owner clicks whichever comes first); using one ends
them all, since the owner is signed in and a forgotten link in a mailbox should not
stay good for its remaining minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlite_utils import Database

from calshare import owners
from calshare.addresses import Mailbox, normalize_address, parse_mailbox
from calshare.clock import Clock, parse_utc, utc_text
from calshare.config import Settings
from calshare.errors import AddressError
from calshare.links import signin_url
from calshare.store import Store
from calshare.tokens import RandomBytes, new_token, parse_token, token_hash
from mailer import compose, outbox

LINK_LIFETIME = timedelta(minutes=15)
RATE_WINDOW = timedelta(hours=1)
# Asks are kept this long, then pruned on the way of a later ask: the limits look
# back an hour; a day leaves the operator something to look at after an attack.
REQUESTS_KEPT = timedelta(days=1)
# Old rows looked at per ask when pruning (see _prune).
PRUNE_BATCH = 100
# A typed address is at most 254 characters; whatever is longer is not one.
MAX_TYPED = 320


class Outcome(StrEnum):
    """What became of an ask: for the logs and the benchmark, never for the page."""

    SENT = "sent"
    NOT_ALLOWED = "not_allowed"  # neither an owner nor named by [owners] allow
    LIMITED = "limited"  # over the per-address or per-client limit this hour


@dataclass(frozen=True)
class Asked:
    """An ask, recorded. Pages show only ``address``, the same for every outcome."""

    address: str  # normalised
    outcome: Outcome


def client_key(key: bytes, remote: str | None) -> str:
    """What ``signin_requests.client`` holds for a client: a keyed hash of its IP address.

    The rate limit only needs to tell clients apart; a day of visitors' IP
    addresses in the database is personal data it need not keep, and a plain hash
    of an IPv4 address is undone by trying all four billion.
    """
    message = f"signin client:{remote or '-'}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def request_link(
    store: Store,
    settings: Settings,
    clock: Clock,
    email_text: str,
    client: str,
    *,
    lang: str | None = None,
    next_path: str | None = None,
    random_bytes: RandomBytes | None = None,
) -> Asked:
    """Record an ask for a sign-in link and, if the address may sign in and no limit is
    reached, store the link's hash and queue its mail in the same transaction.

    ``client`` names the asker for the per-client limit (``client_key``); ``lang`` is
    the mail's language (the page's); ``next_path`` rides in the link, for the page
    to go to after signing in. Raises ``AddressError`` for what is not an address
    (nothing is stored then).
    """
    if len(email_text) > MAX_TYPED:
        raise AddressError(f"{email_text[:40]!r}… is too long to be an email address")
    address = normalize_address(email_text)
    now = clock.now()
    token = new_token(random_bytes) if random_bytes else new_token()
    mail = compose.signin(
        _sender(settings, address),
        Mailbox(address),
        url=signin_url(settings.http.base_url, token, next_path),
        minutes=int(LINK_LIFETIME.total_seconds() // 60),
        lang=lang or settings.mail.lang,
        now=now,
    )
    now_ts = int(now.timestamp())
    since = now_ts - int(RATE_WINDOW.total_seconds())
    with store.write() as db:
        _prune(db, now)
        by_address = _count(db, "email", address, since)
        by_client = _count(db, "client", client, since)
        db.execute(
            "INSERT INTO signin_requests (email, client, at_ts) VALUES (?, ?, ?)",
            [address, client, now_ts],
        )
        if (
            by_address >= settings.owners.links_per_address
            or by_client >= settings.owners.links_per_client
        ):
            return Asked(address, Outcome.LIMITED)
        if not (address.isascii() and owners.may_sign_in(db, settings, address)):
            return Asked(address, Outcome.NOT_ALLOWED)
        db.execute(
            """INSERT INTO signin_links (email, token_hash, created_at, expires_at)
               VALUES (?, ?, ?, ?)""",
            [address, token_hash(token), utc_text(now), utc_text(now + LINK_LIFETIME)],
        )
        outbox.enqueue(db, mail, kind=outbox.OutboxKind.SIGNIN, share_id=None, now=now)
    return Asked(address, Outcome.SENT)


def _sender(settings: Settings, address: str) -> compose.Sender:
    # The service writes in its own name: the "owner" of the mail is its recipient.
    return compose.Sender(
        domain=settings.mail.domain,
        from_mailbox=parse_mailbox(settings.mail.from_address),
        owner=Mailbox(address),
    )


def _count(db: Database, column: str, value: str, since: int) -> int:
    row = db.execute(
        f"SELECT COUNT(*) FROM signin_requests WHERE {column} = ? AND at_ts > ?",
        [value, since],
    ).fetchone()
    return int(row[0])


def _prune(db: Database, now: datetime) -> None:
    """Forget asks older than a day, and links that ended more than a day ago.

    Only the oldest rows (by id, which is the order they came in) are looked at, a
    bounded number per ask: each ask adds one row and may remove many, so the table
    stays a day long without a full scan on every ask, however many a flood left.
    """
    db.execute(
        f"""DELETE FROM signin_requests WHERE at_ts < ? AND id IN
               (SELECT id FROM signin_requests ORDER BY id LIMIT {PRUNE_BATCH})""",
        [int((now - REQUESTS_KEPT).timestamp())],
    )
    db.execute(
        f"""DELETE FROM signin_links WHERE expires_at < ? AND id IN
               (SELECT id FROM signin_links ORDER BY id LIMIT {PRUNE_BATCH})""",
        [utc_text(now - REQUESTS_KEPT)],
    )


def link_state(db: Database, token: str, now: datetime) -> str | None:
    """The address a link would sign in, without using it (the landing page's GET).

    None for a link that is unknown, used or expired; a GET never changes anything.
    """
    found = _live(db, token, now)
    return found[1] if found else None


def _live(db: Database, token: str, now: datetime) -> tuple[int, str] | None:
    canonical = parse_token(token)
    if canonical is None:
        return None
    row = db.execute(
        "SELECT id, email, expires_at, used_at FROM signin_links WHERE token_hash = ?",
        [token_hash(canonical)],
    ).fetchone()
    if row is None or row[3] is not None or now >= parse_utc(row[2]):
        return None
    return int(row[0]), str(row[1])


def use_link(db: Database, token: str, now: datetime) -> str | None:
    """The address the link signs in, if it is unused and not expired; it is used up
    here (a replay gets None), and so are the other unused links of that address.

    Found by its hash only. Call inside a write transaction.
    """
    found = _live(db, token, now)
    if found is None:
        return None
    link_id, email = found
    used = db.execute(
        "UPDATE signin_links SET used_at = ? WHERE id = ? AND used_at IS NULL",
        [utc_text(now), link_id],
    )
    if used.rowcount != 1:
        return None
    db.execute(
        "UPDATE signin_links SET used_at = ? WHERE email = ? AND used_at IS NULL",
        [utc_text(now), email],
    )
    return email


def form_key(key: bytes, purpose: str, *parts: str) -> str:
    """The anti-forgery field of a sign-in form, bound to the browser's pre-session
    cookie (and, on the landing page, to the link): another site can neither read the
    cookie nor compute the field, so it cannot submit the form in a visitor's name."""
    message = "\0".join(("signin form", purpose, *parts)).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def form_ok(key: bytes, given: str, purpose: str, *parts: str) -> bool:
    expected = form_key(key, purpose, *parts).encode()
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected)


def new_presession() -> str:
    """A pre-session cookie's value: random, worth nothing but binding a form."""
    return secrets.token_hex(16)
