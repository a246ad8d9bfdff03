// Expand iCalendar files as Thunderbird and web clients do (Mozilla's ical.js): every
// series with its RRULE, RDATE, EXDATE and its overrides (RECURRENCE-ID), as
// ICAL.Event's iterator and getOccurrenceDetails give them.
// Input (stdin): {"paths": [...], "from": unix seconds, "until": unix seconds}.
// Output: path -> [[uid, start, end, summary, location, description], ...] for every
// occurrence starting before "until" and ending after "from" (UTC instants as
// 2027-03-28T01:30:00Z, dates as 2027-03-28), or path -> {"error": message}.
import { readFileSync } from "node:fs";
import ICAL from "ical.js";

function value(time) {
  if (time.isDate) {
    return time.toString(); // YYYY-MM-DD
  }
  return new Date(time.toUnixTime() * 1000).toISOString().replace(".000Z", "Z");
}

function text(event, name) {
  const found = event.component.getFirstPropertyValue(name);
  return found === null || found === undefined ? null : String(found);
}

function row(uid, start, end, item) {
  return [uid, value(start), value(end), text(item, "summary"), text(item, "location"),
    text(item, "description")];
}

function occurrences(source, from, until) {
  const calendar = new ICAL.Component(ICAL.parse(source));
  ICAL.TimezoneService.reset();
  for (const zone of calendar.getAllSubcomponents("vtimezone")) {
    ICAL.TimezoneService.register(zone);
  }
  const masters = new Map();
  const overrides = [];
  const found = [];
  for (const component of calendar.getAllSubcomponents("vevent")) {
    const start = component.getFirstPropertyValue("dtstart");
    if (start && !start.isDate && start.zone === ICAL.Timezone.localTimezone) {
      throw new Error(`floating or unknown TZID ${component.getFirstProperty("dtstart").getParameter("tzid")}`);
    }
    if (component.hasProperty("recurrence-id")) {
      overrides.push(component);
    } else {
      masters.set(component.getFirstPropertyValue("uid"), new ICAL.Event(component));
    }
  }
  for (const component of overrides) {
    const master = masters.get(component.getFirstPropertyValue("uid"));
    if (master === undefined) {
      throw new Error(`an override without its master: ${component.getFirstPropertyValue("uid")}`);
    }
    master.relateException(new ICAL.Event(component));
  }
  for (const [uid, event] of masters) {
    if (!event.isRecurring()) {
      const end = event.component.hasProperty("dtend") || event.component.hasProperty("duration")
        ? event.endDate : event.startDate;
      found.push(row(uid, event.startDate, end, event));
      continue;
    }
    const iterator = event.iterator();
    let next;
    let guard = 0;
    while ((next = iterator.next())) {
      if (guard++ > 200000) {
        throw new Error(`${uid}: more than 200000 occurrences`);
      }
      const details = event.getOccurrenceDetails(next);
      if (next.toUnixTime() >= until && details.startDate.toUnixTime() >= until) {
        // overrides may move an instance back: look a year further for the original slots
        if (next.toUnixTime() >= until + 366 * 86400) {
          break;
        }
        continue;
      }
      const item = details.item;
      const hasEnd = item.component.hasProperty("dtend") || item.component.hasProperty("duration");
      const end = hasEnd ? details.endDate : details.startDate;
      found.push(row(uid, details.startDate, end, item));
    }
  }
  return found;
}

const request = JSON.parse(readFileSync(0, "utf8"));
const result = {};
for (const path of request.paths) {
  try {
    result[path] = occurrences(readFileSync(path, "utf8"), request.from, request.until);
  } catch (error) {
    result[path] = { error: String(error && error.stack ? error.stack : error) };
  }
}
process.stdout.write(JSON.stringify(result));
