"""Records side by side: which may run now, on which worker, and what may be committed.

The poll loop hands every record it polls to :meth:`Dispatcher.submit`. A
record runs at once on a free worker unless a record it is ordered behind
is still running: in ``key`` order, the last one of its key taken before it
(a record without a key: the last keyless one of its partition); in
``partition`` order, the last one of its partition; in ``unordered``,
nothing. Records ordered behind a running one wait in its *lane*, in offset
order, and start as it ends: a record being retried holds back its lane,
and only its lane.

At most ``bound`` records are taken and not done: the poll loop asks
:meth:`room` before it polls, and polls no more than that (with every
partition paused when there is none, so the member keeps polling and stays
in its group). Per partition, only the offset below which every record is
done goes to the :class:`~consumer.offsets.OffsetTracker`
(``consumer/progress.py``): a commit never passes unfinished work.

When partitions go (a rebalance, a stop), :meth:`release` drops what is
waiting and says whether anything is still running on them; the caller
waits for that before committing, up to ``CONSUMER_DRAIN_TIMEOUT_MS``. A
worker still running past it is let be, and its result is never committed:
the new owner handles that record again.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Collection, Hashable, Iterable
from typing import Literal

import structlog
from kafka import TopicPartition as KafkaTopicPartition

from common import events
from consumer.client import TopicPartition
from consumer.fate import Outcome
from consumer.handler import Record
from consumer.offsets import OffsetTracker
from consumer.progress import PartitionProgress

Ordering = Literal["partition", "key", "unordered"]

#: A lane's name: records of one lane run one at a time, in offset order.
Lane = Hashable
#: What a worker runs, with what the dispatcher needs back when it ends.
_Work = tuple[TopicPartition, Record, PartitionProgress, Lane]
#: Tells a worker to end.
_STOP = None


def lane_of(ordering: Ordering) -> Callable[[Record], Lane]:
    """The lane of a record in *ordering*."""
    if ordering == "key":
        # A keyless record is ordered with its partition's other keyless ones.
        return lambda r: ("k", r.key) if r.key is not None else ("p", r.partition)
    if ordering == "partition":
        return lambda r: r.partition
    # Each record its own lane: nothing waits for anything.
    return lambda r: (r.partition, r.offset)


class Dispatcher:
    """Runs records on a pool of workers in their order's lanes, at most ``bound`` at a time."""

    def __init__(
        self,
        settle: Callable[[Record], Outcome],
        ordering: Ordering,
        bound: int,
        offsets: OffsetTracker,
        *,
        log: structlog.typing.FilteringBoundLogger,
        workers: int | None = None,
    ) -> None:
        self._settle = settle
        self._lane_of = lane_of(ordering)
        self.bound = bound
        self._offsets = offsets
        self._changed = threading.Condition()
        #: The progress of each partition we own; a new one per assignment.
        self._progress: dict[TopicPartition, PartitionProgress] = {}
        #: Lanes with records taken: the first is running, unless the lane is stalled.
        self._lanes: dict[Lane, deque[_Work]] = {}
        #: Lanes whose first record has not started (held, or a worker failed).
        self._stalled: set[Lane] = set()
        #: Records running now, per partition (also those of partitions released).
        self._running: dict[TopicPartition, int] = {}
        #: Records taken and not done (running and waiting), of partitions we own.
        self._outstanding = 0
        #: No record starts while held: an expelled member, a failure, a stop.
        self._held = False
        self._stopping = False
        #: Partitions being revoked: their records are not tried again.
        self._going: set[TopicPartition] = set()
        #: The record the handler gave up on with no dead-letter topic (with None), or
        #: the one a worker's own code failed on (with its error).
        self.failure: tuple[Record, BaseException | None] | None = None
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._log = log
        self._threads = [
            threading.Thread(target=self._work, name=f"handler-{n}", daemon=True)
            for n in range(workers or bound)
        ]
        for thread in self._threads:
            thread.start()

    # --- The poll loop's side -------------------------------------------------------------

    def room(self) -> int:
        """How many more records may be taken now."""
        return self.bound - self._outstanding

    def wait_for_room(self, timeout_s: float) -> int:
        """Wait up to *timeout_s* for room, if there is none; the room there is."""
        with self._changed:
            self._changed.wait_for(lambda: self._outstanding < self.bound, timeout_s)
            return self.bound - self._outstanding

    @property
    def in_flight(self) -> tuple[int, int]:
        """Records running, and records waiting behind them in their lanes."""
        with self._changed:
            running = sum(self._running.values())
            return running, self._outstanding - running

    def submit(self, partition: TopicPartition, records: Iterable[Record]) -> None:
        """Take *partition*'s *records*, in offset order: each runs when its lane is free."""
        with self._changed:
            progress = self._progress.get(partition)
            if progress is None:
                progress = self._progress[partition] = PartitionProgress()
            lanes, lane_of = self._lanes, self._lane_of
            for record in records:
                progress.take(record.offset)
                self._outstanding += 1
                work = (partition, record, progress, lane_of(record))
                lane = lanes.get(work[3])
                if lane is not None:
                    lane.append(work)
                    continue
                lanes[work[3]] = deque((work,))
                if self._held:
                    self._stalled.add(work[3])
                else:
                    self._start(work)

    def hold(self) -> None:
        """Start nothing more until :meth:`go_on`: the group may have given our partitions
        to another member."""
        with self._changed:
            self._held = True

    def go_on(self) -> None:
        """Start what waits again, after :meth:`hold`."""
        with self._changed:
            if self._held and self.failure is None and not self._stopping:
                self._held = False
                self._start_stalled()

    def release(self, partitions: Collection[TopicPartition]) -> None:
        """*partitions* are going: drop their waiting records, and end their retries;
        records running end on their own (:meth:`busy`), and their offsets still count
        until :meth:`forget`."""
        with self._changed:
            self._drop_waiting(partitions)
            self._going.update(partitions)
            self._changed.notify_all()

    def forget(self, partitions: Collection[TopicPartition]) -> None:
        """*partitions* are gone: nothing more of theirs is committed."""
        with self._changed:
            self._drop_waiting(partitions)
            for partition in partitions:
                self._going.discard(partition)
                if self._progress.pop(partition, None) is not None:
                    # Their running records no longer count against the bound.
                    self._outstanding -= self._running.get(partition, 0)
            self._changed.notify_all()

    def busy(self, partitions: Collection[TopicPartition]) -> bool:
        """Whether a record of *partitions* is running."""
        with self._changed:
            return any(self._running.get(tp) for tp in partitions)

    def stop(self, timeout_s: float) -> bool:
        """Start nothing more, and wait up to *timeout_s* for what runs; whether it ended.

        What is done by then may be committed; the workers end once idle.
        """
        with self._changed:
            self._stopping = self._held = True
            self._drop_waiting(list(self._progress))
            self._changed.notify_all()
            ended = self._changed.wait_for(lambda: not any(self._running.values()), timeout_s)
        for _ in self._threads:
            self._queue.put(_STOP)
        return ended

    # --- The workers' side ----------------------------------------------------------------

    def keeps(self, record: Record, seconds: float) -> bool:
        """Wait *seconds* before *record* is tried again, unless its partition goes or the
        consumer stops first; whether it is still to be tried."""
        partition = KafkaTopicPartition(record.topic, record.partition)
        with self._changed:
            gone = lambda: (  # noqa: E731
                self._stopping or partition in self._going or partition not in self._progress
            )
            return not self._changed.wait_for(gone, seconds)

    def _work(self) -> None:
        while (work := self._queue.get()) is not _STOP:
            record = work[1]
            try:
                outcome = self._settle(record)
            except BaseException as error:  # noqa: BLE001  (ours, not the handler's: say it, stop)
                self._log.error(
                    events.WORKER_FAILED,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    exc_info=error,
                )
                self.failure = self.failure or (record, error)
                outcome = Outcome.FAILED
            self._finish(work, outcome)

    def _finish(self, work: _Work, outcome: Outcome) -> None:
        partition, record, progress, lane_name = work
        with self._changed:
            self._running[partition] -= 1
            ours = self._progress.get(partition) is progress
            if ours:
                self._outstanding -= 1
                if outcome is Outcome.OK or outcome is Outcome.DEAD_LETTERED:
                    committable = progress.finish(record.offset)
                    if committable is not None:
                        self._offsets.processed(partition, committable)
                elif outcome is Outcome.FAILED:
                    self._held = True
                    self.failure = self.failure or (record, None)
            lane = self._lanes.get(lane_name)
            if lane and lane[0] is work:
                lane.popleft()
                if not lane:
                    del self._lanes[lane_name]
                elif self._held:
                    self._stalled.add(lane_name)
                else:
                    self._start(lane[0])
            self._changed.notify_all()

    # --- Under the lock -------------------------------------------------------------------

    def _start(self, work: _Work) -> None:
        partition = work[0]
        self._running[partition] = self._running.get(partition, 0) + 1
        self._queue.put(work)

    def _start_stalled(self) -> None:
        for lane_name in self._stalled:
            lane = self._lanes.get(lane_name)
            if lane:
                self._start(lane[0])
        self._stalled.clear()

    def _drop_waiting(self, partitions: Collection[TopicPartition]) -> None:
        gone = set(partitions)
        for lane_name, lane in list(self._lanes.items()):
            # A running first record stays until it ends; a stalled one never started.
            first = 0 if lane_name in self._stalled else 1
            kept = [work for work in list(lane)[first:] if work[0] not in gone]
            dropped = len(lane) - first - len(kept)
            if not dropped:
                continue
            self._outstanding -= dropped
            rest = deque(list(lane)[:first] + kept)
            if rest:
                self._lanes[lane_name] = rest
            else:
                del self._lanes[lane_name]
                self._stalled.discard(lane_name)
