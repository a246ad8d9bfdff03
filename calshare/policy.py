"""The operator's sharing policy: may this calendar be shared with this person at this level?

Pure: it takes the settings and the request and returns the checked invitee or
raises ShareRefused whose message begins "This calendar can't be shared:" and
then names the one reason, so the owner knows what to change.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from calshare.addresses import Mailbox, parse_mailbox
from calshare.config import PolicySettings
from calshare.errors import AddressError, Field, ShareRefused
from calshare.levels import Level


def is_internal(address: str, policy: PolicySettings) -> bool:
    """Exact domain match: a subdomain may be run by someone else."""
    return address.rpartition("@")[2] in policy.internal_domains


def highest_level(address: str, policy: PolicySettings) -> Level | None:
    """The highest level policy allows for this address (None: not at all)."""
    return Level.DETAILS if is_internal(address, policy) else policy.external_max_level


def is_group(address: str, policy: PolicySettings) -> bool:
    return any(fnmatchcase(address, pattern) for pattern in policy.groups)


def check_recipient(
    policy: PolicySettings, owner: str, recipient: str, *, owner_allowed: bool = False
) -> tuple[Mailbox, Level]:
    """Whether anything of this calendar may reach ``recipient``, and at most at which level.

    Sharing and snapshots go through the same checks, so a snapshot can never
    send what a share could not.
    """
    if not policy.sharing:
        raise ShareRefused("sharing is turned off on this server (setting policy.sharing)")
    try:
        mailbox = parse_mailbox(recipient)
    except AddressError as exc:
        raise ShareRefused(str(exc)) from None
    address = mailbox.address
    if address == owner:
        if owner_allowed:
            return mailbox, Level.DETAILS
        raise ShareRefused(f"{address} owns it")
    if is_group(address, policy):
        raise ShareRefused(
            f"{address} is a group address, and groups cannot be invited (setting policy.groups)"
        )
    allowed = highest_level(address, policy)
    if allowed is None:
        raise ShareRefused(
            f"{address} is outside {_internal(policy)} and policy allows no external sharing"
        )
    return mailbox, allowed


def _internal(policy: PolicySettings) -> str:
    return ", ".join(policy.internal_domains) or "any internal domain"


def check_share(policy: PolicySettings, owner: str, invitee: str, level: Level) -> Mailbox:
    mailbox, allowed = check_recipient(policy, owner, invitee)
    if level.rank > allowed.rank:
        raise ShareRefused(
            f"{mailbox.address} is outside {_internal(policy)}, where the highest level allowed "
            f"is {allowed}; share at {allowed}",
            field=Field.LEVEL,
            suggestion=str(allowed),
        )
    return mailbox
