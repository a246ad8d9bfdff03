"""Authentication-Results (RFC 8601): did the operator's own mail server vouch for the From?

Anyone can write an Authentication-Results header; only the one the operator's
server added, the topmost carrying its configured authserv-id, means anything.
Lower ones, and ones with any other id, were written by someone else.
"""

from __future__ import annotations

import re
from email.message import Message

_RESULT = re.compile(r"\s*(dmarc|dkim|spf)\s*=\s*([a-z]+)\b(.*)", re.IGNORECASE | re.DOTALL)


def _without_comments(text: str) -> str:
    """The header with comments (nested) blanked and quoted strings emptied, in one pass.

    One pass, because the sender controls part of the text: repeated regular
    expression passes over deeply nested parentheses would take quadratic time.
    """
    kept: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and (quoted or depth):
            escaped = True
        elif quoted:
            if char == '"':
                quoted = False
                kept.append('"')
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
            if not depth:
                kept.append(" ")
        elif depth:
            continue
        elif char == '"':
            quoted = True
            kept.append('"')
        else:
            kept.append(char)
    return "".join(kept)


def _resinfos(results: str) -> list[tuple[str, str, str]]:
    """(method, result, properties) of each element, quoted strings and comments removed.

    The sender chooses some of what our server writes (smtp.mailfrom may be a quoted
    local part holding ";dmarc=pass"): only a result that starts an element counts.
    """
    found = (_RESULT.match(element) for element in _without_comments(results).split(";")[1:])
    return [(match[1], match[2], match[3]) for match in found if match]


_HEADER_D = re.compile(r"\bheader\.(?:d|i)\s*=\s*@?([A-Za-z0-9.-]+)", re.IGNORECASE)
_HEADER_FROM = re.compile(r"\bheader\.from\s*=\s*([A-Za-z0-9.-]+)", re.IGNORECASE)


def trusted_results(message: Message, authserv_id: str) -> str | None:
    """The value of the topmost Authentication-Results header written by our server."""
    try:
        values = message.get_all("Authentication-Results") or []
    except (ValueError, TypeError, IndexError, AttributeError):
        return None
    for value in values:  # in order: the topmost, added last, comes first
        text = " ".join(str(value).split())
        words = text.split(";", 1)[0].split()
        server = words[0] if words else ""
        if server.lower() == authserv_id.lower():
            return text
    return None


def _from_headers(message: Message) -> int:
    return sum(1 for name, _ in message.raw_items() if name.lower() == "from")


def _aligned(signer: str, author_domain: str) -> bool:
    """Relaxed alignment: the signing domain is the author's domain or a parent of it."""
    signer, author_domain = signer.lower().rstrip("."), author_domain.lower().rstrip(".")
    return author_domain == signer or author_domain.endswith("." + signer)


def passes(message: Message, *, require: str, authserv_id: str, author: str | None) -> bool:
    """Whether the message meets ``require`` (none, dmarc, dkim) according to our server."""
    if require == "none":
        return True
    if author is None or _from_headers(message) != 1:
        return False  # with two From headers, which one did the server vouch for?
    results = trusted_results(message, authserv_id)
    if results is None:
        return False
    author_domain = author.rpartition("@")[2]
    for method, outcome, properties in _resinfos(results):
        if outcome.lower() != "pass":
            continue
        if method.lower() == "dmarc" and require == "dmarc":
            # the From our server judged must be the From we read (RFC 7489 §6.6.1)
            judged = _HEADER_FROM.search(properties)
            if judged is None or judged[1].lower().rstrip(".") == author_domain.lower():
                return True
        if method.lower() == "dkim" and require == "dkim":
            signer = _HEADER_D.search(properties)
            if signer and _aligned(signer[1], author_domain):
                return True
    return False
