"""What the daemon's web handlers share: settings, clock, the two connections, the worker.

Its own module so the web app (``calshare.web``) and the owner console
(``calshare.console``), which the app registers, both reach it without importing
each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web

from calshare.clock import Clock
from calshare.config import Settings
from calshare.feeds import FeedMaker
from calshare.store import Store

T = TypeVar("T")


@dataclass
class WebContext:
    settings: Settings
    clock: Clock
    store: Store  # used only on the worker thread
    reader: Store  # used only on the event loop's thread: indexed reads, microseconds each
    worker: ThreadPoolExecutor
    feeds: FeedMaker
    on_mail_queued: Callable[[], None]
    csrf_key: bytes  # read once at start: the loop must never touch the worker's connection

    async def run(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.worker, work)


CONTEXT = web.AppKey("calshare", WebContext)
