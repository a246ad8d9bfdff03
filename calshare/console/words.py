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
        "signin.title": "Sign in",
        "signin.intro": "Type your email address and we send you a link that signs you in. There is no password to remember.",
        "signin.address": "Email address",
        "signin.submit": "Send me a link",
        "signin.sent": "If {address} may sign in, a link is on its way; it works once, for 15 minutes.",
        "signin.sent_hint": "Open the mail and press Sign in on the page its link opens. No mail after a few minutes? Look in the spam folder, or ask again.",
        "signin.bad_address": "“{address}” is not an email address; type one like name@example.org.",
        "signin.form_expired": "This form has expired or did not come from calshare; nothing was sent. Try again.",
        "signin.link_title": "Sign in to calshare",
        "signin.link_intro": "Press the button to sign in as {address}.",
        "signin.link_button": "Sign in",
        "signin.link_gone_title": "This link no longer works",
        "signin.link_gone": "This sign-in link was already used, has expired (a link works for 15 minutes), or was not opened whole. Ask for a new one.",
        "signin.link_expired_form": "This page has expired or did not come from calshare; open the link in the mail again.",
        "signin.ask_again": "Ask for a new link",
        "done.signed_out": "You are signed out.",
        # --- calendars (My calendars, Add calendar)
        # --- share and people
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
        "signin.title": "Logg inn",
        "signin.intro": "Skriv e-postadressen din, så sender vi deg en lenke som logger deg inn. Det er ikke noe passord å huske.",
        "signin.address": "E-postadresse",
        "signin.submit": "Send meg en lenke",
        "signin.sent": "Hvis {address} kan logge inn, er en lenke på vei; den virker én gang, i 15 minutter.",
        "signin.sent_hint": "Åpne e-posten og trykk Logg inn på siden lenken åpner. Ingen e-post etter noen minutter? Se i søppelpostmappen, eller be om en ny.",
        "signin.bad_address": "«{address}» er ikke en e-postadresse; skriv en som navn@example.org.",
        "signin.form_expired": "Dette skjemaet er utløpt eller kom ikke fra calshare; ingenting ble sendt. Prøv igjen.",
        "signin.link_title": "Logg inn på calshare",
        "signin.link_intro": "Trykk på knappen for å logge inn som {address}.",
        "signin.link_button": "Logg inn",
        "signin.link_gone_title": "Denne lenken virker ikke lenger",
        "signin.link_gone": "Denne innloggingslenken er allerede brukt, er utløpt (en lenke virker i 15 minutter), eller ble ikke åpnet hel. Be om en ny.",
        "signin.link_expired_form": "Denne siden er utløpt eller kom ikke fra calshare; åpne lenken i e-posten på nytt.",
        "signin.ask_again": "Be om en ny lenke",
        "done.signed_out": "Du er logget ut.",
        # --- calendars (My calendars, Add calendar)
        # --- share and people
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
