"""What the owner console says, in English and Norwegian Bokmål.

The console's sentences, apart from the mails' (``calshare.wording``): the templates
are layout only, and ``tests/test_console_words.py`` checks that every key exists in
both languages and that both give the same placeholders. Levels are said in Outlook's
words, from ``calshare.wording``, so a mail and a page never name a level differently.
"""

from __future__ import annotations

from typing import Any

from calshare import wording
from calshare.levels import Level

LANGUAGES = ("en", "nb")

# Each page's sentences under its own prefix; keep each page's block together.
_TEXT: dict[str, dict[str, str]] = {
    "en": {
        # --- layout (base)
        "brand": "calshare",
        "nav.label": "Main",
        "nav.calendars": "My calendars",
        "nav.add": "Add calendar",
        "nav.signout": "Sign out",
        "nav.signed_in_as": "Signed in as {owner}",
        "language.switch": "English",
        "tabs.label": "Calendar",
        "tab.share": "Share",
        "tab.people": "People",
        "tab.publish": "Publish",
        "tab.email": "E-mail calendar",
        "tab.history": "History",
        "footer": "calshare: calendar sharing by email.",
        "copy": "Copy",
        "copied": "Copied",
        # --- signin
        # --- calendars (My calendars, Add calendar)
        # --- share and people
        "share.title": "Share “{calendar}”",
        "share.intro": "Invite people to see this calendar in their own calendar app. Each gets a mail to accept or decline.",
        "share.to": "To",
        "share.to_hint": "One or more addresses, separated by commas, semicolons or new lines. “Bob Smith <bob@example.org>” works too.",
        "share.level": "Permission",
        "share.lang": "Language of the invitation",
        "share.message": "Message (optional)",
        "share.message_hint": "Up to 2,000 characters, sent with the invitation.",
        "share.submit": "Share",
        "share.each": "Each address is handled on its own: those that can be shared are, and any that cannot are listed below with the reason.",
        "share.results": "What happened",
        "share.invited": "Invited {who}.",
        "share.invited_again": "Invited {who} again; the earlier invitation no longer works.",
        "share.level_changed": "{who} can now see it as “{level}”; they are told by mail.",
        "share.unchanged": "{who}: already shared at that level; nothing sent.",
        "share.refused": "{who}: this calendar can't be shared: {reason}.",
        "share.invalid": "Not shared: {reason}.",
        "share.email_instead": "E-mail a copy of the calendar to {who} instead",
        "share.none": "Type at least one address.",
        "share.too_many": "At most {count} addresses at once; share with the rest in another round.",
        "share.bad_level": "Choose one of the permissions in the list.",
        "share.bad_lang": "Choose one of the languages in the list.",
        "share.too_long": "The message is longer than 2,000 characters; keep it short.",
        "share.people_link": "See everyone this calendar is shared with",
        "people.title": "People with access to “{calendar}”",
        "people.caption": "Who this calendar is shared with",
        "people.none": "This calendar is not shared with anyone yet.",
        "people.share_link": "Share it",
        "people.name": "Name",
        "people.address": "Address",
        "people.level": "Permission",
        "people.status": "Status",
        "people.dates": "Dates",
        "people.actions": "Actions",
        "people.level_for": "Permission for {who}",
        "people.change": "Change",
        "people.remove": "Remove",
        "people.resend": "Resend invitation",
        "people.change_hint": "Changing the level of an invitation not yet answered sends it again at the new level.",
        "people.status.invited": "Invited",
        "people.status.accepted": "Accepted",
        "people.status.declined": "Declined",
        "people.status.expired": "Expired",
        "people.status.undeliverable": "Undeliverable",
        "people.status.revoked": "Removed",
        "people.invited_on": "Invited {date}",
        "people.valid_until": "Valid until {date}",
        "people.expired_on": "Expired {date}",
        "people.accepted_on": "Accepted {date}",
        "people.declined_on": "Declined {date}",
        "people.removed_on": "Removed {date}",
        "people.bad_action": "Choose Change, Remove or Resend invitation.",
        "people.not_shared": "This calendar is not shared with {who}; nothing was changed.",
        "people.cannot": "Nothing was changed: {reason}.",
        "done.level_changed": "The permission was changed; they are told by mail.",
        "done.level_unchanged": "That was already their permission; nothing was sent.",
        "done.reinvited": "The invitation was sent again at the new permission; the earlier one no longer works.",
        "done.removed": "Removed: their link stopped working at once.",
        "done.resent": "A new invitation is on its way; the earlier one no longer works.",
        # --- publish
        # --- email
        # --- history
    },
    "nb": {
        # --- layout (base)
        "brand": "calshare",
        "nav.label": "Hovedmeny",
        "nav.calendars": "Mine kalendere",
        "nav.add": "Legg til kalender",
        "nav.signout": "Logg ut",
        "nav.signed_in_as": "Logget inn som {owner}",
        "language.switch": "Norsk (bokmål)",
        "tabs.label": "Kalender",
        "tab.share": "Del",
        "tab.people": "Personer",
        "tab.publish": "Publiser",
        "tab.email": "Send kalender på e-post",
        "tab.history": "Historikk",
        "footer": "calshare: kalenderdeling på e-post.",
        "copy": "Kopier",
        "copied": "Kopiert",
        # --- signin
        # --- calendars (My calendars, Add calendar)
        # --- share and people
        "share.title": "Del «{calendar}»",
        "share.intro": "Inviter folk til å se denne kalenderen i sin egen kalenderapp. Hver av dem får en e-post for å godta eller avslå.",
        "share.to": "Til",
        "share.to_hint": "Én eller flere adresser, skilt med komma, semikolon eller linjeskift. «Kari Nordmann <kari@example.org>» går også.",
        "share.level": "Tilgang",
        "share.lang": "Språk i invitasjonen",
        "share.message": "Melding (valgfri)",
        "share.message_hint": "Inntil 2 000 tegn, sendes med invitasjonen.",
        "share.submit": "Del",
        "share.each": "Hver adresse behandles for seg: de som kan deles med, blir det, og de som ikke kan, står under med grunnen.",
        "share.results": "Hva som skjedde",
        "share.invited": "Invitert {who}.",
        "share.invited_again": "Invitert {who} på nytt; den forrige invitasjonen virker ikke lenger.",
        "share.level_changed": "{who} ser den nå som «{level}»; de får beskjed på e-post.",
        "share.unchanged": "{who}: allerede delt med den tilgangen; ingenting sendt.",
        "share.refused": "{who}: denne kalenderen kan ikke deles: {reason}.",
        "share.invalid": "Ikke delt: {reason}.",
        "share.email_instead": "Send heller en kopi av kalenderen til {who} på e-post",
        "share.none": "Skriv minst én adresse.",
        "share.too_many": "Høyst {count} adresser om gangen; del med resten i en ny runde.",
        "share.bad_level": "Velg en av tilgangene i listen.",
        "share.bad_lang": "Velg et av språkene i listen.",
        "share.too_long": "Meldingen er lengre enn 2 000 tegn; gjør den kortere.",
        "share.people_link": "Se alle kalenderen er delt med",
        "people.title": "Personer med tilgang til «{calendar}»",
        "people.caption": "Hvem kalenderen er delt med",
        "people.none": "Kalenderen er ikke delt med noen ennå.",
        "people.share_link": "Del den",
        "people.name": "Navn",
        "people.address": "Adresse",
        "people.level": "Tilgang",
        "people.status": "Status",
        "people.dates": "Datoer",
        "people.actions": "Handlinger",
        "people.level_for": "Tilgang for {who}",
        "people.change": "Endre",
        "people.remove": "Fjern",
        "people.resend": "Send invitasjonen på nytt",
        "people.change_hint": "Endrer du tilgangen i en invitasjon som ikke er besvart, sendes den på nytt med den nye tilgangen.",
        "people.status.invited": "Invitert",
        "people.status.accepted": "Godtatt",
        "people.status.declined": "Avslått",
        "people.status.expired": "Utløpt",
        "people.status.undeliverable": "Kunne ikke leveres",
        "people.status.revoked": "Fjernet",
        "people.invited_on": "Invitert {date}",
        "people.valid_until": "Gyldig til {date}",
        "people.expired_on": "Utløp {date}",
        "people.accepted_on": "Godtatt {date}",
        "people.declined_on": "Avslått {date}",
        "people.removed_on": "Fjernet {date}",
        "people.bad_action": "Velg Endre, Fjern eller Send invitasjonen på nytt.",
        "people.not_shared": "Kalenderen er ikke delt med {who}; ingenting ble endret.",
        "people.cannot": "Ingenting ble endret: {reason}.",
        "done.level_changed": "Tilgangen er endret; de får beskjed på e-post.",
        "done.level_unchanged": "Det var allerede tilgangen deres; ingenting ble sendt.",
        "done.reinvited": "Invitasjonen ble sendt på nytt med den nye tilgangen; den forrige virker ikke lenger.",
        "done.removed": "Fjernet: lenken deres sluttet å virke med en gang.",
        "done.resent": "En ny invitasjon er på vei; den forrige virker ikke lenger.",
        # --- publish
        # --- email
        # --- history
    },
}


def text(key: str, lang: str, **fields: Any) -> str:
    return _TEXT[lang][key].format(**fields)


def has(key: str, lang: str) -> bool:
    return key in _TEXT[lang]


def keys(lang: str) -> set[str]:
    return set(_TEXT[lang])


def level(value: Level, lang: str) -> str:
    """Outlook's words for a level, capitalised as a drop-down shows them."""
    words = wording.level_words(value, lang)
    return words[:1].upper() + words[1:]
