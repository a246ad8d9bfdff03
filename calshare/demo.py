"""The demo calendars ``make run`` starts with: one owner, a project and a family calendar.

Their series start in January 2026 and never end, so whatever today is, the
next days hold events of every busy status, private items and an override.
"""

from __future__ import annotations

from pathlib import Path

from calshare.calendars import add_calendar, get_calendar, list_calendars
from calshare.clock import Clock
from calshare.config import Settings
from calshare.importer import ImportResult, import_calendar
from calshare.levels import Level
from calshare.links import SIGNIN_ROUTE, RecipientForm, answer_address, answer_page_url
from calshare.publishing import Published, publish
from calshare.sharing import share
from calshare.store import Store

DEMO_OWNER = "Ann Demo <demo@example.org>"
DEMO_ADDRESS = "demo@example.org"  # the owner's address: other owners may have a "project" too
DEMO_DIR = Path(__file__).parent / "demo_calendars"
DEMO_CALENDARS = ("project", "family")
DEMO_INVITEE = "Bob Builder <bob@example.org>"


def seed_demo(store: Store, settings: Settings, clock: Clock) -> list[ImportResult]:
    """Add and import the demo calendars that are missing; leave existing ones alone."""
    existing = {calendar.name: calendar for calendar in list_calendars(store.db, DEMO_ADDRESS)}
    results = []
    for name in DEMO_CALENDARS:
        if name not in existing:
            add_calendar(
                store, clock, name, DEMO_OWNER, "Europe/Oslo", settings.calendars.default_tz
            )
        if name not in existing or existing[name].imported_at is None:
            results.append(
                import_calendar(
                    store,
                    settings,
                    clock,
                    name,
                    str(DEMO_DIR / f"{name}.ics"),
                    owner=DEMO_ADDRESS,
                )
            )
    if "project" not in existing:
        # An invitation to answer, so the inbox has something to do from the first run.
        share(store, settings, clock, "project", DEMO_INVITEE, Level.TITLES, owner=DEMO_ADDRESS)
    return results


def publish_demo(store: Store, settings: Settings, clock: Clock) -> Published | None:
    """Publish 'family' at free-busy the first time; its links are shown only then."""
    calendar = get_calendar(store.db, "family", DEMO_ADDRESS)
    live = store.db.execute(
        "SELECT 1 FROM publications WHERE calendar_id = ? AND revoked_at IS NULL", [calendar.id]
    ).fetchone()
    if live is not None or settings.policy.publish_max_level is None:
        return None
    return publish(store, settings, clock, "family", Level.FREE_BUSY, owner=DEMO_ADDRESS)


def how_to_answer(settings: Settings, smtp_host: str, smtp_port: int) -> str:
    """How to answer the demo invitation as Bob, aimed at the SMTP listener the daemon
    will actually use (``calshare demo --smtp``, which ``make run`` passes the same
    address as ``calshare serve --smtp``), not at a port written here."""
    maildir = settings.outbox.maildir
    domain = settings.mail.domain
    return (
        f"'project' is shared with bob@example.org; the daemon writes the invitation to "
        f"{maildir}/new (no [relay] is configured). To answer it as Bob, once it is there:\n"
        f"  TOKEN=$(grep -rhoE 'accept\\+[a-z2-7]{{26}}' {maildir}/new | head -1 | cut -d+ -f2)\n"
        f"  swaks --server {smtp_host} --port {smtp_port} --from bob@example.org "
        f"--to {answer_address(RecipientForm.ACCEPT, '$TOKEN', domain)}\n"
        f"or open {answer_page_url(settings.http.base_url, '$TOKEN')} in a browser and "
        "click Accept. Then "
        "`calshare shares` shows the share accepted, and the welcome mail with Bob's feed "
        f"link arrives in {maildir}/new: `curl` that link for the calendar at Bob's level.\n"
        f"As the owner, open {settings.http.base_url}{SIGNIN_ROUTE} and sign in as "
        f"{DEMO_ADDRESS}: the sign-in link arrives in {maildir}/new too. There you share, "
        "change levels, remove people, publish and e-mail the calendars."
    )
