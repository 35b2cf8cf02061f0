"""The consumer loop: poll, hand the records over, commit what was done, repeat.

This module is the poller: it polls, says whether the member is ready (in
the group, its topic there), hands each poll's records to the way the
handler runs, commits on time, and measures lag. The records go to
``consumer/in_order.py`` (one at a time per partition, on this thread: the
default) or ``consumer/dispatch.py`` (side by side on workers, for
``CONSUMER_ORDERING=key`` or ``unordered``, and for ``async def`` handlers),
and what a record's failure leads to is settled there. Offsets are noted
in ``consumer/offsets.py`` as records are done, and committed from here.

The one change that comes between polls is an expulsion: when the group
drops a member it has not heard from (a network cut longer than the session
timeout), kafka-python's heartbeat thread marks it unjoined, and nothing
more is handed out: another member owns those records now.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence

import structlog
from kafka.errors import InconsistentGroupProtocolError, KafkaError, UnsupportedCodecError
from kafka.structs import MemberState

from common import events
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
from consumer.dead_letter import DeadLetters
from consumer.dispatch import Dispatcher
from consumer.event_loop import EventLoop
from consumer.fate import gave_up
from consumer.handler import Handler, log_records
from consumer.in_order import InOrder, hold_back, records_of
from consumer.membership import Membership
from consumer.offsets import OffsetTracker, record_commit
from consumer.outputs import OutputFailed, Outputs, TransactionAborted
from consumer.rebalance import RebalanceListener, by_topic
from consumer.tracing import RecordSpans
from consumer.workers import workers_for

#: Longest a poll may block, so a stop request is seen within this.
POLL_TIMEOUT_MS = 500
#: Shortest wait of a poll while workers have records: how often it commits, at most.
COMMIT_WAKE_MS = 10
#: Longest a commit waits for the outputs before it, on the polling thread; what is not
#: acknowledged by then is committed with a later commit.
OUTPUT_FLUSH_S = 1.0
#: How often partition lag is recomputed.
LAG_INTERVAL_S = 1.0


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
        outputs: Outputs | None = None,
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
        #: Set when the handler may return records to publish: flushed before each commit.
        self._outputs = outputs
        if outputs is not None and handler is not None:
            self._handle = outputs.publishing(handler)
        #: Exactly once: outputs and offsets are committed in one transaction.
        self._transactional = outputs is not None and outputs.transactional
        #: Set when a transaction was aborted where no seek could follow (partitions lost).
        self._rewind_due = False
        self._dead_letters = dead_letters
        self._membership = Membership(client, settings.session_timeout_ms, plan.group_id)
        self._lag_due = 0.0
        self._topic_missing = False
        #: Why /readyz fails while the topic is missing or cannot be checked.
        self._topic_why = ""
        self._missing = MissingTopic(
            plan.topic, plan.connection.bootstrap_servers, plan.connection.namespace
        )
        self._topic_backoff = Backoff()
        self._poll_backoff = Backoff()
        self._topic_check_due = 0.0
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
        #: Set when records run one at a time on this thread, in partition order.
        self._in_order = (
            InOrder(
                client,
                self._handle,
                settings,
                self._offsets,
                self._membership,
                topic=plan.topic,
                group_id=plan.group_id,
                health=health,
                shutdown=shutdown,
                clock=clock,
                dead_letters=dead_letters,
                spans=self._spans,
            )
            if self._dispatcher is None
            else None
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
                outputs=None if self._transactional else self._outputs,
                transact=self._commit_transaction if self._transactional else None,
                abort=self._abort_transaction if self._transactional else None,
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
        timeout_ms, max_records = self._poll_limits()
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
        if self._outputs is not None and self._in_order is not None:
            batch = self._noted_for_rewind(batch)
        if self._in_order is not None:
            self._in_order.keep_only(self._client.assignment())
        if self._spans is not None:
            self._spans.keep_only(self._client.assignment())
        if self._dispatcher is not None:
            self._dispatch(self._dispatcher, batch)
        elif batch and self._in_order is not None:
            self._in_order.handle(batch)
        self._commit_processed()
        self._throttle.check()
        if self._clock() >= self._lag_due:
            self._update_lag()

    def _poll_limits(self) -> tuple[int, int]:
        """How long the next poll may wait, and how many records it may take."""
        if self._in_order is not None:
            self._in_order.resume_due()
            return POLL_TIMEOUT_MS, self._in_order.max_records
        assert self._dispatcher is not None
        timeout_ms, max_records = self._fit_room(self._dispatcher, self._settings.max_poll_records)
        # A short batch waiting for more starts when its wait is over.
        now = self._clock()
        if (batch_due := self._dispatcher.flush(now)) is not None:
            timeout_ms = min(timeout_ms, max(0, int((batch_due - now) * 1000)))
        if self._dispatcher.taken():
            # Workers finish records while the poll waits: commit them on time.
            timeout_ms = min(timeout_ms, max(COMMIT_WAKE_MS, self._commit_interval_ms))
        return timeout_ms, max_records

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
            raise gave_up(self._health, record, error)
        if not self._membership.may_handle():
            # Expelled, or silent long enough to be: start nothing; fetched again
            # from here should the group still have us.
            dispatcher.hold()
            if batch:
                hold_back(self._client, batch, next(iter(batch)))
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
            if self._transactional:
                if not self._commit_transaction(pending):
                    self._rewind()
            # Taken before the flush: every output of these records was sent before them.
            elif self._outputs_acknowledged_or_rewound(OUTPUT_FLUSH_S):
                self._client.commit_async(pending, callback=self._on_commit)
            self._commit_due = now + self._commit_interval_s

    def _commit_transaction(self, pending: Offsets) -> bool:
        """Exactly once: commit *pending* with the outputs sent since the last commit, in
        one transaction; whether it committed. When it did not, it is aborted and the
        records it covered are to be handled again (:meth:`_rewind`)."""
        assert self._outputs is not None
        try:
            if not self._membership.may_handle():
                # Expelled: a commit without a generation would not be fenced.
                self._outputs.abort()
                raise TransactionAborted("not a member of the group: no generation to commit in")
            self._outputs.commit(pending, self._client.group_metadata())
        except TransactionAborted as aborted:
            metrics.COMMIT_FAILURES.labels("TransactionAborted").inc()
            self._log.warning(
                events.TRANSACTION_ABORTED, partitions=by_topic(pending), error=str(aborted)
            )
            self._rewind_due = True
            return False
        record_commit(self._offsets, pending, None)
        return True

    def _abort_transaction(self, why: str) -> None:
        """Exactly once: abort the open transaction (its records are handled again), for
        *why*."""
        assert self._outputs is not None
        if self._outputs.abort():
            self._log.warning(events.TRANSACTION_ABORTED, partitions={}, error=why)
        self._rewind_due = True

    def _noted_for_rewind(
        self, batch: Mapping[TopicPartition, Sequence[ConsumerRecord]]
    ) -> Mapping[TopicPartition, Sequence[ConsumerRecord]]:
        """Exactly once: the poll's records, after noting where each partition would go
        back to; none, and the partitions sent back, when a transaction was aborted."""
        if self._rewind_due:
            self._rewind()
            return {}
        for partition, records in batch.items():
            self._offsets.fetched_from(partition, records[0].offset)
        return batch

    def _rewind(self) -> None:
        """Send every partition back to the first offset no committed transaction covers:
        what the aborted one covered is handled again, its outputs never seen."""
        assigned = self._client.assignment()
        for partition, offset in self._offsets.rewound().items():
            if partition in assigned:
                self._client.seek(partition, offset)
        if self._in_order is not None:
            self._in_order.rewound()
        self._rewind_due = False

    def _outputs_acknowledged_or_rewound(self, timeout_s: float) -> bool:
        """:meth:`_outputs_acknowledged`; but when an output failed and the records run on
        this thread, a new producer and the records since the last commit again, instead
        of the stop: False, nothing to commit."""
        try:
            return self._outputs_acknowledged(timeout_s)
        except OutputFailed as failed:
            if self._outputs is None or self._in_order is None:
                raise
            self._log.warning(
                events.OUTPUTS_FAILED,
                partitions=by_topic(self._client.assignment()),
                error=failed.detail,
            )
            self._outputs.replace()
            self._rewind()
            return False

    def _outputs_acknowledged(self, timeout_s: float) -> bool:
        """Whether every output sent so far is acknowledged, after waiting up to
        *timeout_s*; OutputFailed (the stop) when one failed."""
        return self._outputs is None or self._outputs.flush(timeout_s)

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

    def _last_outputs_acknowledged(self) -> bool:
        """At the stop: whether the last outputs are acknowledged, within
        CONSUMER_DRAIN_TIMEOUT_MS; said when they are not, and nothing is committed."""
        try:
            if self._outputs_acknowledged(self._settings.drain_timeout_ms / 1000):
                return True
            error = "not acknowledged in time"
        except OutputFailed as failed:
            error = failed.detail
        self._log.warning(
            events.OUTPUTS_UNACKNOWLEDGED,
            partitions=by_topic(self._client.assignment()),
            error=error,
            reason="stopping",
        )
        return False

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
            if self._transactional:
                assert self._outputs is not None
                if not pending or not self._commit_transaction(pending):
                    # Nothing committed: whoever owns these records next handles them.
                    self._outputs.abort()
            elif pending and self._last_outputs_acknowledged():
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
