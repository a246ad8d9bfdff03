"""Build small calendars for tests, in the shape real producers write them."""

from __future__ import annotations

OSLO_VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Europe/Oslo
BEGIN:STANDARD
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
END:DAYLIGHT
END:VTIMEZONE"""


def calendar(*events: str, header: str = "", timezones: str = OSLO_VTIMEZONE) -> bytes:
    """A VCALENDAR around the given VEVENT bodies (lines without BEGIN/END:VEVENT)."""
    parts = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//calshare//tests//EN"]
    if header:
        parts.append(header.strip())
    if timezones:
        parts.append(timezones.strip())
    for body in events:
        parts += ["BEGIN:VEVENT", "DTSTAMP:20260101T000000Z", body.strip(), "END:VEVENT"]
    parts.append("END:VCALENDAR")
    text = "\n".join(parts)
    return ("\r\n".join(line.strip() for line in text.splitlines()) + "\r\n").encode()
