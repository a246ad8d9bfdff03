"""Authentication-Results (RFC 8601): did the operator's own mail server vouch for the From?

Anyone can write an Authentication-Results header; only the one the operator's
server added, the topmost carrying its configured authserv-id, means anything.
Lower ones, and ones with any other id, were written by someone else.
"""

from __future__ import annotations

import re
from email.message import Message

_RESULT = re.compile(r"\s*(dmarc|dkim|spf)\s*=\s*([a-z]+)\b(.*)", re.IGNORECASE | re.DOTALL)
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_COMMENT = re.compile(r"\((?:[^()\\]|\\.)*\)")


def _resinfos(results: str) -> list[tuple[str, str, str]]:
    """(method, result, properties) of each element, quoted strings and comments removed.

    The sender chooses some of what our server writes (smtp.mailfrom may be a quoted
    local part holding ";dmarc=pass"): only a result that starts an element counts.
    """
    text, previous = _QUOTED.sub('""', results), None
    while previous != text:  # comments nest
        previous, text = text, _COMMENT.sub(" ", text)
    found = (_RESULT.match(element) for element in text.split(";")[1:])
    return [(match[1], match[2], match[3]) for match in found if match]


_HEADER_D = re.compile(r"\bheader\.(?:d|i)\s*=\s*@?([A-Za-z0-9.-]+)", re.IGNORECASE)


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


def _aligned(signer: str, author_domain: str) -> bool:
    """Relaxed alignment: the signing domain is the author's domain or a parent of it."""
    signer, author_domain = signer.lower().rstrip("."), author_domain.lower().rstrip(".")
    return author_domain == signer or author_domain.endswith("." + signer)


def passes(message: Message, *, require: str, authserv_id: str, author: str | None) -> bool:
    """Whether the message meets ``require`` (none, dmarc, dkim) according to our server."""
    if require == "none":
        return True
    if author is None:
        return False
    results = trusted_results(message, authserv_id)
    if results is None:
        return False
    author_domain = author.rpartition("@")[2]
    for method, outcome, properties in _resinfos(results):
        if outcome.lower() != "pass":
            continue
        if method.lower() == "dmarc" and require == "dmarc":
            return True
        if method.lower() == "dkim" and require == "dkim":
            signer = _HEADER_D.search(properties)
            if signer and _aligned(signer[1], author_domain):
                return True
    return False
