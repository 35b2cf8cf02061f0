"""How far a partition may be committed while its records are done out of order.

Kafka keeps one committed offset per partition: everything below it is
behind the group. When records of one partition are handled side by side,
a later one is often done before an earlier one; committing past the
earlier one would lose it in a crash (what Faust did, robinhood/faust#682).
So the offset that may be committed is the lowest one not done yet, and
nothing else is written anywhere: no commit metadata (Event Hubs takes at
most 1 KB of it), nothing to read back at the next start. After a crash,
what comes again is what was in flight, or done past that offset.
"""

from __future__ import annotations

from collections import deque


class PartitionProgress:
    """The records of one partition taken and not yet done, in offset order."""

    __slots__ = ("_done", "_taken")

    def __init__(self) -> None:
        #: Offsets handed out, lowest first; the front one is the commit's limit.
        self._taken: deque[int] = deque()
        #: Offsets done while an earlier one is not.
        self._done: set[int] = set()

    def __len__(self) -> int:
        """Records taken and not done."""
        return len(self._taken) - len(self._done)

    @property
    def limit(self) -> int | None:
        """The lowest offset taken and not done: the commit stops below it; None if none."""
        return self._taken[0] if self._taken else None

    @property
    def ahead(self) -> int:
        """Records past the offset that may be committed: not done, or done after one that
        is not. A crash now would have them all delivered again."""
        return len(self._taken)

    def take(self, offset: int) -> None:
        """The record at *offset* is handed out; offsets come in increasing order."""
        self._taken.append(offset)

    def finish(self, offset: int) -> int | None:
        """The record at *offset* is done; the offset that may now be committed, when
        it moved (the next one to read: one past the last record done in a row)."""
        taken = self._taken
        if not taken or taken[0] != offset:
            self._done.add(offset)
            return None
        taken.popleft()
        last = offset
        done = self._done
        while taken and taken[0] in done:
            last = taken.popleft()
            done.discard(last)
        return last + 1
