"""The E-mail calendar page, as Outlook's "Send a Calendar via E-mail" dialog.

The form names what the CLI's ``calshare snapshot`` takes (a range, a level of
detail, working hours only, private items, a layout, recipients) and builds the
same ``snapshots.Options``; Preview composes the very mails Send would queue
(``snapshots.compose_snapshots``, nothing written) and Send queues them
(``snapshots.send_snapshots``), always with ``owner=``. The mail's HTML is shown
in a sandboxed frame with no scripts, escaped into its ``srcdoc`` attribute, so
nothing in a calendar can run on the console's origin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from email import message_from_bytes
from email import policy as email_policy
from typing import Any

from aiohttp import web

from calshare import snapshots
from calshare.calendars import Calendar
from calshare.console import base, words
from calshare.errors import CalshareError, MailCapReached
from calshare.levels import Level
from calshare.links import ConsolePage, calendar_page_path, calendar_route
from calshare.owners import check_mail_cap
from calshare.ranges import NAMED
from calshare.snapshots import Options, Sent
from calshare.webcontext import CONTEXT
from mailer.snapshot import Layout, range_words

DATES = "dates"  # "Specify dates": the two date fields name the range
RANGES = (*NAMED, DATES)
ACTIONS = ("preview", "send")
_SEPARATORS = re.compile(r"[,;\r\n]+")


class FormProblem(ValueError):
    """A field of the form cannot be used; the message is a sentence of the page."""


@dataclass(frozen=True)
class EmailForm:
    """The checked form: what to do, the CLI's options, and the recipients."""

    action: str
    options: Options
    recipients: list[str]


def split_recipients(text: str) -> list[str]:
    """Addresses as typed: one per line, or separated by commas or semicolons."""
    return [part.strip() for part in _SEPARATORS.split(text) if part.strip()]


def range_text(choice: str, first: str, last: str, lang: str) -> str:
    """The range as the CLI spells it (``next-7-days``, ``2027-03-01..2027-03-31``).

    Only the shape is checked here; ``ranges.resolve_range`` decides the rest
    (order, length), and its message is shown as it is.
    """
    if choice not in RANGES:
        raise FormProblem(words.text("email.bad_range", lang))
    if choice != DATES:
        return choice
    if not first.strip() or not last.strip():
        raise FormProblem(words.text("email.dates_missing", lang))
    try:
        return f"{date.fromisoformat(first.strip())}..{date.fromisoformat(last.strip())}"
    except ValueError:
        raise FormProblem(words.text("email.dates_bad", lang)) from None


def parse_form(form: Any, lang: str) -> EmailForm:
    """The POSTed fields, checked in the order the page shows them."""
    action = str(form.get("action", ""))
    if action not in ACTIONS:
        raise FormProblem(words.text("email.bad_action", lang))
    chosen_range = range_text(
        str(form.get("range", "")), str(form.get("first", "")), str(form.get("last", "")), lang
    )
    try:
        detail = Level(str(form.get("detail", "")))
    except ValueError:
        raise FormProblem(words.text("email.bad_detail", lang)) from None
    try:
        layout = Layout(str(form.get("layout", "")))
    except ValueError:
        raise FormProblem(words.text("email.bad_layout", lang)) from None
    recipients = split_recipients(str(form.get("to", "")))
    if action == "send" and not recipients:
        raise FormProblem(words.text("email.no_recipients", lang))
    options = Options(
        range_text=chosen_range,
        detail=detail,
        working_hours_only=form.get("working_hours") == "1",
        include_private=form.get("include_private") == "1",
        layout=layout,
        lang=lang,
    )
    return EmailForm(action, options, recipients)


def _fields(source: Any) -> dict[str, str]:
    """What the form shows again: the values as sent (or the defaults)."""
    return {
        "range": str(source.get("range", "next-7-days")),
        "first": str(source.get("first", "")),
        "last": str(source.get("last", "")),
        "detail": str(source.get("detail", Level.FREE_BUSY.value)),
        "layout": str(source.get("layout", Layout.DAILY.value)),
        "working_hours": "1" if source.get("working_hours") == "1" else "",
        "include_private": "1" if source.get("include_private") == "1" else "",
        "to": str(source.get("to", "")),
    }


def _preview(sent: list[Sent], lang: str) -> list[dict[str, Any]]:
    """One shown mail per level: recipients at the same level get the same mail."""
    shown: list[dict[str, Any]] = []
    by_level: dict[Level, dict[str, Any]] = {}
    for item in sent:
        if item.level in by_level:
            by_level[item.level]["to"].append(item.recipient.address)
            continue
        message = message_from_bytes(item.mail.raw, policy=email_policy.default)
        html = message.get_body(preferencelist=("html",))
        text = message.get_body(preferencelist=("plain",))
        entry = {
            "level": words.level(item.level, lang),
            "capped": item.capped,
            "subject": item.mail.subject,
            "sender": str(message["From"]),
            "to": [item.recipient.address],
            "attachments": [part.get_filename() or "" for part in message.iter_attachments()],
            "html": html.get_content() if html is not None else "",
            "text": text.get_content() if text is not None else "",
            "events": words.text("email.events", lang, count=item.events),
            "days": range_words(item.days, lang),
        }
        by_level[item.level] = entry
        shown.append(entry)
    return shown


def _page(
    visit: base.Visit,
    calendar: Calendar,
    fields: dict[str, str],
    *,
    status: int = 200,
    preview: list[dict[str, Any]] | None = None,
    done: str | None = None,
    error: str | None = None,
) -> web.Response:
    lang = visit.lang
    range_keys = {name: f"email.range.{name}" for name in RANGES}
    return base.render(
        visit,
        lang,
        "email.html",
        words.text("email.title", lang, calendar=calendar.name),
        status=status,
        path=calendar_page_path(calendar.id, ConsolePage.EMAIL),
        tabs=base.calendar_tabs(calendar, lang, ConsolePage.EMAIL),
        action=calendar_page_path(calendar.id, ConsolePage.EMAIL),
        fields=fields,
        ranges=[(name, words.text(key, lang)) for name, key in range_keys.items()],
        details=[(level.value, words.level(level, lang)) for level in Level],
        layouts=[
            (layout.value, words.text(f"email.layout.{layout.value}", lang)) for layout in Layout
        ],
        preview=preview,
        done=done,
        error=error,
    )


def _sent_line(query: Any, lang: str) -> str | None:
    """``?done=emailed&count=N``: how many mails Send queued (a number, nothing echoed)."""
    if query.get("done") != "emailed":
        return None
    count = str(query.get("count", ""))
    if not count.isdigit() or not 0 < int(count) <= snapshots.MAX_RECIPIENTS:
        return None
    if int(count) == 1:
        return words.text("email.sent_one", lang)
    return words.text("email.sent_many", lang, count=int(count))


async def email_get(request: web.Request) -> web.StreamResponse:
    visit = await base.signed_in(request)
    context = request.app[CONTEXT]
    wanted = base.calendar_id(request)
    calendar = await context.run(lambda: base.owned_calendar(context, visit, wanted))
    fields = _fields({})
    # the Share page sends a refused address here: prefilled, never sent without a click
    fields["to"] = ", ".join(request.query.getall("to", []))
    return _page(visit, calendar, fields, done=_sent_line(request.query, visit.lang))


async def email_post(request: web.Request) -> web.StreamResponse:
    """Preview shows the mails Send would queue; Send queues them and goes back by GET."""
    visit = await base.signed_in(request)
    form = await base.read_form(request, visit)
    context = request.app[CONTEXT]
    wanted = base.calendar_id(request)
    settings, clock = context.settings, context.clock
    fields = _fields(form)

    def act() -> web.StreamResponse | int:
        calendar = base.owned_calendar(context, visit, wanted)
        try:
            chosen = parse_form(form, visit.lang)
        except FormProblem as exc:
            return _page(visit, calendar, fields, status=422, error=str(exc))
        try:
            if chosen.action == "send":
                check_mail_cap(
                    context.store.db,
                    settings,
                    visit.owner,
                    clock.now(),
                    len(chosen.recipients),
                )
                sent = snapshots.send_snapshots(
                    context.store,
                    settings,
                    clock,
                    calendar.name,
                    chosen.recipients,
                    chosen.options,
                    owner=visit.owner,
                )
                return len(sent)
            if chosen.recipients:
                made = snapshots.compose_snapshots(
                    context.store,
                    settings,
                    clock,
                    calendar.name,
                    chosen.recipients,
                    chosen.options,
                    owner=visit.owner,
                )
            else:  # the owner's own copy, as the CLI's --out writes it
                made = [
                    snapshots.preview(
                        context.store,
                        settings,
                        clock,
                        calendar.name,
                        chosen.options,
                        owner=visit.owner,
                    )
                ]
        except MailCapReached as exc:
            error = words.text("mail.cap", visit.lang, limit=exc.limit)
            return _page(visit, calendar, fields, status=429, error=error)
        except CalshareError as exc:
            return _page(visit, calendar, fields, status=422, error=str(exc))
        return _page(visit, calendar, fields, preview=_preview(made, visit.lang))

    answer = await context.run(act)
    if isinstance(answer, int):
        context.on_mail_queued()
        raise base.see_other(
            calendar_page_path(wanted, ConsolePage.EMAIL), done="emailed", count=str(answer)
        )
    return answer


def register(router: web.UrlDispatcher) -> None:
    route = calendar_route(ConsolePage.EMAIL)
    router.add_get(route, email_get)
    router.add_post(route, email_post)
