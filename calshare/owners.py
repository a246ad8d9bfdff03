"""Who may use the owner console: owners of calendars, and whom ``[owners] allow`` names.

One place for the rule, so the sign-in page (who gets a link) and the Add calendar
page (who may add one) can never disagree. Addresses are compared normalised
(``addresses.normalize_address``); patterns glob only the local part, as
``[policy] groups`` do.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from sqlite_utils import Database

from calshare.config import Settings


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
