"""The consumer loop: poll, process, commit what was processed, repeat.

Processing happens on the polling thread between two polls, and a rebalance
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
import time
from collections.abc import Callable, Mapping, Sequence

import structlog
from kafka.errors import InconsistentGroupProtocolError, KafkaError, UnsupportedCodecError
from kafka.structs import MemberState

from common import events, message
from common.backoff import Backoff
from common.config import ConsumerPlan
from common.failure import ServiceFailed
from common.health import Health
from common.logging import Sampler
from common.shutdown import Shutdown
from common.throttle import ThrottleWatch
from consumer import metrics
from consumer.client import ConsumerClient, ConsumerRecord, Offsets, TopicPartition
from consumer.offsets import OffsetTracker, record_commit
from consumer.rebalance import RebalanceListener
from consumer.records import shown, shown_headers, shown_timestamp

#: Longest a poll may block, so a stop request is seen within this.
POLL_TIMEOUT_MS = 500
#: How often partition lag is recomputed.
LAG_INTERVAL_S = 1.0


class ConsumerService:
    """A member of the consumer group that logs, counts and commits each message."""

    def __init__(
        self,
        plan: ConsumerPlan,
        client: ConsumerClient,
        health: Health,
        shutdown: Shutdown,
        *,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        settings = plan.settings
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
        self._sample = Sampler(settings.log_message_every)
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
        self._topic_missing = False
        self._topic_backoff = Backoff()
        self._poll_backoff = Backoff()
        self._topic_check_due = 0.0
        self._work_s = settings.simulated_work_ms / 1000
        self._commit_interval_s = plan.commit_interval_ms / 1000
        self._commit_due = 0.0
        self._throttle = ThrottleWatch(client.metrics)

    def run(self) -> None:
        self._client.subscribe(
            [self._topic],
            listener=RebalanceListener(self._client, self._offsets, self._group_id),
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
        try:
            batch = self._client.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=self._max_records)
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
            self._health.set_ready(False, f"topic {self._topic} is not available")
        else:
            self._health.set_ready(state != MemberState.UNJOINED, "not a member of the group")
        if batch:
            self._process_batch(batch)
        self._commit_processed()
        self._throttle.check()
        if self._clock() >= self._lag_due:
            self._update_lag()

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
        self._log.error(
            events.TOPIC_UNAVAILABLE, topic=self._topic, retry_in_s=round(delay, 2), error=error
        )

    def _process_batch(self, batch: Mapping[TopicPartition, Sequence[ConsumerRecord]]) -> None:
        """Process a batch, within half of max.poll.interval.ms, and commit what was done.

        A batch that would outlast the poll interval gets the consumer thrown
        out of the group, and re-fetched and thrown out again: the endless
        rebalance loop of a slow consumer. So the batch is cut short instead,
        the rest is fetched again by the next poll, and later polls ask for
        fewer records until they fit.

        This loop runs once per message, so it keeps to what must happen per
        message; timings are collected in lists and go to the histograms
        once per batch.
        """
        clock = self._clock
        stopping = self._shutdown.event.is_set
        sample, work_s = self._sample, self._work_s
        started = now = clock()
        deadline = started + self._batch_budget_s
        durations: list[float] = []
        latencies: list[float] = []
        returned = sum(len(records) for records in batch.values())
        handled = 0
        counts = [0, 0, 0]  # envelopes, other values, tombstones: as self._consumed
        for partition, records in batch.items():
            if self._client.group_metadata().state == MemberState.UNJOINED:
                break  # expelled meanwhile: the rest is another member's to process
            done = 0
            for record in records:
                # At least one message per poll, so that even a slow one makes progress.
                if stopping() or (handled and now >= deadline):
                    break
                value = record.value
                envelope = message.envelope_of(value)
                if envelope is not None:
                    counts[0] += 1
                    sent_at = envelope.sent_at.timestamp()
                else:
                    counts[1 if value is not None else 2] += 1
                    # Any other record: latency from its own timestamp, if it has one.
                    sent_at = record.timestamp / 1000 if record.timestamp >= 0 else 0.0
                if work_s:
                    self._shutdown.wait(work_s)
                if sent_at:
                    # Clocks differ: a producer ahead of us is not a negative latency.
                    latency = time.time() - sent_at
                    latencies.append(latency if latency > 0 else 0.0)
                if sample():
                    self._log_received(record, envelope)
                end = clock()
                durations.append(end - now)
                now = end
                done += 1
                handled += 1
            if done:
                self._offsets.processed(partition, records[done - 1].offset + 1)
            if done < len(records) and partition in self._client.assignment():
                self._client.seek(partition, records[done].offset)
        self._duration.observe_many(durations)
        self._latency.observe_many(latencies)
        for counter, count in zip(self._consumed, counts, strict=True):
            counter.inc(count)
        self._fit_batch_size(handled, returned, now - started)

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

    def _log_received(self, record: ConsumerRecord, envelope: message.Envelope | None) -> None:
        value = record.value
        fields = {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "timestamp": shown_timestamp(record.timestamp),
            "key": shown(record.key),
            "headers": shown_headers(record.headers),
            "kind": "envelope" if envelope else "other" if value is not None else "tombstone",
            "size": None if value is None else len(value),
            "content": shown(value),
        }
        if envelope is not None:
            fields["seq"] = envelope.seq
            fields["producer"] = envelope.producer
        self._log.info(events.MESSAGE_RECEIVED, **fields)

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
