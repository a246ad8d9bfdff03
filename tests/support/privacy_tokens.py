"""Secret texts for the privacy properties (tests/test_privacy.py, test_privacy_series.py).

The token machinery both share: every secret text
carries a token, ``Q`` and eight letters no structural output can hold, so "the token
is in the output" holds exactly when that field leaked.
"""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
from hypothesis import strategies as st

from calshare.busy import Busy
from calshare.ics_writer import stand_in_summary
from calshare.levels import Level

TEXT = (
    "status",
    "summary",
    "location",
    "description",
    "organizer",
    "attendees",
    "categories",
    "url",
)
SHOWN: dict[Level, frozenset[str]] = {
    Level.FREE_BUSY: frozenset(),
    Level.TITLES: frozenset({"summary", "location"}),
    Level.DETAILS: frozenset(TEXT),
}

TOKEN_ALPHABET = "GHJKLMNPRSUVWXYZghjkmnpqrsuvwxyz"  # no hex digit, no T, no Q
TOKEN_LENGTH = 9
tokens = st.text(alphabet=TOKEN_ALPHABET, min_size=TOKEN_LENGTH - 1, max_size=TOKEN_LENGTH - 1).map(
    lambda letters: "Q" + letters
)
# Around the tokens: what real titles hold, and what iCalendar must escape (, ; \ newline).
_AROUND = "ab xyz 019 ,;:\\\"'-./()<>&!?æøåÆØÅéü€✓日本🙂"
around = st.text(alphabet=_AROUND + "\n\t", max_size=10)
around_one_line = st.text(alphabet=_AROUND, max_size=10)
# Parameter values (CN=) cannot hold DQUOTE, control characters or RFC 6868's caret.
around_param = st.text(alphabet=_AROUND.replace('"', ""), max_size=10)

CLASSES = [None, "PUBLIC", "PRIVATE", "CONFIDENTIAL", "X-UNKNOWN", "private"]
ZONES = [None, UTC, ZoneInfo("Europe/Oslo"), ZoneInfo("America/New_York")]  # None: floating


def _is_private(klass: str | None) -> bool:
    return klass is not None and klass.upper() != "PUBLIC"


class Tokens:
    """Hands out distinct tokens within one example."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw
        self.used: set[str] = set()

    def fresh(self) -> str:
        token = self.draw(tokens.filter(lambda t: t not in self.used))
        self.used.add(token)
        return token

    def text(self, surround: st.SearchStrategy[str] = around) -> tuple[str, str]:
        """(text, token): a secret text with a token somewhere inside."""
        token = self.fresh()
        return self.draw(surround) + token + self.draw(surround), token


# --- a whole calendar


def _texts(draw: st.DrawFn, pool: Tokens, event: icalendar.Event, component: Any) -> None:
    """Add the secret texts of one VEVENT, each optional, and record their tokens."""

    def note(name: str, token: str) -> None:
        component.tokens.setdefault(name, []).append(token)

    # A summary always: the positive check at details counts on it.
    text, token = pool.text()
    event.add("summary", text)
    component.summary = text.strip()
    note("summary", token)
    if draw(st.booleans()):
        text, token = pool.text()
        event.add("location", text)
        note("location", token)
    if draw(st.booleans()):
        text, token = pool.text()
        event.add("description", text)
        note("description", token)
    if draw(st.booleans()):
        name, name_token = pool.text(around_param)
        address = pool.fresh()
        event.add("organizer", f"mailto:{address}@example.org", parameters={"CN": name})
        note("organizer", name_token)
        note("organizer", address)
    for _ in range(draw(st.integers(0, 3))):
        address = pool.fresh()
        parameters: dict[str, str] = {"PARTSTAT": "ACCEPTED"}
        if draw(st.booleans()):
            name, name_token = pool.text(around_param)
            parameters["CN"] = name
            note("attendees", name_token)
        event.add("attendee", f"mailto:{address}@example.org", parameters=parameters)
        note("attendees", address)
    if draw(st.booleans()):
        categories = []
        for _ in range(draw(st.integers(1, 3))):
            text, token = pool.text(around_one_line)
            categories.append(text)
            note("categories", token)
        event.add("categories", categories)
    if draw(st.booleans()):
        token = pool.fresh()
        event.add("url", f"https://example.org/{token}")
        note("url", token)


STAND_INS = frozenset(stand_in_summary(busy, lang) for busy in Busy for lang in ("en", "nb"))
TOKEN_PATTERN = re.compile("Q[" + TOKEN_ALPHABET + "]{8}")
