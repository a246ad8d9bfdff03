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
        "calendars.title": "My calendars",
        "calendars.caption": "Your calendars",
        "calendars.col.calendar": "Calendar",
        "calendars.col.source": "Source",
        "calendars.col.people": "Shared with",
        "calendars.col.published": "Publication",
        "calendars.col.pages": "Pages",
        "calendars.empty": "You have no calendars yet.",
        "calendars.empty.add": "Add your first calendar",
        "calendars.empty.not_allowed": "You have no calendars here.",
        "calendars.zone": "Time zone: {zone}",
        "calendars.events": "{count} events",
        "calendars.imported": "Last import: {at}",
        "calendars.never_imported": "never",
        "calendars.pages_of": "Pages of {name}",
        "calendars.source.none": "Uploaded file (not followed)",
        "calendars.source.server_file": "A file on the server",
        "calendars.source.nothing": "Nothing imported yet",
        "calendars.source.every": "Read again every {minutes} minutes",
        "calendars.source.success": "Last read: {at}",
        "calendars.source.never": "Not read yet",
        "calendars.source.failing": "Failing since {since}: {cause}",
        "calendars.kind.url": "Web address",
        "calendars.kind.caldav": "CalDAV collection",
        "calendars.kind.file": "File",
        "calendars.people.none": "Nobody",
        "calendars.people.accepted": "{count} accepted",
        "calendars.people.invited": "{count} invited",
        "calendars.people.expired": "{count} expired",
        "calendars.people.declined": "{count} declined",
        "calendars.people.undeliverable": "{count} undeliverable",
        "calendars.published": "Published: {level}",
        "calendars.not_published": "Not published",
        "done.added": "The calendar was added.",
        "cause.auth": "the address asks for a password or is no longer valid",
        "cause.not_found": "the address no longer exists (404)",
        "cause.redirect_loop": "the address sends readers around in circles",
        "cause.timeout": "the server did not answer in time",
        "cause.html": "the address gives a web page, not a calendar",
        "cause.truncated": "the calendar came cut off",
        "cause.empty": "the calendar came empty",
        "cause.shrunk": "the calendar came with far fewer events than before",
        "cause.rate_limited": "the server asks us to read less often",
        "cause.too_large": "the calendar is larger than this server accepts",
        "cause.invalid": "what came is not a calendar",
        "cause.http": "the server answered with an error",
        "cause.network": "the server could not be reached",
        "cause.unsupported": "the server does not support this",
        "cause.other": "it could not be read",
        "add.title": "Add calendar",
        "add.intro": (
            "Add a calendar from a web address it is published at, a CalDAV collection, or "
            "an .ics file."
        ),
        "add.name": "Name",
        "add.name.hint": "Letters, digits, '.', '-' or '_', up to 64, e.g. project.",
        "add.tz": "Time zone (optional)",
        "add.tz.hint": "An IANA name such as Europe/Oslo; empty: the calendar's own.",
        "add.from": "Add from",
        "add.kind.url": "A web address ({schemes})",
        "add.kind.caldav": "A CalDAV collection",
        "add.kind.file": "An .ics file",
        "add.url": "Address",
        "add.url.hint": "Kept secret: pages show only its start (https://host/…).",
        "add.every": "Read again every",
        "add.every.default": "{minutes} minutes (the server's default)",
        "add.every.15m": "15 minutes",
        "add.every.30m": "30 minutes",
        "add.every.1h": "1 hour",
        "add.every.6h": "6 hours",
        "add.every.24h": "24 hours",
        "add.file": "Calendar file",
        "add.file.hint": (
            "An iCalendar (.ics) export from Outlook, Google, iCloud…, at most {megabytes} MB."
        ),
        "add.submit": "Add calendar",
        "add.not_allowed": (
            "Only owners of calendars, and addresses the operator allows, can add "
            "calendars. Ask the person who runs calshare at {domain} to allow {owner}."
        ),
        "add.failed": "The calendar was not added: {reason}",
        "add.error.kind": (
            "The calendar was not added: choose a web address, a CalDAV collection or a file."
        ),
        "add.error.no_file": "The calendar was not added: choose an .ics file to upload.",
        "add.error.no_url": "The calendar was not added: type the calendar's address.",
        "add.error.not_url": ("The calendar was not added: the address must start with {schemes}."),
        "add.error.bad_url": (
            "The calendar was not added: that address cannot be read as a web address."
        ),
        "add.error.every": "The calendar was not added: choose how often from the list.",
        "add.error.too_large": (
            "The calendar was not added: the file is larger than the limit of {megabytes} MB."
        ),
        "add.error.field_too_long": "The calendar was not added: a field is too long.",
        "add.error.unreadable": (
            "The calendar was not added: the form could not be read; try again."
        ),
        # --- share and people
        # --- publish
        # --- email
        # --- history
        "history.title": "History of {name}",
        "history.caption": "What happened to the calendar, newest first",
        "history.zone": "Times are in {zone}.",
        "history.col.when": "When",
        "history.col.what": "What",
        "history.col.detail": "Details",
        "history.empty": "Nothing has happened to this calendar yet.",
        "history.older": "Older",
        "history.newest": "Newest",
        "history.invited": "{who} was invited: {level}",
        "history.accepted": "{who} accepted: {level}",
        "history.declined": "{who} declined",
        "history.level_changed": "{who}: level changed from {old} to {new}",
        "history.unshared": "{who} was removed",
        "history.undeliverable": "The invitation to {who} could not be delivered",
        "history.published": "Published: {level}",
        "history.unpublished": "Unpublished",
        "history.snapshot": "A copy was e-mailed to {who}",
        "history.source_failing": "Its source {who} stopped working",
        "history.source_recovered": "Its source {who} works again",
        "history.other": "{action}",
        "history.was.invited": "had been invited",
        "history.was.accepted": "had accepted",
        "history.was.undeliverable": "could not be reached",
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
        "calendars.title": "Mine kalendere",
        "calendars.caption": "Kalenderne dine",
        "calendars.col.calendar": "Kalender",
        "calendars.col.source": "Kilde",
        "calendars.col.people": "Delt med",
        "calendars.col.published": "Publisering",
        "calendars.col.pages": "Sider",
        "calendars.empty": "Du har ingen kalendere ennå.",
        "calendars.empty.add": "Legg til den første kalenderen din",
        "calendars.empty.not_allowed": "Du har ingen kalendere her.",
        "calendars.zone": "Tidssone: {zone}",
        "calendars.events": "{count} hendelser",
        "calendars.imported": "Sist importert: {at}",
        "calendars.never_imported": "aldri",
        "calendars.pages_of": "Sider for {name}",
        "calendars.source.none": "Opplastet fil (følges ikke)",
        "calendars.source.server_file": "En fil på serveren",
        "calendars.source.nothing": "Ingenting importert ennå",
        "calendars.source.every": "Leses på nytt hvert {minutes}. minutt",
        "calendars.source.success": "Sist lest: {at}",
        "calendars.source.never": "Ikke lest ennå",
        "calendars.source.failing": "Feiler siden {since}: {cause}",
        "calendars.kind.url": "Nettadresse",
        "calendars.kind.caldav": "CalDAV-samling",
        "calendars.kind.file": "Fil",
        "calendars.people.none": "Ingen",
        "calendars.people.accepted": "{count} godtatt",
        "calendars.people.invited": "{count} invitert",
        "calendars.people.expired": "{count} utløpt",
        "calendars.people.declined": "{count} avslått",
        "calendars.people.undeliverable": "{count} kunne ikke leveres",
        "calendars.published": "Publisert: {level}",
        "calendars.not_published": "Ikke publisert",
        "done.added": "Kalenderen ble lagt til.",
        "cause.auth": "adressen krever passord eller er ikke lenger gyldig",
        "cause.not_found": "adressen finnes ikke lenger (404)",
        "cause.redirect_loop": "adressen sender leseren i ring",
        "cause.timeout": "serveren svarte ikke i tide",
        "cause.html": "adressen gir en nettside, ikke en kalender",
        "cause.truncated": "kalenderen kom avkuttet",
        "cause.empty": "kalenderen kom tom",
        "cause.shrunk": "kalenderen kom med langt færre hendelser enn før",
        "cause.rate_limited": "serveren ber oss lese sjeldnere",
        "cause.too_large": "kalenderen er større enn denne serveren tar imot",
        "cause.invalid": "det som kom, er ikke en kalender",
        "cause.http": "serveren svarte med en feil",
        "cause.network": "serveren kunne ikke nås",
        "cause.unsupported": "serveren støtter ikke dette",
        "cause.other": "den kunne ikke leses",
        "add.title": "Legg til kalender",
        "add.intro": (
            "Legg til en kalender fra en nettadresse den er publisert på, en CalDAV-samling "
            "eller en .ics-fil."
        ),
        "add.name": "Navn",
        "add.name.hint": "Bokstaver, sifre, '.', '-' eller '_', opptil 64, f.eks. prosjekt.",
        "add.tz": "Tidssone (valgfritt)",
        "add.tz.hint": "Et IANA-navn som Europe/Oslo; tomt: kalenderens egen.",
        "add.from": "Legg til fra",
        "add.kind.url": "En nettadresse ({schemes})",
        "add.kind.caldav": "En CalDAV-samling",
        "add.kind.file": "En .ics-fil",
        "add.url": "Adresse",
        "add.url.hint": "Holdes hemmelig: sidene viser bare begynnelsen (https://vert/…).",
        "add.every": "Les på nytt",
        "add.every.default": "hvert {minutes}. minutt (serverens standard)",
        "add.every.15m": "hvert 15. minutt",
        "add.every.30m": "hvert 30. minutt",
        "add.every.1h": "hver time",
        "add.every.6h": "hver 6. time",
        "add.every.24h": "hvert døgn",
        "add.file": "Kalenderfil",
        "add.file.hint": (
            "En iCalendar-eksport (.ics) fra Outlook, Google, iCloud …, høyst {megabytes} MB."
        ),
        "add.submit": "Legg til kalender",
        "add.not_allowed": (
            "Bare eiere av kalendere, og adresser operatøren tillater, kan legge til "
            "kalendere. Be den som driver calshare på {domain}, om å tillate {owner}."
        ),
        "add.failed": "Kalenderen ble ikke lagt til: {reason}",
        "add.error.kind": (
            "Kalenderen ble ikke lagt til: velg en nettadresse, en CalDAV-samling eller en fil."
        ),
        "add.error.no_file": "Kalenderen ble ikke lagt til: velg en .ics-fil å laste opp.",
        "add.error.no_url": "Kalenderen ble ikke lagt til: skriv inn kalenderens adresse.",
        "add.error.not_url": ("Kalenderen ble ikke lagt til: adressen må begynne med {schemes}."),
        "add.error.bad_url": (
            "Kalenderen ble ikke lagt til: adressen kan ikke leses som en nettadresse."
        ),
        "add.error.every": "Kalenderen ble ikke lagt til: velg hvor ofte fra listen.",
        "add.error.too_large": (
            "Kalenderen ble ikke lagt til: filen er større enn grensen på {megabytes} MB."
        ),
        "add.error.field_too_long": "Kalenderen ble ikke lagt til: et felt er for langt.",
        "add.error.unreadable": (
            "Kalenderen ble ikke lagt til: skjemaet kunne ikke leses; prøv igjen."
        ),
        # --- share and people
        # --- publish
        # --- email
        # --- history
        "history.title": "Historikk for {name}",
        "history.caption": "Hva som har skjedd med kalenderen, nyeste først",
        "history.zone": "Tidene er i {zone}.",
        "history.col.when": "Når",
        "history.col.what": "Hva",
        "history.col.detail": "Detaljer",
        "history.empty": "Ingenting har skjedd med denne kalenderen ennå.",
        "history.older": "Eldre",
        "history.newest": "Nyeste",
        "history.invited": "{who} ble invitert: {level}",
        "history.accepted": "{who} godtok: {level}",
        "history.declined": "{who} avslo",
        "history.level_changed": "{who}: nivået ble endret fra {old} til {new}",
        "history.unshared": "{who} ble fjernet",
        "history.undeliverable": "Invitasjonen til {who} kunne ikke leveres",
        "history.published": "Publisert: {level}",
        "history.unpublished": "Publisering stoppet",
        "history.snapshot": "En kopi ble sendt på e-post til {who}",
        "history.source_failing": "Kilden {who} sluttet å virke",
        "history.source_recovered": "Kilden {who} virker igjen",
        "history.other": "{action}",
        "history.was.invited": "var invitert",
        "history.was.accepted": "hadde godtatt",
        "history.was.undeliverable": "kunne ikke nås",
    },
}


def text(key: str, lang: str, **fields: Any) -> str:
    return _TEXT[lang][key].format(**fields)


def has(key: str, lang: str) -> bool:
    return key in _TEXT[lang]


def keys(lang: str) -> set[str]:
    return set(_TEXT[lang])


def number(count: int, lang: str) -> str:
    """A count as the language writes it: 1,234 in English, 1 234 in Norwegian."""
    shown = f"{count:,}"
    return shown.replace(",", "\u00a0") if lang == "nb" else shown


def level(value: Level, lang: str) -> str:
    """Outlook's words for a level, capitalised as a drop-down shows them."""
    words = wording.level_words(value, lang)
    return words[:1].upper() + words[1:]
