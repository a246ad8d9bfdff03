"""Who may use the owner console: owners of calendars, and whom ``[owners] allow`` names.

One place for the rule, so the sign-in page (who gets a link) and the Add calendar
page (who may add one) can never disagree. Addresses are compared normalised
(``addresses.normalize_address``); patterns glob only the local part, as
``[policy] groups`` do.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from sqlite_utils import Database

from calshare.clock import utc_text
from calshare.config import Settings
from calshare.errors import MailCapReached

# The audit actions whose line stands for one mail queued to someone on the owner's
# behalf (an invitation, a level's notice, a copy of the calendar): one line per mail.
MAIL_ACTIONS = ("invited", "level_changed", "snapshot")


def owns_calendars(db: Database, email: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM calendars c JOIN owners o ON o.id = c.owner_id WHERE o.email = ? LIMIT 1",
        [email],
    ).fetchone()
    return row is not None


def allowed(settings: Settings, email: str) -> bool:
    """Whether ``[owners] allow`` lets this address add calendars of its own."""
    return any(fnmatchcase(email, pattern) for pattern in settings.owners.allow)


def may_add_calendars(db: Database, settings: Settings, email: str) -> bool:
    """An owner may add more; anyone else only when ``[owners] allow`` names them."""
    return allowed(settings, email) or owns_calendars(db, email)


def may_sign_in(db: Database, settings: Settings, email: str) -> bool:
    return may_add_calendars(db, settings, email)


def mails_last_hour(db: Database, email: str, now: datetime) -> int:
    """Mails the owner's actions queued in the hour before ``now``.

    Counted from the audit lines those actions write in the same transaction as the
    mail (one each), through the ``audit(calendar_id, at)`` index, per calendar of
    the owner's: no table or migration of its own, and cheap for a page to ask.
    """
    since = utc_text(now - timedelta(hours=1))
    placeholders = ", ".join("?" for _ in MAIL_ACTIONS)
    row = db.execute(
        "SELECT COUNT(*) FROM audit WHERE calendar_id IN ("
        "SELECT c.id FROM calendars c JOIN owners o ON o.id = c.owner_id WHERE o.email = ?"
        f") AND at > ? AND action IN ({placeholders})",
        [email, since, *MAIL_ACTIONS],
    ).fetchone()
    return int(row[0])


def check_mail_cap(
    db: Database, settings: Settings, email: str, now: datetime, wanted: int
) -> None:
    """MailCapReached unless ``wanted`` more mails fit in ``[owners] mails_per_hour``.

    A signed-in owner's address is theirs to use, not a relay for bulk mail: the
    console's Share and E-mail calendar pages ask before they queue anything, so a
    refused request queues nothing at all.
    """
    limit = settings.owners.mails_per_hour
    if mails_last_hour(db, email, now) + wanted > limit:
        raise MailCapReached(
            f"Nothing was sent: the limit of {limit} mails an hour is reached", limit=limit
        )
