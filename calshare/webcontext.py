"""What the daemon's web handlers share: settings, clock, the two connections, the worker.

Its own module so the web app (``calshare.web``) and the owner console
(``calshare.console``), which the app registers, both reach it without importing
each other.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from aiohttp import web

from calshare.clock import Clock
from calshare.config import Settings
from calshare.errors import StillRunning
from calshare.feeds import FeedMaker
from calshare.store import Store

T = TypeVar("T")

SLOW_WORKERS = 2  # console jobs that wait on the network at once, for all owners


class SlowLane:
    """The threads for console work that waits on another server (a URL, a WebDAV folder).

    The web side's database worker is one thread that every feed, published page and
    console page waits for; an owner's fetch or WebDAV write there (up to its timeout)
    would stall them all. These jobs run here instead, each thread with its own Store
    connection (SQLite: a connection per thread; WAL and the busy timeout let its writes
    queue behind the worker's). ``busy`` holds the owners with a job running: at most
    one each, so one owner cannot take both threads. Only the loop's thread reads or
    changes ``busy``.
    """

    def __init__(self, db_path: Path, workers: int = SLOW_WORKERS) -> None:
        self._path = db_path
        self._local = threading.local()
        self._stores: list[Store] = []
        self._lock = threading.Lock()
        self.busy: set[str] = set()
        self.pool = ThreadPoolExecutor(
            workers, thread_name_prefix="web-slow", initializer=self._open
        )

    def _open(self) -> None:
        store = Store.open(self._path, same_thread=False)
        self._local.store = store
        with self._lock:
            self._stores.append(store)

    def store(self) -> Store:
        """This thread's connection: call only inside a job of ``pool``."""
        store: Store = self._local.store
        return store

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        with self._lock:
            for store in self._stores:
                store.close()
            self._stores.clear()


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

    slow: SlowLane

    async def run(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.worker, work)

    async def run_slow(self, owner: str, work: Callable[[Store], T]) -> T:
        """Run ``work(store)`` on the slow lane, with that thread's own Store.

        StillRunning if this owner's previous job has not finished (the owner stays
        busy until its thread is done, even when the browser gave up waiting).
        """
        lane = self.slow
        if owner in lane.busy:
            raise StillRunning("Your previous request is still running; try again in a moment")
        lane.busy.add(owner)
        loop = asyncio.get_running_loop()
        try:
            job = lane.pool.submit(lambda: work(lane.store()))
        except BaseException:
            lane.busy.discard(owner)
            raise
        job.add_done_callback(lambda _: loop.call_soon_threadsafe(lane.busy.discard, owner))
        return await asyncio.wrap_future(job)


CONTEXT = web.AppKey("calshare", WebContext)
