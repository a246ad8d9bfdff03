"""Our own exceptions.

Every edge (CLI, SMTP handler, HTTP app) translates these in exactly one place,
so each carries a message a user can act on. Each also inherits the builtin it
is closest to, so callers that only know Python's vocabulary still catch it.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Field(StrEnum):
    """What in a request an error is about: each edge points at it its own way.

    The domain never spells a command-line flag or a form field: the CLI turns
    ``RANGE`` into ``--range`` (``cli.worded``), a web page puts the message next to
    its range box. One service layer, each edge wording it for its own user.
    """

    RANGE = "range"
    RECIPIENTS = "recipients"
    LAYOUT = "layout"
    LEVEL = "level"
    WEBDAV = "webdav"
    INTERVAL = "interval"
    CALDAV = "caldav"
    WORKING_HOURS = "working_hours"
    OWNER = "owner"


class Remedy(StrEnum):
    """The owner action that fixes (or retries) what went wrong, for an edge to offer.

    The message says it in plain words ("write the copy again"); the CLI adds the
    command to run, a web page its button.
    """

    ADD_CALENDAR = "add_calendar"
    ADD_SOURCE = "add_source"
    IMPORT = "import"
    PUSH = "push"
    PUSH_FORCE = "push_force"
    UNPUBLISH = "unpublish"
    UNPUBLISH_AGAIN = "unpublish_again"
    UNPUBLISH_FORCE = "unpublish_force"
    NAME_OWNER = "name_owner"


class CalshareError(Exception):
    """Base class: the message is shown to the user as is, on one line.

    It is plain words, with no command-line flag or command in it: ``field`` says
    which part of the request it is about (``suggestion``: a value for it that would
    do), ``remedies`` what the owner can do next and ``calendar`` the calendar's name,
    so each edge adds its own way of saying them.
    """

    field: Field | None = None
    suggestion: str | None = None
    remedies: tuple[Remedy, ...] = ()
    calendar: str | None = None

    def __init__(
        self,
        *args: object,
        field: Field | None = None,
        suggestion: str | None = None,
        remedies: Iterable[Remedy] = (),
        calendar: str | None = None,
    ) -> None:
        super().__init__(*args)
        if field is not None:
            self.field = field
        if suggestion is not None:
            self.suggestion = suggestion
        if remedies:
            self.remedies = tuple(remedies)
        if calendar is not None:
            self.calendar = calendar


class ConfigError(CalshareError, ValueError):
    """The configuration file or a CALSHARE_* variable is wrong."""


class AddressError(CalshareError, ValueError):
    """An email address cannot be used."""


class LevelError(CalshareError, ValueError):
    """A permission level name is not one we know."""


class UsageError(CalshareError, ValueError):
    """A request (a command's argument, a form's field) is well formed but makes no sense."""


class StoreError(CalshareError, RuntimeError):
    """The database file cannot be opened or is not ours."""


class StoreBusy(StoreError):
    """Another process holds the write lock past the busy timeout: try again later."""


class StillRunning(CalshareError, RuntimeError):
    """The owner's previous slow request (a fetch, a WebDAV write) has not finished yet."""


class MailCapReached(CalshareError, PermissionError):
    """The owner's actions queued ``[owners] mails_per_hour`` mails in the last hour."""

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class ShareRefused(CalshareError, PermissionError):
    """Policy or the address forbids this share. The message starts with the reason's frame."""

    def __init__(
        self, reason: str, *, field: Field | None = None, suggestion: str | None = None
    ) -> None:
        super().__init__(
            f"This calendar can't be shared: {reason}", field=field, suggestion=suggestion
        )
        self.reason = reason


class UnknownShare(CalshareError, LookupError):
    """The calendar is not shared with that address."""


class ShareStateError(CalshareError, ValueError):
    """A share cannot make that move from the state it is in (``calshare.lifecycle``)."""


class DeliveryError(CalshareError, RuntimeError):
    """A mail could not be handed to the relay or written to the Maildir."""


class UnknownCalendar(CalshareError, LookupError):
    """No calendar has that name (among ``owner``'s, when one is named)."""

    def __init__(self, name: str, owner: str | None = None) -> None:
        whose = f" for {owner}" if owner else ""
        super().__init__(
            f"No calendar named {name!r}{whose}; add it first",
            remedies=[Remedy.ADD_CALENDAR],
            calendar=name,
        )
        self.name = name
        self.owner = owner


class AmbiguousCalendar(CalshareError, LookupError):
    """Several owners have a calendar of that name and none was named (owners are tenants).

    ``owners`` are their addresses, sorted, so the operator can say whose.
    """

    def __init__(self, name: str, owners: tuple[str, ...]) -> None:
        super().__init__(
            f"{len(owners)} owners have a calendar named {name!r} ({', '.join(owners)}): say whose",
            remedies=[Remedy.NAME_OWNER],
            calendar=name,
        )
        self.name = name
        self.owners = owners


class DuplicateCalendar(CalshareError, ValueError):
    """The owner has a calendar with that name already (names are unique per owner)."""

    def __init__(self, name: str, owner: str) -> None:
        super().__init__(f"A calendar named {name!r} exists already for {owner}", calendar=name)
        self.name = name
        self.owner = owner


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
    truncated, too_large, rate_limited, http, network, private_address. ``status`` is
    the HTTP status when there was one; ``retry_after`` the seconds a server asked us to wait.
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


class PrivateAddress(FetchError):
    """An owner's source led to an address inside the server's own network (SSRF).

    Raised when the connection is made (after DNS, for every redirect), not only when
    a URL is typed: a public name can resolve to 127.0.0.1 later, a public server can
    redirect to 169.254.169.254. ``address`` is the refused peer, so the operator and
    the owner can see which one it was.
    """

    def __init__(self, label: str, address: str) -> None:
        super().__init__(
            f"Could not fetch {label}: calshare does not read addresses inside its own "
            f"network ({address}); ask the operator",
            cause="private_address",
        )
        self.address = address


class PublishRefused(CalshareError, PermissionError):
    """Policy forbids publishing this calendar (at this level)."""

    def __init__(
        self, reason: str, *, remedies: Iterable[Remedy] = (), calendar: str | None = None
    ) -> None:
        super().__init__(
            f"This calendar can't be published: {reason}", remedies=remedies, calendar=calendar
        )
        self.reason = reason


class WebDavError(CalshareError, RuntimeError):
    """A WebDAV server refused or could not be reached; the message says which and why."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        *,
        remedies: Iterable[Remedy] = (),
        calendar: str | None = None,
    ) -> None:
        super().__init__(message, remedies=remedies, calendar=calendar)
        self.status = status  # the HTTP status, None when the server was not reached


class WebDavConflict(WebDavError):
    """The file on WebDAV is not calshare's to replace or delete (status 412).

    ``foreign``: calshare never wrote it (it was there first); else someone changed
    it since calshare last wrote it.
    """

    def __init__(self, message: str, *, foreign: bool) -> None:
        super().__init__(message, 412)
        self.foreign = foreign
