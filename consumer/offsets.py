"""Which offsets are processed, and which of those the group already has committed."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import structlog
from kafka import OffsetAndMetadata

from common import events
from common.clients import Offsets, TopicPartition
from consumer import metrics


class OffsetTracker:
    """Next offset to commit per partition, shared by the poll and IO threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._processed: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}

    def processed(self, partition: TopicPartition, next_offset: int) -> None:
        with self._lock:
            self._processed[partition] = next_offset

    def next_offset(self, partition: TopicPartition) -> int | None:
        with self._lock:
            return self._processed.get(partition)

    def uncommitted(
        self, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        """Offsets processed but not yet known to be committed."""
        with self._lock:
            wanted = self._processed.keys() if partitions is None else set(partitions)
            return {
                tp: OffsetAndMetadata(self._processed[tp], "", -1)
                for tp in wanted
                if tp in self._processed and self._committed.get(tp) != self._processed[tp]
            }

    def committed(self, offsets: Offsets) -> None:
        with self._lock:
            for tp, meta in offsets.items():
                self._committed[tp] = meta.offset

    def fetched_from(self, partition: TopicPartition, offset: int) -> None:
        """The first record fetched of *partition* is at *offset*: where the group's
        committed offset was, if none is known yet."""
        with self._lock:
            self._committed.setdefault(partition, offset)

    def rewound(self) -> dict[TopicPartition, int]:
        """Forget what was processed since the last commit: the offsets to go back to."""
        with self._lock:
            self._processed = dict(self._committed)
            return dict(self._committed)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Drop partitions we no longer own; their new owner tracks them now."""
        with self._lock:
            for tp in partitions:
                self._processed.pop(tp, None)
                self._committed.pop(tp, None)


def record_commit(
    tracker: OffsetTracker,
    offsets: Offsets,
    error: BaseException | None,
) -> None:
    """Count a commit's outcome. A failed commit loses nothing: its offsets stay
    uncommitted and go out with the next batch or the revocation."""
    if error is None:
        tracker.committed(offsets)
        metrics.COMMITS.inc()
        return
    metrics.COMMIT_FAILURES.labels(type(error).__name__).inc()
    structlog.get_logger().warning(
        events.OFFSETS_COMMIT_FAILED, partitions=len(offsets), error=str(error)
    )
