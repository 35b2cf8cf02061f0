"""The one asyncio event loop of the process, where an ``async def`` handler runs.

The poll loop and the workers are threads; an async handler's coroutines
all run on this loop, on a thread of its own, so that the clients it opens
(an ``aiohttp`` session, an ``asyncpg`` pool) live on one loop for the life
of the consumer. Each record is a task of the loop (``consumer/dispatch.py``),
counted against ``CONSUMER_MAX_IN_FLIGHT`` as a plain function's worker is.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class EventLoop:
    """A loop started on first use, stopped by :meth:`close`."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run *awaitable* on the loop and wait for its result (or its exception)."""
        return asyncio.run_coroutine_threadsafe(_awaited(awaitable), self._started()).result()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The asyncio loop, running on its thread."""
        return self._started()

    def close(self) -> None:
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="handler-loop", daemon=True
                )
                self._thread.start()
            return self._loop


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable
