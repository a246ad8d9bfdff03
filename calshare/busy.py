"""Busy status: the one vocabulary for how an event blocks time.

Outlook users know five states; iCalendar spreads them over TRANSP, STATUS and
Microsoft's X-MICROSOFT-CDO-BUSYSTATUS, so they are mapped once here.
"""

from __future__ import annotations

from enum import StrEnum


class Busy(StrEnum):
    BUSY = "busy"
    TENTATIVE = "tentative"
    OOF = "oof"
    ELSEWHERE = "elsewhere"
    FREE = "free"


_MICROSOFT = {
    "FREE": Busy.FREE,
    "TENTATIVE": Busy.TENTATIVE,
    "BUSY": Busy.BUSY,
    "OOF": Busy.OOF,
    "WORKINGELSEWHERE": Busy.ELSEWHERE,
}
# and back, for what we write (Outlook and Exchange-fed apps read it)
MICROSOFT_NAMES = {busy: name for name, busy in _MICROSOFT.items()}


def busy_status(
    *,
    status: str | None,
    transp: str | None,
    microsoft_busy: str | None = None,
    microsoft_intended: str | None = None,
) -> Busy:
    """Map an event's properties to a busy status.

    A cancelled event blocks no time whatever else it says. Outlook's own status
    is the most specific, so it wins over TRANSP; an event is busy unless
    something says otherwise (RFC 5545 makes OPAQUE the default).
    """
    if (status or "").upper() == "CANCELLED":
        return Busy.FREE
    for value in (microsoft_busy, microsoft_intended):
        mapped = _MICROSOFT.get((value or "").strip().upper())
        if mapped is not None:
            return mapped
    if (transp or "").upper() == "TRANSPARENT":
        return Busy.FREE
    if (status or "").upper() == "TENTATIVE":
        return Busy.TENTATIVE
    return Busy.BUSY
