"""Read a snapshot mail back the way a recipient's client does: parts decoded, .ics unfolded."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from email.message import EmailMessage

import icalendar


@dataclass
class SnapshotMail:
    message: EmailMessage
    text: str
    html: str
    ics: bytes

    @property
    def ics_unfolded(self) -> str:
        return self.ics.decode("utf-8").replace("\r\n ", "").replace("\r\n\t", "")

    @property
    def everything(self) -> str:
        """Every header and every decoded part: where a leak would be seen."""
        headers = "\n".join(f"{name}: {value}" for name, value in self.message.items())
        return "\n".join((headers, self.text, self.html, self.ics_unfolded))

    def calendar(self) -> icalendar.Calendar:
        return icalendar.Calendar.from_ical(self.ics)


def tzids(text: str) -> set[str]:
    """The TZIDs an iCalendar text refers to, from its unfolded property parameters."""
    found: set[str] = set()
    for line in text.replace("\r\n ", "").replace("\r\n\t", "").split("\r\n"):
        head, _, _ = line.partition(":")
        for param in head.split(";")[1:]:
            key, _, value = param.partition("=")
            if key.upper() == "TZID":
                found.add(value.strip('"'))
    return found


def read(raw: bytes) -> SnapshotMail:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    text_part = message.get_body(("plain",))
    html_part = message.get_body(("html",))
    assert text_part is not None and html_part is not None
    attachments = [part for part in message.iter_attachments()]
    assert len(attachments) == 1, [part.get_content_type() for part in attachments]
    (attachment,) = attachments
    assert attachment.get_content_type() == "text/calendar"
    payload = attachment.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return SnapshotMail(message, text_part.get_content(), html_part.get_content(), payload)
