"""The owner console: owners sign in by email and share, publish and email their
calendars from the browser. One module per dialog; ``base`` holds what they share
(who is signed in, the anti-forgery check, the owner's calendar or a 404, the layout).
The pages call the same service functions as the CLI (sharing, publishing,
snapshots, importer): no owner action has a second implementation here.
"""

from __future__ import annotations

from aiohttp import web

from calshare.console import (
    base,
    calendar_pages,
    email_pages,
    publish_pages,
    sharing_pages,
    signin_pages,
)


def add_routes(app: web.Application) -> None:
    """Register every console page on the daemon's app."""
    base.register(app.router)
    calendar_pages.register(app.router)
    sharing_pages.register(app.router)
    publish_pages.register(app.router)
    email_pages.register(app.router)
    signin_pages.register(app.router)
