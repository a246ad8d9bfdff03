"""The copy kept of an inbound mail is bounded in bytes, every line counted (review of
issue 11, finding 1).

The copy is made where the mail is stored, inside the write transaction every other
mail waits on, so its work and size must be bounded whatever the mail holds: part
headers, separator lines and multibyte text count too, and at most MAX_PARTS parts
are walked.
"""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from calshare.redaction import COPY_BYTES, MAX_PARTS, redact_mail


def _mail(parts: int, headers: int, header_chars: int, body: str) -> bytes:
    message = EmailMessage()
    message["Subject"] = "many"
    message.set_content("first")
    message.make_mixed()
    for _ in range(parts):
        part = EmailMessage()
        for index in range(headers):
            part[f"X-H{index}"] = ("words " * header_chars)[:header_chars].strip() or "w"
        part.set_content(body, cte="8bit")  # as sent: short lines, any characters
        message.attach(part)
    return message.as_bytes()


@hypothesis_settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.integers(1, 3 * MAX_PARTS),
    headers=st.integers(0, 120),
    header_chars=st.integers(1, 900),
    body=st.builds(
        lambda char, lines: (char * 70 + "\n") * lines,
        st.sampled_from(["a", "é", "€", "😀"]),
        st.integers(0, 1000),
    ),
)
def test_the_copy_is_never_larger_than_its_budget(
    parts: int, headers: int, header_chars: int, body: str
) -> None:
    copy = redact_mail(_mail(parts, headers, header_chars, body))
    assert len(copy) <= COPY_BYTES


@pytest.mark.parametrize(
    ("parts", "headers", "header_chars", "body"),
    [
        pytest.param(60, 100, 200, "x", id="part-headers"),  # headers were not counted
        pytest.param(
            6, 0, 1, ("€" * 70 + "\n") * 3000, id="multibyte-text"
        ),  # characters, not bytes
        pytest.param(20_000, 0, 1, "", id="many-empty-parts"),  # separator lines
    ],
)
def test_what_the_old_budget_left_out_is_counted(
    parts: int, headers: int, header_chars: int, body: str
) -> None:
    if parts < 1000:
        raw = _mail(parts, headers, header_chars, body)
    else:  # what the email package would take long to build: tiny parts, written out
        head = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        raw = head + (b"--b\r\nX-A: " + b"y" * 60 + b"\r\n\r\n\r\n") * parts + b"--b--\r\n"
    copy = redact_mail(raw)
    assert len(copy) <= COPY_BYTES
    assert b"not kept" in copy[-100:]  # and it says it is cut
