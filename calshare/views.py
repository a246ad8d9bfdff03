"""What a viewer sees of a calendar over a window: the index query, then the one filter.

Every output that lists occurrences (``calshare events``, snapshots, feeds,
published pages) asks here, so they cannot disagree about what a level shows.
"""

from __future__ import annotations

from datetime import datetime

from calshare.calendars import Calendar
from calshare.expansion import Caps
from calshare.index import occurrences_between
from calshare.levels import Level, filter_occurrence, stand_in_key
from calshare.occurrence import Occurrence
from calshare.store import Store


def visible_occurrences(
    store: Store,
    calendar: Calendar,
    start: datetime,
    end: datetime,
    level: Level | None,
    *,
    include_private: bool,
    now: datetime,
    limit_years: int,
    caps: Caps | None = None,
    warnings: list[str] | None = None,
) -> list[Occurrence]:
    """The window's occurrences as a viewer at ``level`` sees them (None: the owner).

    ``caps`` bound the expansion (see index.occurrences_between); what they cut
    is added to ``warnings``.
    """
    found = occurrences_between(
        store,
        calendar,
        start,
        end,
        now=now,
        limit_years=limit_years,
        caps=caps,
        warnings=warnings,
    )
    if level is None:  # the owner sees everything
        return found
    zone, key = calendar.zoneinfo, stand_in_key(store.uid_key, calendar.id)
    return [
        filter_occurrence(
            occurrence, level, include_private=include_private, zone=zone, uid_key=key
        )
        for occurrence in found
    ]
