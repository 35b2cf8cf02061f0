"""The producer loop: numbered messages at a steady rate until asked to stop, or the
records of a source (``producer/source.py``) until it ends.

Every message gets an answer: delivered or failed. kafka-python promises one
within delivery.timeout.ms, and 3.0.12 can break that promise: after a batch
it had already sent expires in a long outage, its idempotent producer waits
for a new producer id it never asks for, and sends nothing again. So the
loop watches for sends left unanswered past that deadline, reports them as
failed, and replaces the client.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog
from kafka.errors import KafkaError, KafkaTimeoutError, UnsupportedForMessageFormatError
from opentelemetry.trace import Span, use_span

from common import events, message
from common.backoff import Backoff
from common.clients import ProducerClient, RecordMetadata
from common.config import ProducerPlan
from common.failure import ServiceFailed
from common.health import Health
from common.logging import Sampler
from common.shutdown import Shutdown
from common.throttle import ThrottleWatch
from common.topics import MissingTopic
from common.tracing import Tracing, with_context
from common.tracing.messaging import delivered, failed, send_span
from producer import metrics
from producer.feed import Feed
from producer.inflight import InFlight, limit_for
from producer.pace import Pace
from producer.source import Skipped

#: Seconds the final flush may take; with close() it stays inside Docker's 10 s grace.
FLUSH_TIMEOUT_S = 5.0
#: The longest the loop goes without checking for a stop request or beating its heart.
_TICK_S = 0.5
#: Slack on top of the client's own deadline before a send counts as unanswered.
STALL_GRACE_S = 5.0
#: Longest the loop waits for a source while sends are unanswered.
_FEED_WAIT_S = 0.01


@dataclass
class _Tally:
    """What became of a source's records: each one sent is delivered or failed."""

    #: Records taken from the source to send (a skipped input is none).
    read: int = 0
    delivered: int = 0
    failed: int = 0
    skipped: int = 0


def producer_id() -> str:
    """Names this run of the producer; its sequence numbers are unique within it."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


class ProducerService:
    """Sends numbered messages; logs and counts each delivery or failure."""

    def __init__(
        self,
        plan: ProducerPlan,
        connect: Callable[[], ProducerClient | None],
        health: Health,
        shutdown: Shutdown,
        *,
        clock: Callable[[], float] = time.perf_counter,
        feed: Feed | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self._settings = plan.settings
        #: Set when tracing is on: every send is a span, and its context goes in the headers.
        self._tracing = tracing if tracing is not None and tracing.enabled else None
        self._client_id = plan.connection.client_id
        self._missing = MissingTopic(
            plan.topic, plan.connection.bootstrap_servers, plan.connection.namespace
        )
        #: The recording spans of sends not answered yet, by seq.
        self._spans: dict[int, Span] = {}
        #: The records of PRODUCER_SOURCE; None: numbered envelopes.
        self._feed = feed
        self._tally = _Tally()
        #: Records the source gave and the loop never took, counted at the stop.
        self._unsent = 0
        #: Pacing, answer times and the stall check; a test moves it by hand.
        self._clock_s = clock
        self._connect = connect
        self._client: ProducerClient | None = None
        self._health = health
        self._shutdown = shutdown
        self._topic = plan.topic
        self._id = producer_id()
        self._log = structlog.get_logger().bind(producer=self._id)
        self._sample = Sampler(plan.settings.log_message_every)
        self._clock = message.Clock()
        self._sent = metrics.SENT.labels(self._topic)
        self._sent_bytes = metrics.SENT_BYTES.labels(self._topic)
        self._latency = metrics.DELIVERY_DURATION.labels("send", self._topic)
        deadline_ms = plan.kafka["delivery_timeout_ms"] + plan.kafka["request_timeout_ms"]
        self._inflight = InFlight(
            stall_after_s=deadline_ms / 1000 + STALL_GRACE_S,
            limit=limit_for(plan.settings.message_size),
            clock=clock,
        )
        self._throttle = ThrottleWatch(self._client_metrics)
        self._compression = plan.kafka["compression_type"]
        #: Set when the broker refuses compressed batches; no retry can fix that.
        self._refused: BaseException | None = None
        #: The last non-retriable failure, after which the client may be unusable.
        self._gave_up_on: str | None = None

    def run(self) -> None:
        """Connect, wait for the topic, and send until asked to stop."""
        self._client = self._connect()
        if self._client is None:
            return
        if self._wait_for_topic(self._client):
            if self._feed is None:
                self._paced(self._envelopes())
            else:
                self._feed.start()
                self._paced(self._records_of(self._feed))
        self._close()
        if self._feed is not None:
            self._account_for(self._feed)
        if self._refused is not None:
            raise ServiceFailed(
                "compression_refused",
                f"the broker refused {self._compression}-compressed batches "
                f"({type(self._refused).__name__}); Event Hubs takes them only on Premium and "
                "Dedicated namespaces: set KAFKA_COMPRESSION_TYPE=none",
            )
        if self._feed is not None:
            self._fail_unless_delivered(self._feed)

    def _client_metrics(self) -> Mapping[str, Mapping[str, float]]:
        return {} if self._client is None else self._client.metrics()

    def _wait_for_topic(self, client: ProducerClient) -> bool:
        """Block until the topic's partitions are known; False if told to stop first."""
        backoff = Backoff()
        missing = self._missing
        while not self._shutdown.requested:
            self._health.beat()
            asked = time.monotonic()
            error: str | None = None
            try:
                partitions = client.partitions_for(self._topic)
            except KafkaError as exc:
                partitions, error = None, type(exc).__name__
            if partitions:
                self._health.set_ready(True)
                self._log.info(events.TOPIC_READY, topic=self._topic, partitions=len(partitions))
                return True
            delay = backoff.next()
            if error is None or client.heard_topic_missing(self._topic, asked):
                # The broker answered, and knows no such topic.
                self._health.set_ready(False, missing.why)
                missing.found_missing()
            else:
                self._health.set_ready(False, f"topic {self._topic} could not be checked: {error}")
                self._log.error(
                    events.TOPIC_UNAVAILABLE,
                    topic=self._topic,
                    error=error,
                    retry_in_s=round(delay, 2),
                )
            self._health.expect(delay)
            self._shutdown.wait(delay)
        return False

    def _paced(self, burst: Callable[[int], int | None]) -> None:
        """Call *burst* with how many records may go now, at PRODUCER_RATE, until a stop.

        *burst* sends up to that many and says how many it took, or None when
        it has no more ever (the source ended). Between bursts the loop takes
        the broker's answers, beats the health check, and replaces a client
        that gave up.
        """
        pace = Pace(self._settings.rate, clock=self._clock_s)
        inflight = self._inflight
        while not self._shutdown.requested and self._refused is None:
            self._health.beat()
            self._throttle.check()
            if inflight.has_answers:
                self._take_answers()
            due = pace.due()
            if not due:
                wait_s = min(pace.wait_s(), _TICK_S)
                if inflight:
                    # Nothing to send yet: take the next answer as it comes, so its latency is true.
                    inflight.wait(wait_s)
                else:
                    self._shutdown.wait(wait_s)
                continue
            room = inflight.room
            if not room:
                inflight.wait(_TICK_S)
                self._take_answers()
                continue
            took = burst(min(due, room))
            if took is None:
                return
            pace.took(took)
            if not self._check_client():
                return

    def _envelopes(self) -> Callable[[int], int | None]:
        """Bursts of numbered envelopes, for ever."""
        seq = 0

        def burst(count: int) -> int:
            nonlocal seq
            # The burst, in a row: nothing else per message, this is the hot path.
            first = seq + 1
            encode, stamp, size = message.encode, self._clock.stamp, self._settings.message_size
            send = self._send if self._tracing is None else self._send_traced
            for seq in range(first, first + count):
                if not send(seq, *encode(self._id, seq, stamp(), size)):
                    break  # the client could not queue it, after blocking: look after things
            return seq - first + 1

        return burst

    def _records_of(self, feed: Feed) -> Callable[[int], int | None]:
        """Bursts of what the source gives, until it has no more."""

        def burst(most: int) -> int | None:
            if feed.finished:
                return None
            # While sends are unanswered, wait for the source only briefly: their
            # answers are timed when taken.
            items = feed.take(most, _FEED_WAIT_S if self._inflight else _TICK_S)
            send = self._send if self._tracing is None else self._send_traced
            for index, item in enumerate(items):
                if isinstance(item, Skipped):
                    self._skip(item)
                    continue
                self._tally.read += 1
                if not send(self._tally.read, item.key, item.value, item.headers):
                    # The client could not queue it, after blocking: look after
                    # things before the rest, which go back to the feed unsent.
                    feed.unread(items[index + 1 :])
                    return index + 1
            return len(items)

        return burst

    def _skip(self, skipped: Skipped) -> None:
        self._tally.skipped += 1
        metrics.SOURCE_SKIPPED.labels(self._topic).inc()
        self._log.warning(events.SOURCE_SKIPPED, where=skipped.where, reason=skipped.reason)

    def _account_for(self, feed: Feed) -> None:
        """Say what became of every record the source gave, in one line."""
        unsent = self._unsent = feed.stop()
        tally = self._tally
        error = feed.error
        self._log.info(
            events.PRODUCER_FINISHED,
            records=tally.read + unsent,
            delivered=tally.delivered,
            failed=tally.failed,
            skipped=tally.skipped,
            unsent=unsent,
            source_ended=feed.finished,
            source_error=None if error is None else f"{type(error).__name__}: {error}",
        )

    def _fail_unless_delivered(self, feed: Feed) -> None:
        """Exit 1 unless every record the source gave was delivered and nothing skipped."""
        tally, unsent, error = self._tally, self._unsent, feed.error
        if error is not None:
            raise ServiceFailed(
                "source_failed",
                f"PRODUCER_SOURCE={self._settings.source} raised {type(error).__name__}: "
                f"{error}; what it gave before is accounted for in producer.finished",
                cause=error,
            )
        if tally.failed or tally.skipped or unsent:
            raise ServiceFailed(
                # Every record delivered, but some input made none: say that, not undelivered.
                "records_undelivered" if tally.failed or unsent else "inputs_skipped",
                f"of {tally.read + unsent} records {tally.failed} failed and {unsent} were "
                f"not sent, and {tally.skipped} inputs were skipped; see producer.finished",
            )

    def _send(
        self,
        seq: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> bool:
        """Send record *seq*; False if the client refused to queue it (counted as failed)."""
        assert self._client is not None
        try:
            future = self._client.send(self._topic, key=key, value=value, headers=headers)
        except KafkaError as exc:
            # Raised before the record was queued (no metadata or buffer space in time).
            self._count_failure(seq, exc)
            return False
        self._inflight.sent(seq, future)
        return True

    def _send_traced(
        self,
        seq: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> bool:
        """Send record *seq* as a ``send`` span, its context in the record's headers.

        A record that carries a trace already (a source's, from the user's
        app) is sent as its child. One whose trace was not sampled goes with
        its headers unchanged; one with no trace carries ours, sampled or
        not, so the consumer keeps this decision.
        """
        assert self._tracing is not None
        parent = self._tracing.parent_of(headers, self._topic, None, None)
        span = send_span(
            self._tracing.tracer,
            self._topic,
            key,
            None if value is None else len(value),
            client_id=self._client_id,
            parent=parent.context,
        )
        if span.is_recording():
            self._spans[seq] = span
            headers = with_context(headers, span)
        elif parent.context is None:
            headers = with_context(headers, span)
        return self._send(seq, key, value, headers)

    def _take_answers(self) -> None:
        """Count, time and sample-log the answers the oldest sends have by now."""
        sample = self._sample
        latencies: list[float] = []
        sent_bytes = 0
        ready = False
        spans = self._spans
        for seq, latency, outcome in self._inflight.take():
            if isinstance(outcome, BaseException):
                self._count_failure(seq, outcome)
                ready = False
                continue
            if not ready:
                # Ready as of this answer: before its log line, which may be watched for.
                self._health.set_ready(True)
                ready = True
            latencies.append(latency)
            sent_bytes += outcome.serialized_key_size + outcome.serialized_value_size
            span = spans.pop(seq, None) if spans else None
            if sample():
                self._log_sent(seq, outcome, span)
            if span is not None:
                delivered(span, outcome.partition, outcome.offset)
        if latencies:
            self._latency.observe_many(latencies)
            self._sent.inc(len(latencies))
            self._sent_bytes.inc(sent_bytes)
            self._tally.delivered += len(latencies)

    def _log_sent(self, seq: int, outcome: RecordMetadata, span: Span | None) -> None:
        if span is None:
            self._log.info(
                events.MESSAGE_SENT,
                topic=outcome.topic,
                partition=outcome.partition,
                offset=outcome.offset,
                seq=seq,
            )
            return
        with use_span(span, end_on_exit=False):
            self._log_sent(seq, outcome, None)

    def _check_client(self) -> bool:
        """Replace a client that gave up or left sends unanswered; False if stopping meanwhile."""
        if self._refused is not None:
            return True  # the loop ends; no client can fix that
        error, self._gave_up_on = self._gave_up_on, None
        client = self._client
        if error is not None and client is not None and client.failed_for_good():
            self._log.error(
                events.PRODUCER_CLIENT_FAILED,
                error=error,
                hint="kafka-python fails every later send after this error; client replaced",
            )
            self._close_client(timeout=0)
            # Closing answered what the old client still held: failed.
            self._take_answers()
            self._client = self._connect()
            return self._client is not None
        return self._check_stalled()

    def _check_stalled(self) -> bool:
        stall = self._inflight.stalled()
        if stall is None:
            return True
        self._log.error(
            events.PRODUCER_STALLED,
            unanswered=len(stall.seqs),
            waited_s=round(stall.waited_s, 1),
            first_seq=stall.seqs[0],
            last_seq=stall.seqs[-1],
        )
        error = KafkaTimeoutError("the Kafka client left the send unanswered; client replaced")
        for seq in stall.seqs:
            self._count_failure(seq, error)
        self._close_client(timeout=0)
        # None only when a stop was requested meanwhile; the loop then ends.
        self._client = self._connect()
        return self._client is not None

    def _count_failure(self, seq: int, exc: BaseException) -> None:
        if isinstance(exc, UnsupportedForMessageFormatError) and self._compression:
            self._refused = exc
        if not getattr(exc, "retriable", True):
            self._gave_up_on = str(exc)
        error_type = type(exc).__name__
        span = self._spans.pop(seq, None) if self._spans else None
        if span is not None:
            failed(span, exc, error_type)
        self._tally.failed += 1
        metrics.SEND_ERRORS.labels(self._topic, error_type).inc()
        self._health.set_ready(False, f"last send failed: {error_type}")
        self._log.warning(events.MESSAGE_FAILED, topic=self._topic, seq=seq, error=str(exc))

    def _close(self) -> None:
        """Flush what is in flight, then close; all inside Docker's stop grace period."""
        if self._client is None:
            return
        started = time.monotonic()
        try:
            self._client.flush(timeout=FLUSH_TIMEOUT_S)
        except KafkaError as exc:
            self._log.warning(events.PRODUCER_FLUSH_FAILED, error=str(exc))
        self._close_client(timeout=1.0)
        # Closing answered whatever the flush left: delivered, or failed.
        self._take_answers()
        # Whatever is still unanswered never will be now: failed, each in its own line.
        unanswered = KafkaTimeoutError("unanswered when the producer closed")
        for seq in self._inflight.abandon():
            self._count_failure(seq, unanswered)
        self._log.info(events.PRODUCER_CLOSED, took_s=round(time.monotonic() - started, 3))

    def _close_client(self, timeout: float) -> None:
        client = self._client
        if client is None:
            return
        try:
            client.close(timeout=timeout)
        except KafkaError:
            client.force_close()
