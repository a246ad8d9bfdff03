"""Our own exceptions.

Every edge (CLI, SMTP handler, HTTP app) translates these in exactly one place,
so each carries a message a user can act on. Each also inherits the builtin it
is closest to, so callers that only know Python's vocabulary still catch it.
"""

from __future__ import annotations


class CalshareError(Exception):
    """Base class: the message is shown to the user as is, on one line."""


class ConfigError(CalshareError, ValueError):
    """The configuration file or a CALSHARE_* variable is wrong."""


class AddressError(CalshareError, ValueError):
    """An email address cannot be used."""


class LevelError(CalshareError, ValueError):
    """A permission level name is not one we know."""


class UsageError(CalshareError, ValueError):
    """A command-line argument is well formed for argparse but makes no sense."""


class StoreError(CalshareError, RuntimeError):
    """The database file cannot be opened or is not ours."""


class StoreBusy(StoreError):
    """Another process holds the write lock past the busy timeout: try again later."""


class ShareRefused(CalshareError, PermissionError):
    """Policy or the address forbids this share. The message starts with the reason's frame."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"This calendar can't be shared: {reason}")
        self.reason = reason


class UnknownShare(CalshareError, LookupError):
    """The calendar is not shared with that address."""


class ShareStateError(CalshareError, ValueError):
    """A share cannot make that move from the state it is in (``calshare.lifecycle``)."""


class DeliveryError(CalshareError, RuntimeError):
    """A mail could not be handed to the relay or written to the Maildir."""


class UnknownCalendar(CalshareError, LookupError):
    """No calendar has that name."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"No calendar named {name!r}; add it first with: "
            f"calshare calendar add {name} --owner EMAIL"
        )
        self.name = name


class DuplicateCalendar(CalshareError, ValueError):
    """A calendar with that name exists already."""

    def __init__(self, name: str) -> None:
        super().__init__(f"A calendar named {name!r} exists already")
        self.name = name


class ImportFailed(CalshareError, ValueError):
    """A calendar source cannot be read or is not a usable iCalendar file.

    Raised before anything is written, so the store is unchanged.
    """


class ExpansionLimit(ImportFailed):
    """Expanding recurrences passed a configured cap ([calendars] max_occurrences_per_import,
    max_import_seconds): the message names the event where it happened."""


class FetchError(ImportFailed):
    """A calendar URL could not be fetched (timeout, HTTP error, too large).

    ``cause`` names the kind of failure for those who act on it (a live source's
    schedule and its owner's mail): auth, not_found, redirect_loop, timeout, html,
    truncated, too_large, rate_limited, http, network. ``status`` is the HTTP status
    when there was one; ``retry_after`` the seconds a server asked us to wait.
    """

    def __init__(
        self,
        message: str,
        *,
        cause: str = "network",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.cause = cause
        self.status = status
        self.retry_after = retry_after


class PublishRefused(CalshareError, PermissionError):
    """Policy forbids publishing this calendar (at this level)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"This calendar can't be published: {reason}")
        self.reason = reason


class WebDavError(CalshareError, RuntimeError):
    """A WebDAV server refused or could not be reached; the message says which and why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, None when the server was not reached


class WebDavConflict(WebDavError):
    """The file on WebDAV is not calshare's to replace or delete (status 412).

    ``foreign``: calshare never wrote it (it was there first); else someone changed
    it since calshare last wrote it.
    """

    def __init__(self, message: str, *, foreign: bool) -> None:
        super().__init__(message, 412)
        self.foreign = foreign
