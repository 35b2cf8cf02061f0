"""Records side by side: which may run now, on which worker, and what may be committed.

The poll loop hands every record it polls to :meth:`Dispatcher.submit`. A
record runs at once on a free worker unless a record it is ordered behind
is still running: in ``key`` order, the last one of its key taken before it
(a record without a key: the last keyless one of its partition); in
``partition`` order, the last one of its partition; in ``unordered``,
nothing. Records ordered behind a running one wait in its *lane*, in offset
order, and start as it ends: a record being retried holds back its lane,
and only its lane.

At most ``bound`` records run at once (the workers), and at most ``window``
(``AHEAD_PER_SLOT`` of the order, times ``bound``) are taken past the offsets that may be committed
(running, waiting in their lanes, or done after one that is not): the poll
loop asks :meth:`wait_for_room` before it polls, and polls no more than
that (with every partition paused when there is none, so the member keeps
polling and stays in its group). Per partition, only the offset below which
every record is done goes to the :class:`~consumer.offsets.OffsetTracker`
(``consumer/progress.py``): a commit never passes unfinished work.

When partitions go (a rebalance), :meth:`release` ends their retries and
:meth:`busy` says whether records of theirs are still running or waiting;
the rebalance listener waits for them up to ``CONSUMER_DRAIN_TIMEOUT_MS``,
commits, and :meth:`forget` drops what is left: a record still running
then is let be, and its result is never committed; the new owner handles it
again. A partition the group gives back at once keeps kafka-python's fetch
position, past records dropped here: :meth:`rewinds` says where to seek it.
A stop (:meth:`stop`) drains the same way.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Hashable, Iterable, Sequence
from typing import Literal

import structlog
from kafka import TopicPartition as KafkaTopicPartition

from common import events
from common.clients import TopicPartition
from consumer.fate import Outcome
from consumer.handler import Record
from consumer.offsets import OffsetTracker
from consumer.progress import PartitionProgress

Ordering = Literal["partition", "key", "unordered"]

#: A lane's name: records of one lane run one at a time, in offset order.
Lane = Hashable
#: What a worker runs, with what the dispatcher needs back when it ends.
_Work = tuple[TopicPartition, Sequence[Record], PartitionProgress, Lane]
#: Settles a unit of work (one record, or a batch of one partition): each record's
#: outcome, in order; records past the last outcome given were not settled.
Settles = Callable[[Sequence[Record]], Sequence[Outcome]]
#: Tells a worker to end.
_STOP = None
#: Records taken past the committable offsets, per worker. In key and partition order,
#: enough waiting that the workers find records of free lanes although kafka-python hands
#: out one partition's fetch at a time; unordered, every record is free at once, and the
#: window only lets other records go on past one retried. Either way memory and what a
#: crash repeats stay bounded.
AHEAD_PER_SLOT: dict[Ordering, int] = {"key": 64, "partition": 64, "unordered": 16}


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
    """Runs records in their order's lanes, at most ``bound`` at a time: on a pool of
    workers, or as tasks of an event loop (:meth:`on_loop`)."""

    def __init__(
        self,
        settle: Settles,
        ordering: Ordering,
        bound: int,
        offsets: OffsetTracker,
        *,
        log: structlog.typing.FilteringBoundLogger,
        loop: asyncio.AbstractEventLoop | None = None,
        settle_async: Callable[[Record], Awaitable[Outcome]] | None = None,
        batches: tuple[int, float] | None = None,
    ) -> None:
        self._settle = settle
        self._loop = loop
        self._settle_async = settle_async
        #: A batch handler's most records per call, and longest wait for more (seconds).
        self._batches = batches
        #: Per partition, a batch short of its size, and until when it waits for more.
        self._partial: dict[TopicPartition, tuple[list[Record], float]] = {}
        self._lane_of = lane_of(ordering)
        self.bound = bound
        #: Most records taken past the offsets that may be committed.
        self.window = AHEAD_PER_SLOT[ordering] * bound
        self._offsets = offsets
        self._log = log
        self._changed = threading.Condition()
        #: The progress of each partition we own; a new one per assignment.
        self._progress: dict[TopicPartition, PartitionProgress] = {}
        #: Lanes with records taken: the first is running, unless the lane is stalled.
        self._lanes: dict[Lane, deque[_Work]] = {}
        #: Lanes whose first record has not started: held back.
        self._stalled: set[Lane] = set()
        #: Records started, per partition (also those of partitions forgotten): running, or
        #: ready for the next free worker.
        self._running: dict[TopicPartition, int] = {}
        #: Units of work (records, or batches) running, at most ``bound``; started ones
        #: past it wait here, in order.
        self._active = 0
        #: Units of work in the lanes: running, ready, or waiting.
        self._entries = 0
        self._ready: deque[_Work] = deque()
        #: The loop's tasks, kept from the garbage collector until they end.
        self._tasks: set[asyncio.Task[None]] = set()
        #: No record starts while held: an expelled member, a failure, a stop's end.
        self._held = False
        #: Retries end: the consumer stops.
        self._stopping = False
        #: Partitions being revoked: their retries end, their waiting records still run.
        self._going: set[TopicPartition] = set()
        #: Where to seek partitions forgotten with records not done, if given back at once.
        self._rewinds: dict[TopicPartition, int] = {}
        #: The record the handler gave up on with no dead-letter topic (with None), or
        #: the one a worker's own code failed on (with its error).
        self.failure: tuple[Record, BaseException | None] | None = None
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"handler-{n}", daemon=True)
            for n in range(0 if loop is not None else bound)
        ]
        for thread in self._threads:
            thread.start()

    @classmethod
    def on_loop(
        cls,
        settle: Callable[[Record], Awaitable[Outcome]],
        loop: asyncio.AbstractEventLoop,
        ordering: Ordering,
        bound: int,
        offsets: OffsetTracker,
        *,
        log: structlog.typing.FilteringBoundLogger,
    ) -> Dispatcher:
        """A dispatcher whose records run as tasks of *loop*: an ``async def`` handler's."""

        def on_a_thread(records: Sequence[Record]) -> Sequence[Outcome]:
            raise AssertionError("an async handler's records run on the loop")

        return cls(on_a_thread, ordering, bound, offsets, log=log, loop=loop, settle_async=settle)

    # --- The poll loop's side -------------------------------------------------------------

    def wait_for_room(self, timeout_s: float) -> int:
        """Wait up to *timeout_s* for room, if there is none; how many records may be taken."""
        with self._changed:
            self._changed.wait_for(lambda: self._room() > 0, timeout_s)
            return self._room()

    def taken(self) -> int:
        """Records taken past the committable offsets: the window's use."""
        with self._changed:
            return sum(progress.ahead for progress in self._progress.values())

    @property
    def in_flight(self) -> tuple[int, int]:
        """Records (with a batch handler, batches) running, and waiting: behind others in
        their lanes, or for a free worker."""
        with self._changed:
            return self._active, self._entries - self._active

    def submit(
        self, partition: TopicPartition, records: Iterable[Record], now: float = 0.0
    ) -> None:
        """Take *partition*'s *records*, in offset order: each runs when its lane is free
        (with a batch handler, in batches; a short one may wait for more until *now* plus
        the batch wait)."""
        with self._changed:
            progress = self._progress.get(partition)
            if progress is None:
                progress = self._progress[partition] = PartitionProgress()
            if self._batches is not None:
                self._take_batches(partition, progress, list(records), now)
                return
            lane_of = self._lane_of
            for record in records:
                progress.take(record.offset)
                self._enter((partition, (record,), progress, lane_of(record)))

    def flush(self, now: float) -> float | None:
        """Start the short batches whose wait has passed; when the next one is due."""
        with self._changed:
            for partition, (records, due) in list(self._partial.items()):
                if due <= now:
                    del self._partial[partition]
                    self._enter((partition, records, self._progress[partition], partition))
            return min((due for _, due in self._partial.values()), default=None)

    def _take_batches(
        self,
        partition: TopicPartition,
        progress: PartitionProgress,
        records: list[Record],
        now: float,
    ) -> None:
        assert self._batches is not None
        size, wait_s = self._batches
        for record in records:
            progress.take(record.offset)
        held, due = self._partial.pop(partition, ([], now + wait_s))
        records = held + records
        while len(records) >= size or (records and wait_s <= 0):
            batch, records = records[:size], records[size:]
            self._enter((partition, batch, progress, partition))
        if records:
            self._partial[partition] = (records, due)

    def _enter(self, work: _Work) -> None:
        """Put *work* at the end of its lane; start it if the lane was free."""
        lane_name = work[3]
        self._entries += 1
        lane = self._lanes.get(lane_name)
        if lane is not None:
            lane.append(work)
            return
        self._lanes[lane_name] = deque((work,))
        if self._held:
            self._stalled.add(lane_name)
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
                for lane_name in self._stalled:
                    self._start(self._lanes[lane_name][0])
                self._stalled.clear()

    def stop(self, timeout_s: float) -> bool:
        """Finish what was taken, within *timeout_s* (retries end); whether it all ended.

        What is done by then may be committed; what waits is dropped; the
        workers end once idle.
        """
        with self._changed:
            self._stopping = True
            self._start_partial(list(self._partial))
            self._changed.notify_all()
            ended = self._changed.wait_for(
                lambda: not any(self._running.values()) and (self._held or not self._lanes),
                timeout_s,
            )
            self._held = True
            self._drop_waiting(set(self._progress))
        for _ in self._threads:
            self._queue.put(_STOP)
        return ended

    # --- The rebalance listener's side ----------------------------------------------------

    def release(self, partitions: Collection[TopicPartition]) -> None:
        """*partitions* are going: their retries end; what they have taken still runs."""
        with self._changed:
            self._going.update(partitions)
            self._start_partial(partitions)
            self._changed.notify_all()

    def busy(self, partitions: Collection[TopicPartition]) -> bool:
        """Whether a record of *partitions* is running, or waiting to."""
        with self._changed:
            if any(self._running.get(tp) for tp in partitions):
                return True
            if self._held:
                return False
            gone = set(partitions)
            return any(work[0] in gone for lane in self._lanes.values() for work in lane)

    def forget(self, partitions: Collection[TopicPartition]) -> None:
        """*partitions* are gone: what waits is dropped, nothing more of theirs is committed."""
        with self._changed:
            self._drop_waiting(set(partitions))
            for partition in partitions:
                self._going.discard(partition)
                self._partial.pop(partition, None)
                progress = self._progress.pop(partition, None)
                if progress is not None and progress.limit is not None:
                    self._rewinds[partition] = progress.limit
            self._changed.notify_all()

    def rewinds(self) -> dict[TopicPartition, int]:
        """Partitions forgotten with records not done, and the offset to fetch them from
        again should the group give them straight back (kafka-python keeps the position
        of a partition kept across a rebalance); asked once per assignment."""
        with self._changed:
            found, self._rewinds = self._rewinds, {}
            return found

    # --- The workers' side ----------------------------------------------------------------

    def keeps(self, record: Record, seconds: float) -> bool:
        """Wait *seconds* before *record* is tried again, unless its partition goes or the
        consumer stops first; whether it is still to be tried."""
        partition = KafkaTopicPartition(record.topic, record.partition)

        def ended() -> bool:
            return self._stopping or partition in self._going or partition not in self._progress

        with self._changed:
            return not self._changed.wait_for(ended, seconds)

    def _work(self) -> None:
        while (work := self._queue.get()) is not _STOP:
            try:
                outcomes = self._settle(work[1])
            except BaseException as error:  # noqa: BLE001  (ours, not the handler's: say it, stop)
                outcomes = (self._worker_failed(work[1][0], error),)
            self._finish(work, outcomes)

    async def _work_async(self, work: _Work) -> None:
        assert self._settle_async is not None
        try:
            outcomes: Sequence[Outcome] = (await self._settle_async(work[1][0]),)
        except BaseException as error:  # noqa: BLE001  (ours, not the handler's: say it, stop)
            outcomes = (self._worker_failed(work[1][0], error),)
        self._finish(work, outcomes)

    def _worker_failed(self, record: Record, error: BaseException) -> Outcome:
        self._log.error(
            events.WORKER_FAILED,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            exc_info=error,
        )
        with self._changed:
            self.failure = self.failure or (record, error)
        return Outcome.FAILED

    def _finish(self, work: _Work, outcomes: Sequence[Outcome]) -> None:
        partition, records, progress, lane_name = work
        with self._changed:
            self._running[partition] -= 1
            self._active -= 1
            ours = self._progress.get(partition) is progress
            ended = Outcome.OK
            for record, outcome in zip(records, outcomes, strict=False):
                ended = outcome
                if not ours:
                    continue
                if outcome is Outcome.OK or outcome is Outcome.DEAD_LETTERED:
                    committable = progress.finish(record.offset)
                    if committable is not None:
                        self._offsets.processed(partition, committable)
                elif outcome is Outcome.FAILED:
                    self._held = True
                    self.failure = self.failure or (record, None)
            if len(outcomes) < len(records) and ended is Outcome.OK:
                ended = Outcome.ABANDONED
            lane = self._lanes[lane_name]
            lane.popleft()
            self._entries -= 1
            if ended is Outcome.ABANDONED or ended is Outcome.FAILED:
                # Its partition's records behind it may not pass it: fetched again later.
                self._drop_from(lane_name, {partition}, first=0)
                lane = self._lanes.get(lane_name, deque())
            if not lane:
                self._lanes.pop(lane_name, None)
            elif self._held:
                self._stalled.add(lane_name)
            else:
                self._start(lane[0])
            while self._ready and self._active < self.bound:
                self._run(self._ready.popleft())
            self._changed.notify_all()

    # --- Under the lock -------------------------------------------------------------------

    def _start_partial(self, partitions: Iterable[TopicPartition]) -> None:
        """Start the short batches of *partitions* now: they go, or the consumer stops."""
        for partition in partitions:
            found = self._partial.pop(partition, None)
            if found is not None:
                self._enter((partition, found[0], self._progress[partition], partition))

    def _room(self) -> int:
        ahead = sum(progress.ahead for progress in self._progress.values())
        return self.window - ahead

    def _start(self, work: _Work) -> None:
        partition = work[0]
        self._running[partition] = self._running.get(partition, 0) + 1
        if self._active < self.bound:
            self._run(work)
        else:
            self._ready.append(work)

    def _run(self, work: _Work) -> None:
        self._active += 1
        loop = self._loop
        if loop is None:
            self._queue.put(work)
        elif _running_loop() is loop:
            self._spawn(work)
        else:
            loop.call_soon_threadsafe(self._spawn, work)

    def _spawn(self, work: _Work) -> None:
        assert self._loop is not None
        task = self._loop.create_task(self._work_async(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _drop_waiting(self, partitions: set[TopicPartition]) -> None:
        for lane_name in list(self._lanes):
            # A running first record stays until it ends; a stalled one never started.
            self._drop_from(lane_name, partitions, first=0 if lane_name in self._stalled else 1)

    def _drop_from(self, lane_name: Lane, partitions: set[TopicPartition], *, first: int) -> None:
        """Drop the records of *partitions* from a lane, from its *first* on."""
        lane = self._lanes.get(lane_name)
        if lane is None:
            return
        kept = list(lane)[:first]
        kept += [work for work in list(lane)[first:] if work[0] not in partitions]
        self._entries -= len(lane) - len(kept)
        if kept:
            self._lanes[lane_name] = deque(kept)
        else:
            del self._lanes[lane_name]
            self._stalled.discard(lane_name)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
