"""A source's records, read on a thread of their own, taken by the send loop in bursts.

A source may block as long as it likes: a pipe waiting for its writer, a
generator waiting on the user's app. The send loop must not: it takes the
broker's answers, beats the health check and sees a stop request every half
second. So the source is read on a daemon thread into a bounded buffer, each
item already as kafka-python takes it, and the loop takes what is there.

The two threads hand items over without a lock per item: a deque's append
and popleft are atomic, and an Event is set only when the other side said
it waits, so a burst of a hundred records costs the loop one call.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Sequence

from producer.source import Prepared, Skipped, prepared

#: Items read ahead of the loop: enough to fill a burst many times, few enough
#: that a stop leaves little read and unsent.
BUFFERED = 1_000
#: How often a reader waiting for room looks whether the feed was stopped.
_ROOM_CHECK_S = 0.5


class Feed:
    """Items of *source*, prepared, in order; ``finished`` once it has no more."""

    def __init__(self, source: Iterable[object], limit: int = BUFFERED) -> None:
        self._source = source
        self._items: deque[Prepared | Skipped] = deque()
        self._limit = limit
        self._ready = threading.Event()
        self._taker_waits = False
        self._room = threading.Event()
        self._reader_waits = False
        self._stopped = False
        # Makes a stop a clean cut: an item is in the buffer, or was given after the stop.
        self._cut = threading.Lock()
        #: The source raised this instead of ending.
        self.error: BaseException | None = None
        self._ended = False
        self._thread = threading.Thread(target=self._read, name="source", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> int:
        """Take no more from the source; how many items it gave that were not taken.

        What the source is doing now is left to it (the thread is a daemon);
        anything it gives from now on is not taken.
        """
        with self._cut:
            self._stopped = True
            unsent = len(self._items)
        self._room.set()
        return unsent

    @property
    def finished(self) -> bool:
        """The source ended (or failed), and everything it gave was taken."""
        return self._ended and not self._items

    def take(self, most: int, timeout: float) -> list[Prepared | Skipped]:
        """Up to *most* items, waiting up to *timeout* when there are none yet."""
        items = self._items
        if not items and not self._ended:
            self._taker_waits = True
            self._ready.clear()
            # Looked at again after clearing: an item appended in between set nothing.
            if not items and not self._ended:
                self._ready.wait(timeout)
            self._taker_waits = False
        popleft = items.popleft
        taken = [popleft() for _ in range(min(most, len(items)))]
        if self._reader_waits and len(items) < self._limit:
            self._room.set()
        return taken

    def unread(self, items: Sequence[Prepared | Skipped]) -> None:
        """Put *items*, taken but not sent, back in front, in order."""
        self._items.extendleft(reversed(items))

    def _read(self) -> None:
        items, limit = self._items, self._limit
        try:
            for position, item in enumerate(self._source, start=1):
                ready = prepared(item, f"record {position}")
                with self._cut:
                    if self._stopped:
                        return
                    items.append(ready)
                if self._taker_waits:
                    self._ready.set()
                if len(items) >= limit:
                    self._wait_for_room()
        except Exception as exc:  # noqa: BLE001  (the user's source: any error is theirs)
            self.error = exc
        finally:
            self._ended = True
            self._ready.set()

    def _wait_for_room(self) -> None:
        self._reader_waits = True
        self._room.clear()
        while len(self._items) >= self._limit and not self._stopped:
            self._room.wait(_ROOM_CHECK_S)
            self._room.clear()
        self._reader_waits = False
