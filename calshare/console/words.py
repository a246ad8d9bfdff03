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
