"""Each partition's records one at a time, on the polling thread: ``CONSUMER_ORDERING=partition``.

The default way, and the fastest for a handler that does not wait: no
thread, no lock, a record handled between two polls. Handling happens on
the polling thread, and a rebalance can only happen inside poll(), so by the
time partitions move every record handed out has been processed and its
offset noted (or, for a batch cut short, sought back to be fetched again).

What follows when the handler fails on a record is settled here too
(:meth:`InOrder._settle`), with the policy and the lines of
``consumer/fate.py``. A failed record is never retried by sleeping in the
poll loop: its partition is sought back to it and paused until its backoff
has passed, while the loop goes on polling, so the group keeps the
consumer, the other partitions keep flowing and a stop is seen at once.
Only one record per partition is ever pending (order within a partition is
kept), so the state is one entry per partition. kafka-python keeps no pause
across a revocation (a partition assigned again starts unpaused), and a
retry that outlives its pause is paused again when its records come back.
"""

from __future__ import annotations

import contextlib
import enum
import operator
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat

import structlog

from common import events, message
from common.backoff import Backoff
from common.clients import ConsumerClient, ConsumerRecord, TopicPartition
from common.config import ConsumerSettings
from common.failure import ServiceFailed
from common.health import Health
from common.shutdown import Shutdown
from consumer import metrics
from consumer.dead_letter import DeadLetterFailed, DeadLetters
from consumer.fate import (
    gave_up,
    gives_up,
    log_dead_letter_failed,
    log_dead_lettered,
    log_failed,
    log_retrying,
)
from consumer.handler import Handler, Record
from consumer.membership import Membership
from consumer.offsets import OffsetTracker
from consumer.tracing import RecordSpans

#: Our Records from kafka-python's, a batch at a time, in C: a Record's fields
#: have the names of a ConsumerRecord's, and ``tuple.__new__`` skips the named
#: tuple's own ``__new__`` (``python -m bench hotpath`` compares the ways).
_fields_of = operator.attrgetter(*Record._fields)

#: Most records of one poll whose end-to-end latency is measured: every record
#: of a poll up to this size, one in ``1 + size // this`` of larger ones.
#: A poll of hundreds comes only at thousands of records a second, where a
#: sample of each poll gives the same distribution at a fraction of the cost.
LATENCY_SAMPLES_PER_POLL = 64


def records_of(records: Iterable[ConsumerRecord]) -> Iterator[Record]:
    """Our :class:`Record` of each of kafka-python's *records*, built as they are taken."""
    return map(tuple.__new__, repeat(Record), map(_fields_of, records))


def hold_back(
    client: ConsumerClient,
    batch: Mapping[TopicPartition, Sequence[ConsumerRecord]],
    first: TopicPartition,
) -> int:
    """Seek back every partition of *batch* from *first* on, to its first record;
    how many records that holds back."""
    after, held = False, 0
    assigned = client.assignment()
    for partition, records in batch.items():
        after = after or partition == first
        if after and partition in assigned:
            client.seek(partition, records[0].offset)
            held += len(records)
    return held


class Then(enum.Enum):
    """What the loop does after the handler failed on a record."""

    #: It is behind us (dead-lettered): go on with the next record.
    DONE = "done"
    #: Its partition waits for a retry: sought back to it, and paused.
    HOLD = "hold"
    #: Nothing more can be done: commit what was done before it, and stop.
    STOP = "stop"


@dataclass
class _Pending:
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


@dataclass(slots=True)
class _Tally:
    """What a batch did so far, across its partitions."""

    started: float
    deadline: float
    now: float = 0.0
    handled: int = 0
    ok: int = 0
    #: Records held back behind one that waits for a retry.
    held: int = 0
    #: The end-to-end latency of one record in this many is measured.
    latency_every: int = 1
    durations: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    #: Envelopes, other values, tombstones: as InOrder._consumed.
    counts: list[int] = field(default_factory=lambda: [0, 0, 0])

    def __post_init__(self) -> None:
        self.now = self.started


class InOrder:
    """Hands each partition's records to the handler in order, and settles each failure."""

    def __init__(
        self,
        client: ConsumerClient,
        handle: Handler,
        settings: ConsumerSettings,
        offsets: OffsetTracker,
        membership: Membership,
        *,
        topic: str,
        group_id: str,
        health: Health,
        shutdown: Shutdown,
        clock: Callable[[], float],
        dead_letters: DeadLetters | None = None,
        spans: RecordSpans | None = None,
    ) -> None:
        self._client = client
        self._handle = handle
        self._settings = settings
        self._offsets = offsets
        self._membership = membership
        self._health = health
        self._shutdown = shutdown
        self._clock = clock
        self._dead_letters = dead_letters
        self._spans = spans
        self._log = structlog.get_logger().bind(group_id=group_id)
        self._pending: dict[TopicPartition, _Pending] = {}
        #: Partitions paused for a retry, to resume when it is due.
        self._paused: set[TopicPartition] = set()
        self._outcomes = {
            outcome: metrics.HANDLED.labels(topic, outcome)
            for outcome in ("ok", "retried", "dead_lettered", "failed")
        }
        # One counter per kind of record, in the order _handle_records counts them.
        self._consumed = tuple(
            metrics.CONSUMED.labels(topic, group_id, kind)
            for kind in ("envelope", "other", "tombstone")
        )
        self._duration = metrics.PROCESS_DURATION.labels(topic)
        self._latency = metrics.END_TO_END.labels(topic)
        #: How many records the next poll asks for: fewer after a batch cut short.
        self.max_records = settings.max_poll_records
        # Half the poll interval: the rest is slack for the commit and the next poll.
        self._batch_budget_s = settings.max_poll_interval_ms / 2000
        #: When the batch being handled must end: a dead letter waits no longer.
        self._batch_deadline = 0.0
        self._work_s = settings.simulated_work_ms / 1000

    def resume_due(self) -> None:
        """Resume the paused partitions whose retry is due."""
        if not self._paused:
            return
        now = self._clock()
        due = [tp for tp in self._paused if tp not in self._pending or self._pending[tp].due <= now]
        self._paused.difference_update(due)
        if due:
            self._client.resume(*due)

    def keep_only(self, assigned: Collection[TopicPartition]) -> None:
        """Forget partitions no longer ours: their new owner starts from the committed offset."""
        for tp in [tp for tp in self._pending if tp not in assigned]:
            del self._pending[tp]
        self._paused.intersection_update(assigned)

    def rewound(self) -> None:
        """Forget every retry and pause: the partitions were sent back to their last
        committed offsets, and the records come again from there."""
        if self._paused:
            self._client.resume(*self._paused)
        self._paused.clear()
        self._pending.clear()

    def handle(self, batch: Mapping[TopicPartition, Sequence[ConsumerRecord]]) -> None:
        """Handle a poll's records, within half of max.poll.interval.ms, and note what was done.

        A batch that would outlast the poll interval gets the consumer thrown
        out of the group, and re-fetched and thrown out again: the endless
        rebalance loop of a slow consumer. So the batch is cut short instead,
        the rest is fetched again by the next poll, and later polls ask for
        fewer records until they fit. Raises ServiceFailed when the consumer
        must stop on a record.
        """
        started = self._clock()
        returned = sum(len(records) for records in batch.values())
        tally = _Tally(
            started,
            started + self._batch_budget_s,
            latency_every=1 + returned // LATENCY_SAMPLES_PER_POLL,
        )
        self._batch_deadline = tally.deadline
        stop: ServiceFailed | None = None
        for partition, records in batch.items():
            if not self._membership.may_handle():
                # Expelled, or silent long enough to be: the rest may be another
                # member's; fetched again from here should the group still have us.
                tally.held += hold_back(self._client, batch, partition)
                break
            if self._waiting(partition):
                # A rebalance forgot our pause: the record waited on comes again.
                self._hold(partition, records[0].offset)
                tally.held += len(records)
                continue
            done, stop = self._handle_records(partition, records, tally)
            if done:
                self._offsets.processed(partition, records[done - 1].offset + 1)
            if stop is not None:
                break
            if done < len(records) and partition in self._client.assignment():
                self._client.seek(partition, records[done].offset)
        self._duration.observe_many(tally.durations)
        self._latency.observe_many(tally.latencies)
        for counter, count in zip(self._consumed, tally.counts, strict=True):
            counter.inc(count)
        self._outcomes["ok"].inc(tally.ok)
        if stop is not None:
            raise stop
        self._fit_batch_size(tally.handled, returned - tally.held, tally.now - started)

    def _handle_records(
        self, partition: TopicPartition, records: Sequence[ConsumerRecord], tally: _Tally
    ) -> tuple[int, ServiceFailed | None]:
        """Hand one partition's records to the handler, in order; how many are done.

        This loop runs once per message, so it keeps to what must happen per
        message; timings are collected in lists and go to the histograms
        once per batch.
        """
        clock, stopping = self._clock, self._shutdown.event.is_set
        handle, work_s, spans = self._handle, self._work_s, self._spans
        now, deadline, handled, ok = tally.now, tally.deadline, tally.handled, tally.ok
        durations, latencies, counts = tally.durations, tally.latencies, tally.counts
        latency_every = tally.latency_every
        # The wall clock from the loop's own: one clock read per record, not two.
        wall_offset = time.time() - now
        done = 0
        stop: ServiceFailed | None = None
        retrying = self._pending_at(partition, records[0].offset) is not None
        for ours in records_of(records):
            # At least one message per poll, so that even a slow one makes progress.
            if stopping() or (handled and now >= deadline):
                break
            value = ours.value
            envelope = message.envelope_of(value)
            sampled = not handled % latency_every
            if envelope is not None:
                counts[0] += 1
                sent_at = envelope.sent_at.timestamp() if sampled else 0.0
            else:
                counts[1 if value is not None else 2] += 1
                # Any other record: latency from its own timestamp, if it has one.
                sent_at = ours.timestamp / 1000 if sampled and ours.timestamp >= 0 else 0.0
            if work_s:
                self._shutdown.wait(work_s)
            try:
                if retrying:
                    retrying = False
                    self._retry_pending(partition, ours)
                elif spans is None:
                    handle(ours)
                    ok += 1
                else:
                    spans.call(handle, partition, ours)
                    ok += 1
            except Exception as exc:  # noqa: BLE001  (the user's code: any error is theirs)
                with self._in_span(partition, ours):
                    then = self._settle(partition, ours, exc)
                    if then is Then.STOP:
                        stop = self._stopping(partition, ours, exc)
                if then is not Then.DONE:
                    # Held back for the retry, not for lack of time.
                    tally.held += len(records) - done
                    break
            end = clock()
            durations.append(end - now)
            if sent_at:
                # Clocks differ: a producer ahead of us is not a negative latency.
                latency = end + wall_offset - sent_at
                latencies.append(latency if latency > 0 else 0.0)
            now = end
            done += 1
            handled += 1
        tally.now, tally.handled, tally.ok = now, handled, ok
        return done, stop

    # --- The fate of a record the handler failed on -------------------------------------

    def _pending_at(self, partition: TopicPartition, offset: int) -> _Pending | None:
        """The pending state of the record at *offset*, if it is the one retried."""
        found = self._pending.get(partition)
        return found if found is not None and found.offset == offset else None

    def _waiting(self, partition: TopicPartition) -> bool:
        """Whether *partition* waits for a retry that is not due yet."""
        found = self._pending.get(partition)
        return found is not None and partition in self._paused and self._clock() < found.due

    def _retry_pending(self, partition: TopicPartition, record: Record) -> None:
        """The record a partition waited on, again: the handler, or only its dead letter."""
        pending = self._pending_at(partition, record.offset)
        assert pending is not None
        if pending.dead_letter_only:
            assert pending.error is not None
            with self._in_span(partition, record):
                self._dead_letter(record, pending)
            self._span_done(partition, "dead_lettered", pending.error)
        elif self._spans is None:
            self._handle(record)
            self._outcomes["ok"].inc()
        else:
            self._spans.call(self._handle, partition, record)
            self._outcomes["ok"].inc()
        del self._pending[partition]

    def _settle(self, partition: TopicPartition, record: Record, error: BaseException) -> Then:
        """Decide what follows a failure on *record*, and do it: retry later, dead-letter,
        or stop."""
        pending = self._pending_at(partition, record.offset)
        if isinstance(error, DeadLetterFailed):
            # Raised by _retry_pending: the dead letter itself failed again.
            assert pending is not None
            return self._hold_for_dead_letter(partition, record, pending, error)
        if pending is None:
            settings = self._settings
            backoff = Backoff(
                settings.retry_backoff_ms / 1000, settings.retry_backoff_max_ms / 1000
            )
            pending = self._pending[partition] = _Pending(record.offset, backoff)
        pending.attempts += 1
        pending.error = error
        if not gives_up(error, pending.attempts, self._settings.retry_attempts):
            delay = self._wait(partition, pending)
            self._outcomes["retried"].inc()
            log_retrying(self._log, record, pending.attempts, error, delay)
            self._hold(partition, record.offset)
            return Then.HOLD
        if self._dead_letters is None:
            return Then.STOP
        try:
            self._dead_letter(record, pending)
        except DeadLetterFailed as failed:
            return self._hold_for_dead_letter(partition, record, pending, failed)
        self._span_done(partition, "dead_lettered", error)
        del self._pending[partition]
        return Then.DONE

    def _wait(self, partition: TopicPartition, pending: _Pending) -> float:
        """Hold *partition* until the pending record's next try; the wait in seconds."""
        delay = pending.backoff.next()
        pending.due = self._clock() + delay
        self._paused.add(partition)
        return delay

    def _dead_letter(self, record: Record, pending: _Pending) -> None:
        assert self._dead_letters is not None
        assert pending.error is not None
        written = self._dead_letters.write(
            record,
            pending.error,
            pending.attempts,
            wait_s=self._batch_deadline - self._clock(),
        )
        self._outcomes["dead_lettered"].inc()
        log_dead_lettered(
            self._log,
            record,
            pending.attempts,
            pending.error,
            topic=self._dead_letters.topic,
            written=written,
        )

    def _hold_for_dead_letter(
        self, partition: TopicPartition, record: Record, pending: _Pending, failed: DeadLetterFailed
    ) -> Then:
        """Nothing past a record whose dead letter failed is committed: it waits, and is
        written again when due; the handler is not called again for it."""
        pending.dead_letter_only = True
        delay = self._wait(partition, pending)
        assert self._dead_letters is not None
        log_dead_letter_failed(self._log, record, self._dead_letters.topic, failed, delay)
        self._hold(partition, record.offset)
        return Then.HOLD

    def _hold(self, partition: TopicPartition, offset: int) -> None:
        """Fetch *partition* again from *offset*, once its retry is due."""
        self._client.seek(partition, offset)
        self._client.pause(partition)

    def _stopping(
        self, partition: TopicPartition, record: Record, error: BaseException
    ) -> ServiceFailed:
        """No dead-letter topic, and the handler gave up: stop, committing what came before."""
        self._outcomes["failed"].inc()
        self._span_done(partition, "failed", error)
        pending = self._pending_at(partition, record.offset)
        log_failed(self._log, record, pending.attempts if pending else 1, error)
        return gave_up(self._health, record)

    def _in_span(
        self, partition: TopicPartition, record: Record
    ) -> contextlib.AbstractContextManager[None]:
        """The record's span as the current one, when tracing: its lines carry its ids."""
        if self._spans is None:
            return contextlib.nullcontext()
        return self._spans.inside(partition, record)

    def _span_done(self, partition: TopicPartition, outcome: str, error: BaseException) -> None:
        if self._spans is not None:
            self._spans.done(partition, outcome, error)

    def _fit_batch_size(self, handled: int, returned: int, took_s: float) -> None:
        if handled < returned and not self._shutdown.requested:
            # Half of what fitted, so the next batches leave room for a slower message.
            self.max_records = max(1, handled // 2)
            self._log.warning(
                events.BATCH_TRUNCATED,
                processed=handled,
                returned=returned,
                took_s=round(took_s, 3),
                max_poll_interval_ms=self._settings.max_poll_interval_ms,
                max_records=self.max_records,
            )
        elif took_s < self._batch_budget_s / 4:
            # Fast again: grow back towards KAFKA_MAX_POLL_RECORDS.
            self.max_records = min(self._settings.max_poll_records, self.max_records * 2)
