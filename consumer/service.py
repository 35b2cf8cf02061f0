"""The consumer loop: poll, hand each record to the handler, commit what was done, repeat.

The handler (``consumer/handler.py``) is the user's code; this loop owns
everything around it: envelopes, metrics, the poll budget, commits, and what
happens when the handler fails (``consumer/retries.py``: retried later with
its partition paused, dead-lettered, or the consumer stops).

Handling happens on the polling thread between two polls, and a rebalance
can only happen inside poll(), so by the time partitions move every message
handed out has been processed and its offset committed (or, for a batch cut
short, sought back to be fetched again): at least once, with nothing
re-delivered by a rebalance or a clean stop.

The one change that comes between polls is an expulsion: when the group
drops a member it has not heard from (a network cut longer than the session
timeout), kafka-python's heartbeat thread marks it unjoined, and the batch
stops at the next partition: another member owns those records now.
"""

from __future__ import annotations

import contextlib
import enum
import operator
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat

import structlog
from kafka.errors import InconsistentGroupProtocolError, KafkaError, UnsupportedCodecError
from kafka.structs import MemberState

from common import events, message
from common.backoff import Backoff
from common.clients import ConsumerClient, ConsumerRecord, Offsets, TopicPartition
from common.config import ConsumerPlan
from common.failure import ServiceFailed
from common.health import Health
from common.shutdown import Shutdown
from common.throttle import ThrottleWatch
from common.topics import MissingTopic
from common.tracing import Tracing
from consumer import metrics
from consumer.dead_letter import DeadLetterFailed, DeadLetters
from consumer.dispatch import Dispatcher
from consumer.event_loop import EventLoop
from consumer.fate import log_dead_letter_failed, log_dead_lettered, log_failed, log_retrying
from consumer.handler import Handler, Record, log_records
from consumer.membership import Membership
from consumer.offsets import OffsetTracker, record_commit
from consumer.rebalance import RebalanceListener, by_topic
from consumer.retries import Pending, Retries
from consumer.tracing import RecordSpans
from consumer.workers import workers_for

#: Longest a poll may block, so a stop request is seen within this.
POLL_TIMEOUT_MS = 500
#: Shortest wait of a poll while workers have records: how often it commits, at most.
COMMIT_WAKE_MS = 10
#: How often partition lag is recomputed.
LAG_INTERVAL_S = 1.0
#: Our Records from kafka-python's, a batch at a time, in C: a Record's fields
#: have the names of a ConsumerRecord's, and ``tuple.__new__`` skips the named
#: tuple's own ``__new__``. A loop of attribute reads and a call per record
#: cost twice as much (``python -m bench hotpath``).
_fields_of = operator.attrgetter(*Record._fields)


def records_of(records: Iterable[ConsumerRecord]) -> Iterator[Record]:
    """Our :class:`Record` of each of kafka-python's *records*, built as they are taken."""
    return map(tuple.__new__, repeat(Record), map(_fields_of, records))


#: Most records of one poll whose end-to-end latency is measured: every record
#: of a poll up to this size, one in ``1 + size // this`` of larger ones.
#: Reading an envelope's send time cost a quarter of our loop's time per
#: record; a poll of hundreds comes only at thousands of records a second,
#: where a sample of each poll gives the same distribution.
LATENCY_SAMPLES_PER_POLL = 64


class _Then(enum.Enum):
    """What the loop does after the handler failed on a record."""

    #: It is behind us (dead-lettered): go on with the next record.
    DONE = "done"
    #: Its partition waits for a retry: seek back to it, pause.
    HOLD = "hold"
    #: Nothing more can be done: commit what was done before it, and stop.
    STOP = "stop"


class ConsumerService:
    """A member of the consumer group that hands each record to the handler, and commits it."""

    def __init__(
        self,
        plan: ConsumerPlan,
        client: ConsumerClient,
        health: Health,
        shutdown: Shutdown,
        *,
        handler: Handler | None = None,
        dead_letters: DeadLetters | None = None,
        clock: Callable[[], float] = time.perf_counter,
        tracing: Tracing | None = None,
        loop: EventLoop | None = None,
    ) -> None:
        settings = plan.settings
        #: Set when tracing is on: a ``process`` span per record (consumer/tracing.py).
        self._spans = (
            RecordSpans(tracing, plan.topic, plan.group_id)
            if tracing is not None and tracing.enabled
            else None
        )
        #: Every duration and deadline of the loop; a test moves it by hand.
        self._clock = clock
        self._settings = settings
        self._topic = plan.topic
        self._group_id = plan.group_id
        self._client = client
        self._health = health
        self._shutdown = shutdown
        self._offsets = OffsetTracker()
        self._log = structlog.get_logger().bind(group_id=plan.group_id)
        self._handle = handler or log_records(settings.log_message_every, plan.group_id)
        self._dead_letters = dead_letters
        self._membership = Membership(client, settings.session_timeout_ms, plan.group_id)
        self._retries = Retries(
            settings.retry_attempts,
            settings.retry_backoff_ms / 1000,
            settings.retry_backoff_max_ms / 1000,
            clock,
        )
        self._outcomes = {
            outcome: metrics.HANDLED.labels(plan.topic, outcome)
            for outcome in ("ok", "retried", "dead_lettered", "failed")
        }
        # One counter per kind of record, in the order _process_batch counts them.
        self._consumed = tuple(
            metrics.CONSUMED.labels(plan.topic, plan.group_id, kind)
            for kind in ("envelope", "other", "tombstone")
        )
        self._duration = metrics.PROCESS_DURATION.labels(plan.topic)
        self._latency = metrics.END_TO_END.labels(plan.topic)
        self._lag_due = 0.0
        self._max_records = settings.max_poll_records
        # Half the poll interval: the rest is slack for the commit and the next poll.
        self._batch_budget_s = settings.max_poll_interval_ms / 2000
        #: When the batch being handled must end: a dead letter waits no longer.
        self._batch_deadline = 0.0
        self._topic_missing = False
        #: Why /readyz fails while the topic is missing or cannot be checked.
        self._topic_why = ""
        self._missing = MissingTopic(
            plan.topic, plan.connection.bootstrap_servers, plan.connection.namespace
        )
        self._topic_backoff = Backoff()
        self._poll_backoff = Backoff()
        self._topic_check_due = 0.0
        self._work_s = settings.simulated_work_ms / 1000
        self._commit_interval_ms = plan.commit_interval_ms
        self._commit_interval_s = plan.commit_interval_ms / 1000
        self._commit_due = 0.0
        self._throttle = ThrottleWatch(client.metrics)
        #: Set when records run side by side on workers: key or unordered, or async.
        self._dispatcher = workers_for(
            plan,
            self._handle,
            self._offsets,
            dead_letters=dead_letters,
            spans=self._spans,
            log=self._log,
            loop=loop,
        )
        #: Partitions paused because the bound in flight was reached.
        self._paused_full: set[TopicPartition] = set()
        self._in_flight = (
            metrics.RECORDS_IN_FLIGHT.labels(plan.topic, "running"),
            metrics.RECORDS_IN_FLIGHT.labels(plan.topic, "waiting"),
        )
        metrics.MAX_IN_FLIGHT.labels(plan.topic).set(
            1 if self._dispatcher is None else self._dispatcher.bound
        )

    def run(self) -> None:
        self._client.subscribe(
            [self._topic],
            listener=RebalanceListener(
                self._client,
                self._offsets,
                self._group_id,
                on_assigned=self._membership.joined,
                drain=self._dispatcher,
                drain_timeout_s=self._settings.drain_timeout_ms / 1000,
            ),
        )
        # Metadata after subscribing, before joining: kafka-python's leader
        # assigns from a snapshot of the subscribed topics' metadata, and one
        # taken before it knew the topic made it hand out nothing, then
        # rebalance again a moment later.
        with contextlib.suppress(KafkaError):
            self._client.topics()
        try:
            while not self._shutdown.requested:
                self._health.beat()
                self._poll_once()
        finally:
            self._close()

    def _poll_once(self) -> None:
        due = self._retries.due()
        if due:
            self._client.resume(*due)
        timeout_ms, max_records = POLL_TIMEOUT_MS, self._max_records
        if self._dispatcher is not None:
            timeout_ms, max_records = self._fit_room(self._dispatcher, max_records)
            # A short batch waiting for more starts when its wait is over.
            now = self._clock()
            if (batch_due := self._dispatcher.flush(now)) is not None:
                timeout_ms = min(timeout_ms, max(0, int((batch_due - now) * 1000)))
            if self._dispatcher.taken():
                # Workers finish records while the poll waits: commit them on time.
                timeout_ms = min(timeout_ms, max(COMMIT_WAKE_MS, self._commit_interval_ms))
        try:
            batch = self._client.poll(timeout_ms=timeout_ms, max_records=max_records)
        except UnsupportedCodecError as exc:
            # Skipping the batch would lose it, and retrying cannot decode it:
            # stop, hand the partitions to the group, and say what is missing.
            raise ServiceFailed(
                "unsupported_codec",
                f"{exc}: install kafka-python with its codec extras "
                "(kafka-python[lz4,snappy,zstd]); nothing was skipped",
            ) from None
        except KafkaError as exc:
            self._poll_failed(exc)
            return
        self._poll_backoff.reset()
        state = self._client.group_metadata().state
        self._check_topic()
        if self._topic_missing:
            self._health.set_ready(False, self._topic_why)
        else:
            self._health.set_ready(state != MemberState.UNJOINED, "not a member of the group")
        self._retries.keep_only(self._client.assignment())
        if self._spans is not None:
            self._spans.keep_only(self._client.assignment())
        if self._dispatcher is not None:
            self._dispatch(self._dispatcher, batch)
        elif batch:
            self._process_batch(batch)
        self._commit_processed()
        self._throttle.check()
        if self._clock() >= self._lag_due:
            self._update_lag()

    def _fit_room(self, dispatcher: Dispatcher, max_records: int) -> tuple[int, int]:
        """The poll's timeout and most records, within the room left in flight.

        With no room, every partition is paused and the poll returns at once:
        the member keeps polling, so the group keeps it, and fetches nothing.
        """
        room = dispatcher.wait_for_room(POLL_TIMEOUT_MS / 1000)
        assigned = set(self._client.assignment())
        if room <= 0:
            full = assigned - self._paused_full
            if full:
                self._client.pause(*full)
                self._paused_full |= full
            return 0, 1
        resumed = self._paused_full & assigned
        if resumed:
            self._client.resume(*resumed)
        self._paused_full.clear()
        return POLL_TIMEOUT_MS, min(max_records, room)

    def _dispatch(
        self, dispatcher: Dispatcher, batch: Mapping[TopicPartition, Sequence[ConsumerRecord]]
    ) -> None:
        """Hand the polled records to the workers; stop on what a worker gave up on."""
        if dispatcher.failure is not None:
            record, error = dispatcher.failure
            raise self._gave_up_on(record, error)
        if not self._membership.may_handle():
            # Expelled, or silent long enough to be: start nothing; fetched again
            # from here should the group still have us.
            dispatcher.hold()
            if batch:
                self._hold_back(batch, next(iter(batch)))
            return
        dispatcher.go_on()
        now = self._clock()
        for partition, records in batch.items():
            dispatcher.submit(partition, records_of(records), now)
        running, waiting = dispatcher.in_flight
        self._in_flight[0].set(running)
        self._in_flight[1].set(waiting)

    def _poll_failed(self, exc: KafkaError) -> None:
        delay = self._poll_backoff.next()
        self._health.set_ready(False, f"poll failed: {type(exc).__name__}")
        self._health.expect(delay)
        if isinstance(exc, InconsistentGroupProtocolError):
            # Another member lists none of our assignors: name the setting that fixes it.
            self._log.error(
                events.GROUP_PROTOCOL_MISMATCH,
                group_id=self._group_id,
                assignors=",".join(self._settings.assignment_strategy),
                hint="the group's other members use other assignors: list one they use "
                "in KAFKA_PARTITION_ASSIGNMENT_STRATEGY (range is every client's default)",
                retry_in_s=round(delay, 2),
            )
        else:
            self._log.warning(
                events.CONSUMER_POLL_FAILED, error=str(exc), retry_in_s=round(delay, 2)
            )
        self._shutdown.wait(delay)

    def _check_topic(self) -> None:
        """Say so, with backoff, while the group has nothing to hand out: no such topic.

        Without this a consumer of a misspelt topic is a silent, idle member.
        """
        error = None
        try:
            known = bool(self._client.assignment()) or bool(
                self._clock() >= self._topic_check_due
                and self._client.partitions_for_topic(self._topic)
            )
        except KafkaError as exc:
            # The metadata request itself failed (a broker still starting, a
            # dropped connection): not an answer, so ask again later.
            known, error = False, type(exc).__name__
        if known:
            # Assigned, however kafka-python learnt of the topic: it exists.
            self._topic_missing = False
            self._topic_backoff.reset()
            return
        if self._clock() < self._topic_check_due:
            return
        self._topic_missing = True
        delay = self._topic_backoff.next()
        self._topic_check_due = self._clock() + delay
        if error is None:
            # The broker answered, and knows no such topic.
            self._topic_why = self._missing.why
            self._missing.found_missing()
            return
        self._topic_why = f"topic {self._topic} could not be checked: {error}"
        self._log.error(
            events.TOPIC_UNAVAILABLE, topic=self._topic, retry_in_s=round(delay, 2), error=error
        )

    def _process_batch(self, batch: Mapping[TopicPartition, Sequence[ConsumerRecord]]) -> None:
        """Handle a batch, within half of max.poll.interval.ms, and note what was done.

        A batch that would outlast the poll interval gets the consumer thrown
        out of the group, and re-fetched and thrown out again: the endless
        rebalance loop of a slow consumer. So the batch is cut short instead,
        the rest is fetched again by the next poll, and later polls ask for
        fewer records until they fit.
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
                tally.held += self._hold_back(batch, partition)
                break
            if self._retries.waiting(partition):
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
        retrying = self._retries.pending(partition, records[0].offset) is not None
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
                    then = self._failed(partition, ours, exc)
                    if then is _Then.STOP:
                        stop = self._stopping(partition, ours, exc)
                if then is not _Then.DONE:
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

    def _hold_back(
        self, batch: Mapping[TopicPartition, Sequence[ConsumerRecord]], first: TopicPartition
    ) -> int:
        """Seek back every partition of *batch* from *first* on, to its first record;
        how many records that holds back."""
        after, held = False, 0
        for partition, records in batch.items():
            after = after or partition == first
            if after and partition in self._client.assignment():
                self._client.seek(partition, records[0].offset)
                held += len(records)
        return held

    def _retry_pending(self, partition: TopicPartition, record: Record) -> None:
        """The record a partition waited on, again: the handler, or only its dead letter."""
        pending = self._retries.pending(partition, record.offset)
        assert pending is not None
        if pending.dead_letter_only:
            assert pending.error is not None
            with self._in_span(partition, record):
                self._dead_letter(partition, record, pending)
            self._span_done(partition, "dead_lettered", pending.error)
        elif self._spans is None:
            self._handle(record)
            self._outcomes["ok"].inc()
        else:
            self._spans.call(self._handle, partition, record)
            self._outcomes["ok"].inc()
        self._retries.done(partition)

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

    def _failed(self, partition: TopicPartition, record: Record, error: BaseException) -> _Then:
        """Decide what follows a failure of the handler on *record*."""
        if isinstance(error, DeadLetterFailed):
            # Raised by _retry_pending: the dead letter itself failed again.
            pending = self._retries.pending(partition, record.offset)
            assert pending is not None
            return self._hold_for_dead_letter(partition, record, pending, error)
        pending = self._retries.failed(partition, record.offset, error)
        if not self._retries.gives_up(pending):
            delay = self._retries.wait(partition, pending)
            self._outcomes["retried"].inc()
            log_retrying(self._log, record, pending.attempts, error, delay)
            self._hold(partition, record.offset)
            return _Then.HOLD
        if self._dead_letters is None:
            return _Then.STOP
        try:
            self._dead_letter(partition, record, pending)
        except DeadLetterFailed as failed:
            return self._hold_for_dead_letter(partition, record, pending, failed)
        self._span_done(partition, "dead_lettered", pending.error or error)
        self._retries.done(partition)
        return _Then.DONE

    def _dead_letter(self, partition: TopicPartition, record: Record, pending: Pending) -> None:
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
        self, partition: TopicPartition, record: Record, pending: Pending, failed: DeadLetterFailed
    ) -> _Then:
        """Nothing past a record whose dead letter failed is committed: it waits, and is
        written again when due; the handler is not called again for it."""
        pending.dead_letter_only = True
        delay = self._retries.wait(partition, pending)
        assert self._dead_letters is not None
        log_dead_letter_failed(self._log, record, self._dead_letters.topic, failed, delay)
        self._hold(partition, record.offset)
        return _Then.HOLD

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
        pending = self._retries.pending(partition, record.offset)
        log_failed(self._log, record, pending.attempts if pending else 1, error)
        return self._gave_up_on(record)

    def _gave_up_on(self, record: Record, error: BaseException | None = None) -> ServiceFailed:
        """Stop: the handler gave up on *record* with no dead-letter topic, or (with
        *error*) our own code failed around it on a worker."""
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        self._health.set_ready(False, f"stopping: the handler failed on {where}")
        if error is not None:
            return ServiceFailed(
                "worker_failed",
                f"the consumer failed around {where}; nothing from it on is committed",
                cause=error,
            )
        return ServiceFailed(
            "handler_failed",
            f"the handler gave up on {where} and no CONSUMER_DEAD_LETTER_TOPIC is set; "
            "everything before it is committed, and it is handled again at the next start",
        )

    def _commit_processed(self) -> None:
        """Commit what was processed, at most once per KAFKA_COMMIT_INTERVAL_MS.

        A commit costs kafka-python about a millisecond of CPU (``python -m
        bench hotpath`` measures it): after every poll that was one per 500
        messages at full speed, and one per message or two at low rates.
        Rebalances and stops
        do not wait for this: they commit at once.
        """
        now = self._clock()
        if now < self._commit_due:
            return
        pending = self._offsets.uncommitted()
        if pending:
            self._client.commit_async(pending, callback=self._on_commit)
            self._commit_due = now + self._commit_interval_s

    def _drain(self, dispatcher: Dispatcher) -> None:
        """Wait for the records in flight, within CONSUMER_DRAIN_TIMEOUT_MS, so that what
        they finish is committed before the consumer leaves."""
        drain_ms = self._settings.drain_timeout_ms
        if not dispatcher.stop(drain_ms / 1000):
            self._log.warning(
                events.RECORDS_ABANDONED,
                partitions=by_topic(self._client.assignment()),
                drain_timeout_ms=drain_ms,
                reason="stopping",
            )

    def _fit_batch_size(self, handled: int, returned: int, took_s: float) -> None:
        if handled < returned and not self._shutdown.requested:
            # Half of what fitted, so the next batches leave room for a slower message.
            self._max_records = max(1, handled // 2)
            self._log.warning(
                events.BATCH_TRUNCATED,
                processed=handled,
                returned=returned,
                took_s=round(took_s, 3),
                max_poll_interval_ms=self._settings.max_poll_interval_ms,
                max_records=self._max_records,
            )
        elif took_s < self._batch_budget_s / 4:
            # Fast again: grow back towards KAFKA_MAX_POLL_RECORDS.
            self._max_records = min(self._settings.max_poll_records, self._max_records * 2)

    def _on_commit(self, offsets: Offsets, response: object) -> None:
        # Runs on the IO thread.
        error = response if isinstance(response, BaseException) else None
        record_commit(self._offsets, offsets, error)

    def _update_lag(self) -> None:
        self._lag_due = self._clock() + LAG_INTERVAL_S
        for tp in self._client.assignment():
            highwater = self._client.highwater(tp)
            next_offset = self._offsets.next_offset(tp)
            if highwater is None or next_offset is None:
                continue
            metrics.LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwater - next_offset))

    def _close(self) -> None:
        """Commit what was processed, then leave the group so others take over at once."""
        started = self._clock()
        if self._dispatcher is not None:
            self._drain(self._dispatcher)
        if self._spans is not None:
            self._spans.close()
        pending = self._offsets.uncommitted()
        try:
            if pending:
                self._client.commit(pending)
                record_commit(self._offsets, pending, None)
        except KafkaError as exc:
            record_commit(self._offsets, pending, exc)
        finally:
            # close() revokes our partitions (the listener commits anything left)
            # and sends LeaveGroup, so the group rebalances now, not after the
            # session timeout.
            self._client.close(autocommit=False)
        self._log.info(events.CONSUMER_CLOSED, took_s=round(self._clock() - started, 3))


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
    #: Envelopes, other values, tombstones: as ConsumerService._consumed.
    counts: list[int] = field(default_factory=lambda: [0, 0, 0])

    def __post_init__(self) -> None:
        self.now = self.started
