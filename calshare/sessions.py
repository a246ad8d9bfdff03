"""Owner-console sessions: the server keeps them, the browser holds only a random secret.

A session is a row keyed by the hash of the cookie's secret (as invitations keep only
a token's hash), so ending it on the server ends it everywhere at once: sign-out,
the idle timeout and the absolute timeout all work without trusting the browser.
Signing in always starts a new session (the browser's old one, if any, is ended):
a session secret planted before sign-in is worth nothing after it.

The console's anti-forgery field is derived from the session (keyed by the
installation), so a form from one session cannot be replayed in another.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlite_utils import Database

from calshare.clock import parse_utc, utc_text
from calshare.config import OwnersSettings
from calshare.tokens import RandomBytes, new_token, parse_token, token_hash

COOKIE = "calshare_session"
# A request touches its session (last_seen_at) at most this often: reads stay reads.
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Session:
    id: int
    email: str  # the owner's normalised address
    secret_hash: str
    created_at: datetime
    last_seen_at: datetime


def start(
    db: Database,
    email: str,
    now: datetime,
    *,
    replacing: str | None = None,
    random_bytes: RandomBytes | None = None,
) -> str:
    """A new session for ``email``; the secret for the cookie. ``replacing``: the cookie
    the browser sent with the sign-in, ended here (rotation at sign-in)."""
    if replacing is not None:
        end(db, replacing, now)
    secret = new_token(random_bytes) if random_bytes else new_token()
    at = utc_text(now)
    db.execute(
        "INSERT INTO sessions (secret_hash, email, created_at, last_seen_at) VALUES (?, ?, ?, ?)",
        [token_hash(secret), email, at, at],
    )
    return secret


def find(db: Database, cookie: str | None, now: datetime, owners: OwnersSettings) -> Session | None:
    """The live session the cookie names, or None (unknown, ended, idle or too old)."""
    secret = parse_token(cookie or "")
    if secret is None:
        return None
    row = db.execute(
        "SELECT id, email, secret_hash, created_at, last_seen_at FROM sessions"
        " WHERE secret_hash = ? AND ended_at IS NULL",
        [token_hash(secret)],
    ).fetchone()
    if row is None:
        return None
    session = Session(row[0], row[1], row[2], parse_utc(row[3]), parse_utc(row[4]))
    if now - session.last_seen_at > timedelta(minutes=owners.idle_minutes):
        return None
    if now - session.created_at > timedelta(hours=owners.max_hours):
        return None
    return session


def needs_touch(session: Session, now: datetime) -> bool:
    return now - session.last_seen_at >= TOUCH_EVERY


def touch(db: Database, session: Session, now: datetime) -> None:
    """Record activity, so the idle timeout counts from the last request."""
    db.execute(
        "UPDATE sessions SET last_seen_at = ? WHERE id = ? AND ended_at IS NULL",
        [utc_text(now), session.id],
    )


def end(db: Database, cookie: str | None, now: datetime) -> bool:
    """End the session the cookie names (sign-out); whether there was one to end."""
    secret = parse_token(cookie or "")
    if secret is None:
        return False
    cursor = db.execute(
        "UPDATE sessions SET ended_at = ? WHERE secret_hash = ? AND ended_at IS NULL",
        [utc_text(now), token_hash(secret)],
    )
    return cursor.rowcount > 0


def csrf_token(key: bytes, session: Session) -> str:
    """The console forms' anti-forgery field: keyed by the installation, bound to a session."""
    message = f"console:{session.secret_hash}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def csrf_ok(key: bytes, session: Session, given: str) -> bool:
    expected = csrf_token(key, session).encode()
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected)
