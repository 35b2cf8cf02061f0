"""What the consumer does when the group moves partitions: commit, then log the new split.

kafka-python 3 calls these hooks on its IO thread, where a blocking commit()
is refused; the async listener awaits commit_async() instead, which keeps the
heartbeat running and still finishes the commit before the partitions go.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from typing import Protocol

import structlog
from kafka import AsyncConsumerRebalanceListener
from kafka.errors import KafkaError

from common import events
from common.clients import ConsumerClient, Offsets, TopicPartition
from consumer import metrics
from consumer.offsets import OffsetTracker, record_commit
from consumer.outputs import OutputFailed, Outputs


def by_topic(partitions: Iterable[TopicPartition]) -> dict[str, list[int]]:
    """``{topic: [partitions]}``, sorted: the walkthrough's "Partition allocation" map."""
    grouped: dict[str, list[int]] = {}
    for tp in partitions:
        grouped.setdefault(tp.topic, []).append(tp.partition)
    return {topic: sorted(parts) for topic, parts in sorted(grouped.items())}


async def commit(consumer: ConsumerClient, offsets: OffsetTracker, pending: Offsets) -> None:
    """Commit *pending*, offsets processed; count and log a failure."""
    if not pending:
        return
    try:
        await consumer.commit_async(pending)
    except KafkaError as exc:
        record_commit(offsets, pending, exc)
    else:
        record_commit(offsets, pending, None)


#: How often a revocation looks again whether its records in flight are done.
DRAIN_CHECK_S = 0.02


class Drain(Protocol):
    """Records still in flight on partitions that go (``consumer/dispatch.py``)."""

    def release(self, partitions: Collection[TopicPartition]) -> None: ...
    def busy(self, partitions: Collection[TopicPartition]) -> bool: ...
    def forget(self, partitions: Collection[TopicPartition]) -> None: ...
    def rewinds(self) -> dict[TopicPartition, int]: ...


class RebalanceListener(AsyncConsumerRebalanceListener):  # type: ignore[misc]
    """Commits before partitions are taken away and logs every change of ownership.

    With records in flight (a :class:`Drain`), a revocation first waits for
    those of the partitions that go, up to *drain_timeout_s*, so that what
    they finish is committed and no record is handled by two members at once.
    """

    def __init__(
        self,
        consumer: ConsumerClient,
        offsets: OffsetTracker,
        group_id: str,
        on_assigned: Callable[[], object] = lambda: None,
        *,
        drain: Drain | None = None,
        drain_timeout_s: float = 0.0,
        outputs: Outputs | None = None,
        transact: Callable[[Offsets], bool] | None = None,
        abort: Callable[[str], None] | None = None,
    ) -> None:
        self._consumer = consumer
        self._outputs = outputs
        #: Exactly once: commits offsets with the outputs in one transaction, or aborts it.
        self._transact = transact
        self._abort = abort
        self._offsets = offsets
        self._on_assigned = on_assigned
        self._drain = drain
        self._drain_timeout_s = drain_timeout_s
        self._log = structlog.get_logger().bind(group_id=group_id)

    async def _drained(self, partitions: set[TopicPartition]) -> None:
        """Wait for the records in flight on *partitions*, yielding to the IO loop."""
        drain = self._drain
        if drain is None:
            return
        drain.release(partitions)
        deadline = time.monotonic() + self._drain_timeout_s
        while drain.busy(partitions) and time.monotonic() < deadline:
            await self._consumer.io_sleep(DRAIN_CHECK_S)
        if drain.busy(partitions):
            self._log.warning(
                events.RECORDS_ABANDONED,
                partitions=by_topic(partitions),
                drain_timeout_ms=int(self._drain_timeout_s * 1000),
                reason="revoked",
            )

    async def _outputs_acknowledged(self, partitions: set[TopicPartition]) -> bool:
        """Wait, within the drain's time, for the outputs sent so far: whether all are
        acknowledged. When not, nothing of *partitions* is committed, and their new owner
        handles those records again (an output failed stops the consumer at its next poll)."""
        outputs = self._outputs
        if outputs is None:
            return True
        deadline = time.monotonic() + self._drain_timeout_s
        try:
            while not outputs.acknowledged():
                if time.monotonic() >= deadline:
                    raise TimeoutError("not acknowledged in time")
                await self._consumer.io_sleep(DRAIN_CHECK_S)
        except (OutputFailed, TimeoutError) as error:
            self._log.warning(
                events.OUTPUTS_UNACKNOWLEDGED,
                partitions=by_topic(partitions),
                error=error.detail if isinstance(error, OutputFailed) else str(error),
                reason="revoked",
            )
            return False
        return True

    def _owned(self, partitions: set[TopicPartition]) -> None:
        metrics.PARTITION_OWNED.clear()
        metrics.ASSIGNED_PARTITIONS.clear()
        for topic, numbers in by_topic(partitions).items():
            metrics.ASSIGNED_PARTITIONS.labels(topic).set(len(numbers))
            for number in numbers:
                metrics.PARTITION_OWNED.labels(topic, str(number)).set(1)
        metrics.LAG.clear()

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        revoked = set(revoked)
        if not revoked:
            return
        # The new owner starts from the committed offset: commit before letting go,
        # so that a rebalance re-delivers nothing.
        await self._drained(revoked)
        if self._transact is not None:
            # The transaction holds the outputs of every partition: commit it all.
            everything = self._offsets.uncommitted()
            if everything:
                self._transact(everything)
        else:
            pending = self._offsets.uncommitted(revoked)
            if pending and await self._outputs_acknowledged(revoked):
                await commit(self._consumer, self._offsets, pending)
        self._offsets.forget(revoked)
        if self._drain is not None:
            self._drain.forget(revoked)
        remaining = set(self._consumer.assignment()) - revoked
        self._owned(remaining)
        self._log.info(
            events.PARTITIONS_REVOKED, revoked=by_topic(revoked), assignment=by_topic(remaining)
        )

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        assigned = set(assigned)
        assignment = set(self._consumer.assignment()) | assigned
        if self._drain is not None:
            # Given straight back, a partition keeps its fetch position, which is past
            # records dropped when it went: fetch them again.
            for partition, offset in self._drain.rewinds().items():
                if partition in assignment:
                    self._consumer.seek(partition, offset)
        self._on_assigned()
        metrics.REBALANCES.inc()
        self._owned(assignment)
        self._log.info(
            events.PARTITIONS_ASSIGNED, assigned=by_topic(assigned), assignment=by_topic(assignment)
        )

    async def on_partitions_lost(self, lost: Iterable[TopicPartition]) -> None:
        # Evicted from the group: another member may own these already, so a
        # commit now could move its offsets backwards. What was processed and
        # not committed will be delivered again (at least once, never lost).
        lost = set(lost)
        if self._abort is not None:
            # The open transaction holds outputs of records another member owns now.
            self._abort("partitions lost")
        if self._drain is not None:
            self._drain.release(lost)
            self._drain.forget(lost)
        self._offsets.forget(lost)
        remaining = set(self._consumer.assignment()) - lost
        self._owned(remaining)
        self._log.warning(
            events.PARTITIONS_LOST, lost=by_topic(lost), assignment=by_topic(remaining)
        )
