"""Read iCalendar files with libical (Evolution's library) through GObject introspection.

Run by /usr/bin/python3, where Debian's gir1.2-ical-3.0 and python3-gi are importable
(they are not in the venv). Input: a JSON list of paths on stdin. Output: a JSON object
path -> [[uid, start, end, summary], ...] (UTC instants as 20270328T013000Z, dates as
2027-03-28), or path -> {"error": message}. Kept free of the venv's packages.
"""

import json
import sys

import gi

gi.require_version("ICalGLib", "3.0")
from gi.repository import ICalGLib as ICal  # noqa: E402

UTC = ICal.Timezone.get_utc_timezone()


def _value(time):
    if time.is_date():
        return f"{time.get_year():04d}-{time.get_month():02d}-{time.get_day():02d}"
    if time.get_timezone() is None and not time.is_utc():
        raise ValueError("floating time or unknown TZID: " + time.as_ical_string())
    utc = time.convert_to_zone(UTC)
    day = f"{utc.get_year():04d}-{utc.get_month():02d}-{utc.get_day():02d}"
    return f"{day}T{utc.get_hour():02d}:{utc.get_minute():02d}:{utc.get_second():02d}Z"


def instants(text):
    calendar = ICal.Component.new_from_string(text)
    if calendar is None:
        raise ValueError("libical could not parse the file")
    found = []
    event = calendar.get_first_component(ICal.ComponentKind.VEVENT_COMPONENT)
    while event is not None:
        start = event.get_dtstart()
        has_end = event.get_first_property(ICal.PropertyKind.DTEND_PROPERTY) is not None
        end = event.get_dtend() if has_end else start
        found.append([event.get_uid(), _value(start), _value(end), event.get_summary()])
        event = calendar.get_next_component(ICal.ComponentKind.VEVENT_COMPONENT)
    return found


def main():
    result = {}
    for path in json.load(sys.stdin):
        try:
            with open(path, encoding="utf-8") as handle:
                result[path] = instants(handle.read())
        except Exception as exc:  # noqa: BLE001 - reported per file, as the test's failure
            result[path] = {"error": f"{type(exc).__name__}: {exc}"}
    json.dump(result, sys.stdout)


main()
