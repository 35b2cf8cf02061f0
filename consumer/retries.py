"""What happens to a record the handler failed on: when it is tried again, and when given up.

A failed record is never retried by sleeping in the poll loop: its
partition is sought back to it and paused until its backoff has passed,
while the loop goes on polling, so the group keeps the consumer, the other
partitions keep flowing and a stop is seen at once. Only one record per
partition is ever pending (order within a partition is kept), so the state
is one entry per partition.

Every pause is one of these, with a time to end, and ``due`` resumes it: no
partition stays paused once its retry is forgotten. kafka-python keeps no
pause across a revocation (a partition assigned again starts unpaused), and
a retry that outlives its pause is paused again when its records come back.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from common.backoff import Backoff
from common.clients import TopicPartition
from consumer.fate import gives_up


@dataclass
class Pending:
    """The record a partition waits on."""

    offset: int
    backoff: Backoff
    #: Calls of the handler that failed on it.
    attempts: int = 0
    #: When it may be tried again (the loop's clock).
    due: float = 0.0
    #: The handler has given up on it; only its dead-letter write is left.
    dead_letter_only: bool = False
    error: BaseException | None = field(default=None, repr=False)


class Retries:
    """The pending record of each partition, and the policy that decides its fate."""

    def __init__(
        self,
        attempts: int,
        initial_s: float,
        maximum_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.attempts = attempts
        self._initial_s = initial_s
        self._maximum_s = maximum_s
        self._clock = clock
        self._pending: dict[TopicPartition, Pending] = {}
        #: Partitions this consumer paused, and must resume.
        self._paused: set[TopicPartition] = set()

    def pending(self, partition: TopicPartition, offset: int) -> Pending | None:
        """The pending state of the record at *offset*, if it is the one retried."""
        found = self._pending.get(partition)
        return found if found is not None and found.offset == offset else None

    def failed(self, partition: TopicPartition, offset: int, error: BaseException) -> Pending:
        """Count a failed call of the handler on the record at *offset*."""
        found = self.pending(partition, offset)
        if found is None:
            found = Pending(offset, Backoff(self._initial_s, self._maximum_s))
            self._pending[partition] = found
        found.attempts += 1
        found.error = error
        return found

    def gives_up(self, pending: Pending) -> bool:
        """Whether the handler has had its tries on this record (:func:`gives_up`)."""
        assert pending.error is not None
        return gives_up(pending.error, pending.attempts, self.attempts)

    def wait(self, partition: TopicPartition, pending: Pending) -> float:
        """Hold *partition* until the pending record's next try; the wait in seconds."""
        delay = pending.backoff.next()
        pending.due = self._clock() + delay
        self._paused.add(partition)
        return delay

    def waiting(self, partition: TopicPartition) -> bool:
        """Whether *partition* waits for a retry that is not due yet."""
        found = self._pending.get(partition)
        return found is not None and partition in self._paused and self._clock() < found.due

    def due(self) -> list[TopicPartition]:
        """Paused partitions whose retry is due: to resume now."""
        if not self._paused:
            return []
        now = self._clock()
        ready = [
            tp for tp in self._paused if tp not in self._pending or self._pending[tp].due <= now
        ]
        self._paused.difference_update(ready)
        return ready

    def done(self, partition: TopicPartition) -> None:
        """The pending record went through (handled, or dead-lettered)."""
        self._pending.pop(partition, None)

    def keep_only(self, assigned: Collection[TopicPartition]) -> None:
        """Forget partitions no longer ours: their new owner starts from the committed offset."""
        for tp in [tp for tp in self._pending if tp not in assigned]:
            del self._pending[tp]
        self._paused.intersection_update(assigned)
