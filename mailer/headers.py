"""Check the headers we generate before a message leaves: nothing injected, nothing malformed.

Python's email package grew ``verify_generated_headers`` only in 3.11.10 (and
3.12.5); calshare runs on any 3.11, so it checks the serialised bytes itself. A
failure here is a bug in calshare, never the user's fault, so it raises.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_FIELD = re.compile(rb"([!-9;-~]+):")  # RFC 5322 ftext: printable ASCII except ':'
MAX_LINE = 998


class HeaderInjection(AssertionError):
    """The generated header block is not what we meant to write."""


def check_generated(raw: bytes, expected: Iterable[str]) -> None:
    """The top-level header fields of ``raw`` are exactly ``expected`` (case-insensitive)."""
    head, separator, _ = raw.partition(b"\r\n\r\n")
    if not separator:
        raise HeaderInjection("no blank line ends the header block")
    names: list[str] = []
    for line in head.split(b"\r\n"):
        if b"\r" in line or b"\n" in line or b"\x00" in line:
            raise HeaderInjection(f"a bare CR, LF or NUL in a header line: {line[:60]!r}")
        if len(line) > MAX_LINE:
            raise HeaderInjection(f"a header line of {len(line)} octets")
        if line[:1] in (b" ", b"\t"):
            if not names:
                raise HeaderInjection("the header block starts with a continuation line")
            continue
        match = _FIELD.match(line)
        if not match:
            raise HeaderInjection(f"not a header field: {line[:60]!r}")
        names.append(match[1].decode("ascii").lower())
    wanted = sorted(name.lower() for name in expected)
    if sorted(names) != wanted:
        raise HeaderInjection(f"header fields {sorted(names)} instead of {wanted}")
