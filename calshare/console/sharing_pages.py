"""Share and People: Outlook's Share calendar dialog and its permissions list.

*Share* takes several addresses at once and handles each on its own, as Outlook's
To line does: the ones policy allows are invited, the others are listed with the
reason (and, where a copy may still go to them, a link to the E-mail calendar page,
as classic Outlook offers when sharing is refused). A mistake in one address must
not cost the owner the others; a mistake in the form itself (no address, a level
not in the list, a message too long) stores nothing at all.

*People* lists every share with its state in words and offers what that state
allows: a new permission, Remove, Resend invitation. Each is one POST to the page
(``action`` says which) answered by a 303 back with a line saying what was done,
so a reload repeats nothing. Every change goes through ``calshare.sharing``, the
functions the CLI calls, with ``owner=`` the signed-in owner.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from babel.dates import format_date
from markupsafe import Markup
from multidict import MultiDictProxy

from calshare import sharing, wording
from calshare.addresses import parse_mailbox, split_addresses
from calshare.calendars import Calendar
from calshare.console import words
from calshare.console.base import (
    Visit,
    calendar_id,
    calendar_tabs,
    done_message,
    owned_calendar,
    read_form,
    render,
    see_other,
    signed_in,
)
from calshare.errors import (
    AddressError,
    CalshareError,
    MailCapReached,
    ShareRefused,
    ShareStateError,
    UnknownShare,
)
from calshare.levels import Level
from calshare.lifecycle import ShareStatus
from calshare.links import ConsolePage, calendar_page_path, calendar_route
from calshare.owners import check_mail_cap
from calshare.policy import check_recipient
from calshare.sharing import ShareAction
from calshare.webcontext import CONTEXT, WebContext

log = logging.getLogger(__name__)

MAX_ADDRESSES = 50  # one round of the box; the form's 16 KiB holds about this many
MAX_MESSAGE = 2000  # as sharing.share allows
LEVELS = (Level.FREE_BUSY, Level.TITLES, Level.DETAILS)
# What each state offers on the People page (sharing.CHANGEABLE / RESENDABLE decide)
REMOVABLE = frozenset(
    {ShareStatus.INVITED, ShareStatus.EXPIRED, ShareStatus.ACCEPTED, ShareStatus.UNDELIVERABLE}
)


class FormError(CalshareError, ValueError):
    """A form field the page cannot use: said on the page, nothing stored."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Result:
    """One address's line under the Share form."""

    text: str
    ok: bool
    email_href: str | None = None
    email_label: str | None = None


# --- Share


def level_options(lang: str, chosen: Level | None) -> list[dict[str, Any]]:
    """The drop-down in Outlook's words, lowest first, as Outlook lists them."""
    return [
        {"value": level.value, "label": words.level(level, lang), "selected": level == chosen}
        for level in LEVELS
    ]


def parse_level(text: str, lang: str) -> Level:
    try:
        return Level(text)
    except ValueError:
        raise FormError(words.text("share.bad_level", lang)) from None


def _share_page(
    visit: Visit,
    calendar: Calendar,
    *,
    status: int = 200,
    error: str | None = None,
    results: Sequence[Result] = (),
    to: str = "",
    level: Level = Level.TITLES,
    message: str = "",
    invitation_lang: str | None = None,
) -> web.Response:
    lang = visit.lang
    path = calendar_page_path(calendar.id, ConsolePage.SHARE)
    chosen = invitation_lang or lang
    return render(
        visit,
        lang,
        "share.html",
        words.text("share.title", lang, calendar=calendar.name),
        status=status,
        path=path,
        tabs=calendar_tabs(calendar, lang, ConsolePage.SHARE),
        error=error,
        action=path,
        levels=level_options(lang, level),
        langs=[
            {
                "value": code,
                "label": words.text("language.switch", code),
                "selected": code == chosen,
            }
            for code in words.LANGUAGES
        ],
        to=to,
        message=message,
        max_message=MAX_MESSAGE,
        results=results,
        people_href=calendar_page_path(calendar.id, ConsolePage.PEOPLE),
    )


async def share_get(request: web.Request) -> web.StreamResponse:
    visit = await signed_in(request)
    context = request.app[CONTEXT]
    wanted = calendar_id(request)
    calendar = await context.run(lambda: owned_calendar(context, visit, wanted))
    return _share_page(visit, calendar)


@dataclass(frozen=True)
class ShareForm:
    pieces: list[str]
    level: Level
    lang: str
    message: str | None


def read_share_form(form: MultiDictProxy[Any], lang: str) -> ShareForm:
    """The Share form's fields, or the one line that says what is wrong with them."""
    level = parse_level(str(form.get("level", "")), lang)
    invitation_lang = str(form.get("lang", lang))
    if invitation_lang not in words.LANGUAGES:
        raise FormError(words.text("share.bad_lang", lang))
    message = str(form.get("message", "")).replace("\r\n", "\n").strip()
    if len(message) > MAX_MESSAGE:
        raise FormError(words.text("share.too_long", lang))
    pieces = split_addresses(str(form.get("to", "")))
    if not pieces:
        raise FormError(words.text("share.none", lang))
    if len(pieces) > MAX_ADDRESSES:
        raise FormError(words.text("share.too_many", lang, count=MAX_ADDRESSES))
    return ShareForm(pieces, level, invitation_lang, message or None)


def email_instead(context: WebContext, calendar: Calendar, address: str) -> str | None:
    """The E-mail calendar page for ``address``, if policy lets a copy go to them.

    Outlook offers a copy by mail when sharing is refused; here only when the copy
    would not be refused too (a level cap allows one at a lower detail; sharing
    turned off or a group address refuses copies as well).
    """
    try:
        check_recipient(context.settings.policy, calendar.owner, address)
    except ShareRefused:
        return None
    path = calendar_page_path(calendar.id, ConsolePage.EMAIL)
    return f"{path}?{urlencode({'to': address})}"


def share_each(
    context: WebContext, visit: Visit, calendar: Calendar, form: ShareForm
) -> list[Result]:
    """Share with every address of the box in turn; one line each (on the worker)."""
    lang = visit.lang
    before = {
        item.invitee: item.status
        for item in sharing.list_shares(
            context.store, context.clock, calendar.name, owner=visit.owner
        )
    }
    results: list[Result] = []
    seen: set[str] = set()
    for piece in form.pieces:
        try:
            mailbox = parse_mailbox(piece)
        except AddressError as exc:
            results.append(Result(words.text("share.invalid", lang, reason=str(exc)), False))
            continue
        if mailbox.address in seen:
            continue  # the same person twice in one box: one invitation
        seen.add(mailbox.address)
        who = str(mailbox)
        try:
            outcome = sharing.share(
                context.store,
                context.settings,
                context.clock,
                calendar.name,
                piece,
                form.level,
                lang=form.lang,
                message=form.message,
                owner=visit.owner,
            )
        except ShareRefused as exc:
            href = email_instead(context, calendar, mailbox.address)
            results.append(
                Result(
                    words.text("share.refused", lang, who=who, reason=exc.reason),
                    False,
                    href,
                    words.text("share.email_instead", lang, who=mailbox.address) if href else None,
                )
            )
            continue
        except CalshareError as exc:
            results.append(Result(words.text("share.invalid", lang, reason=str(exc)), False))
            continue
        results.append(Result(_said(outcome, before.get(mailbox.address), who, lang), True))
    return results


def _said(outcome: sharing.ShareOutcome, before: ShareStatus | None, who: str, lang: str) -> str:
    if outcome.action == ShareAction.UNCHANGED:
        return words.text("share.unchanged", lang, who=who)
    if outcome.action == ShareAction.LEVEL_CHANGED:
        level = wording.level_words(outcome.share.level, lang)
        return words.text("share.level_changed", lang, who=who, level=level)
    if before in (ShareStatus.INVITED, ShareStatus.EXPIRED):
        return words.text("share.invited_again", lang, who=who)
    return words.text("share.invited", lang, who=who)


async def share_post(request: web.Request) -> web.StreamResponse:
    visit = await signed_in(request)
    form = await read_form(request, visit)
    context = request.app[CONTEXT]
    wanted = calendar_id(request)
    to = str(form.get("to", ""))
    message = str(form.get("message", ""))
    try:
        fields = read_share_form(form, visit.lang)
    except FormError as exc:
        calendar = await context.run(lambda: owned_calendar(context, visit, wanted))
        level = Level(form["level"]) if form.get("level") in set(LEVELS) else Level.TITLES
        return _share_page(
            visit,
            calendar,
            status=exc.status,
            error=str(exc),
            to=to,
            level=level,
            message=message,
        )

    def work() -> tuple[Calendar, list[Result] | None]:
        calendar = owned_calendar(context, visit, wanted)
        try:  # at most one mail per address of the box: over the cap, none at all
            check_mail_cap(
                context.store.db,
                context.settings,
                visit.owner,
                context.clock.now(),
                len(_firsts(fields.pieces)),
            )
        except MailCapReached:
            return calendar, None
        return calendar, share_each(context, visit, calendar, fields)

    calendar, done = await context.run(work)
    if done is None:
        limit = context.settings.owners.mails_per_hour
        return _share_page(
            visit,
            calendar,
            status=429,
            error=words.text("mail.cap", visit.lang, limit=limit),
            to=to,
            level=fields.level,
            message=message,
        )
    results = done
    shared = any(result.ok for result in results)
    if shared:
        context.on_mail_queued()
    log.info(
        "console: %s shared calendar #%d: %d of %d addresses",
        visit.owner,
        calendar.id,
        sum(result.ok for result in results),
        len(results),
    )
    # the box keeps what was not shared, to be corrected and sent again
    left = [
        piece
        for piece, result in zip(_firsts(fields.pieces), results, strict=True)
        if not result.ok
    ]
    return _share_page(
        visit,
        calendar,
        status=200 if shared else 422,
        results=results,
        to=", ".join(left),
        level=fields.level,
        message=message if not shared else "",
        invitation_lang=fields.lang,
    )


def _firsts(pieces: Sequence[str]) -> list[str]:
    """The pieces ``share_each`` gave a line to: each address's first spelling."""
    seen: set[str] = set()
    firsts: list[str] = []
    for piece in pieces:
        try:
            address = parse_mailbox(piece).address
        except AddressError:
            firsts.append(piece)
            continue
        if address not in seen:
            seen.add(address)
            firsts.append(piece)
    return firsts


# --- People


@lru_cache(maxsize=1024)
def _day(stamp: str | None, lang: str) -> str:
    """A day in the page's words ("3 Apr 2027"); cached: babel is slow, and days repeat."""
    if not stamp:
        return ""
    return format_date(date.fromisoformat(stamp[:10]), "medium", locale=wording.babel_locale(lang))


def _dates(item: sharing.Share, lang: str) -> list[str]:
    """The dates that matter for the share's state, in words."""
    lines = [words.text("people.invited_on", lang, date=_day(item.invited_at[:10], lang))]
    if item.status == ShareStatus.INVITED:
        lines.append(words.text("people.valid_until", lang, date=_day(item.expires_at[:10], lang)))
    elif item.status == ShareStatus.EXPIRED:
        lines.append(words.text("people.expired_on", lang, date=_day(item.expires_at[:10], lang)))
    elif item.status == ShareStatus.ACCEPTED and item.answered_at:
        lines.append(words.text("people.accepted_on", lang, date=_day(item.answered_at[:10], lang)))
    elif item.status == ShareStatus.DECLINED and item.answered_at:
        lines.append(words.text("people.declined_on", lang, date=_day(item.answered_at[:10], lang)))
    elif item.status == ShareStatus.REVOKED and item.revoked_at:
        lines.append(words.text("people.removed_on", lang, date=_day(item.revoked_at[:10], lang)))
    return lines


def _options(lang: str) -> dict[Level, Markup]:
    """Each level's drop-down options with that level chosen, built once per page."""
    return {
        chosen: Markup("").join(
            Markup('<option value="{}"{}>{}</option>').format(
                option["value"], Markup(" selected") if option["selected"] else "", option["label"]
            )
            for option in level_options(lang, chosen)
        )
        for chosen in LEVELS
    }


def people_rows(shares: Sequence[sharing.Share], lang: str) -> list[dict[str, Any]]:
    """One row per share, with the actions its state allows."""
    options = _options(lang)
    return [
        {
            "name": item.invitee_name,
            "address": item.invitee,
            "level": words.level(item.level, lang),
            "status": words.text(f"people.status.{item.status.value}", lang),
            "status_key": item.status.value,
            "dates": _dates(item, lang),
            "options": options[item.level],
            "level_label": words.text(
                "people.level_for", lang, who=item.invitee_name or item.invitee
            ),
            "change": item.status in sharing.CHANGEABLE,
            "remove": item.status in REMOVABLE,
            "resend": item.status in sharing.RESENDABLE,
        }
        for item in shares
    ]


def _people_page(
    context: WebContext,
    visit: Visit,
    calendar: Calendar,
    *,
    status: int = 200,
    error: str | None = None,
    done: str | None = None,
) -> web.Response:
    """Reads the shares: on the worker thread."""
    lang = visit.lang
    path = calendar_page_path(calendar.id, ConsolePage.PEOPLE)
    shares = sharing.list_shares(context.store, context.clock, calendar.name, owner=visit.owner)
    return render(
        visit,
        lang,
        "people.html",
        words.text("people.title", lang, calendar=calendar.name),
        status=status,
        path=path,
        tabs=calendar_tabs(calendar, lang, ConsolePage.PEOPLE),
        error=error,
        done=done,
        action=path,
        rows=people_rows(shares, lang),
        change=words.text("people.change", lang),
        resend=words.text("people.resend", lang),
        remove=words.text("people.remove", lang),
        share_href=calendar_page_path(calendar.id, ConsolePage.SHARE),
    )


async def people_get(request: web.Request) -> web.StreamResponse:
    visit = await signed_in(request)
    context = request.app[CONTEXT]
    wanted = calendar_id(request)
    done = done_message(request.query, visit.lang)

    def work() -> web.Response:
        calendar = owned_calendar(context, visit, wanted)
        return _people_page(context, visit, calendar, done=done)

    return await context.run(work)


ACTIONS = ("change", "remove", "resend")


def act(context: WebContext, visit: Visit, calendar: Calendar, form: MultiDictProxy[Any]) -> str:
    """Do the row's action; the ``done`` key that says what was done (on the worker)."""
    lang = visit.lang
    action = str(form.get("action", ""))
    if action not in ACTIONS:
        raise FormError(words.text("people.bad_action", lang), 400)
    level = parse_level(str(form.get("level", "")), lang) if action == "change" else None
    typed = str(form.get("invitee", ""))
    try:
        invitee = parse_mailbox(typed)
    except AddressError:
        raise FormError(words.text("people.not_shared", lang, who=typed[:254]), 404) from None
    args = (context.store, context.settings, context.clock, calendar.name, invitee.address)
    try:
        if action == "remove":
            sharing.unshare(*args, owner=visit.owner)
            return "removed"
        if action == "resend":
            sharing.resend(*args, owner=visit.owner)
            return "resent"
        assert level is not None
        outcome = sharing.change_level(*args, level, owner=visit.owner)
    except UnknownShare:
        raise FormError(words.text("people.not_shared", lang, who=invitee.address), 404) from None
    except (ShareStateError, ShareRefused) as exc:
        reason = exc.reason if isinstance(exc, ShareRefused) else str(exc)
        raise FormError(words.text("people.cannot", lang, reason=reason), 409) from None
    if outcome.action == ShareAction.UNCHANGED:
        return "level_unchanged"
    if outcome.action == ShareAction.LEVEL_CHANGED:
        return "level_changed"
    return "reinvited"


async def people_post(request: web.Request) -> web.StreamResponse:
    visit = await signed_in(request)
    form = await read_form(request, visit)
    context = request.app[CONTEXT]
    wanted = calendar_id(request)

    def work() -> str | web.Response:
        calendar = owned_calendar(context, visit, wanted)
        try:
            return act(context, visit, calendar, form)
        except FormError as exc:
            return _people_page(context, visit, calendar, status=exc.status, error=str(exc))

    done = await context.run(work)
    if isinstance(done, web.Response):
        return done
    if done != "level_unchanged":
        context.on_mail_queued()
    log.info("console: %s on calendar #%d: %s", visit.owner, wanted, done)
    raise see_other(calendar_page_path(wanted, ConsolePage.PEOPLE), done=done)


def register(router: web.UrlDispatcher) -> None:
    router.add_get(calendar_route(ConsolePage.SHARE), share_get)
    router.add_post(calendar_route(ConsolePage.SHARE), share_post)
    router.add_get(calendar_route(ConsolePage.PEOPLE), people_get)
    router.add_post(calendar_route(ConsolePage.PEOPLE), people_post)
