// Read iCalendar files the way Thunderbird and web clients do (Mozilla's ical.js) and
// print, per file, each VEVENT's start and end: UTC instants for date-times, dates for
// dates. Input: a JSON list of paths on stdin. Output: a JSON object path -> events, or
// path -> {"error": message} where ical.js could not read the file.
import { readFileSync } from "node:fs";
import ICAL from "ical.js";

function value(time) {
  if (time.isDate) {
    return time.toString(); // YYYY-MM-DD
  }
  return new Date(time.toUnixTime() * 1000).toISOString().replace(".000Z", "Z");
}

function instants(text) {
  const calendar = new ICAL.Component(ICAL.parse(text));
  ICAL.TimezoneService.reset();
  for (const zone of calendar.getAllSubcomponents("vtimezone")) {
    ICAL.TimezoneService.register(zone);
  }
  const found = [];
  for (const component of calendar.getAllSubcomponents("vevent")) {
    if (component.hasProperty("rrule") || component.hasProperty("rdate")) {
      throw new Error("a VEVENT recurs: expected expanded instances");
    }
    const event = new ICAL.Event(component);
    const start = event.startDate;
    const end = component.hasProperty("dtend") ? event.endDate : start;
    if (!start.isDate && start.zone === ICAL.Timezone.localTimezone) {
      throw new Error(`${event.uid}: floating or unknown TZID ${component.getFirstProperty("dtstart").getParameter("tzid")}`);
    }
    found.push([event.uid, value(start), value(end), event.summary ?? null]);
  }
  return found;
}

const paths = JSON.parse(readFileSync(0, "utf8"));
const result = {};
for (const path of paths) {
  try {
    result[path] = instants(readFileSync(path, "utf8"));
  } catch (error) {
    result[path] = { error: String(error && error.stack ? error.stack : error) };
  }
}
process.stdout.write(JSON.stringify(result));
