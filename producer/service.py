"""The producer loop: numbered messages at a steady rate until asked to stop.

Every message gets an answer: delivered or failed. kafka-python promises one
within delivery.timeout.ms, and 3.0.12 can break that promise: after a batch
it had already sent expires in a long outage, its idempotent producer waits
for a new producer id it never asks for, and sends nothing again. So the
loop watches for sends left unanswered past that deadline, reports them as
failed, and replaces the client.
"""

from __future__ import annotations

import functools
import os
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from kafka.errors import KafkaError, KafkaTimeoutError

from common import message
from common.config import ProducerSettings
from common.http import Health
from common.logging import Sampler
from common.shutdown import Shutdown
from producer import metrics

#: Seconds the final flush may take; with close() it stays inside Docker's 10 s grace.
FLUSH_TIMEOUT_S = 5.0
#: The longest the loop goes without checking for a stop request or beating its heart.
_TICK_S = 0.5
#: Slack on top of the client's own deadline before a send counts as unanswered.
STALL_GRACE_S = 5.0
#: Most sends left unanswered before the loop waits for answers. Without a
#: bound, a producer at rate 0 queued far faster than kafka-python's IO thread
#: could deliver (it had the GIL less): memory grew without end and messages
#: waited seconds in the queue.
MAX_UNANSWERED = 5_000


def producer_id() -> str:
    """Names this run of the producer; its sequence numbers are unique within it."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


class ProducerService:
    """Sends numbered messages; logs and counts each delivery or failure.

    kafka-python answers each send on its IO thread. The answer is only
    queued there; the main loop takes the queue between sends and does all
    the bookkeeping, so no lock is taken per message and the IO thread,
    which every send waits on, does as little as it can.
    """

    def __init__(
        self,
        settings: ProducerSettings,
        connect: Callable[[], Any | None],
        health: Health,
        shutdown: Shutdown,
    ) -> None:
        self._settings = settings
        self._connect = connect
        self._client: Any = None
        self._health = health
        self._shutdown = shutdown
        self._topic = settings.topic
        self._id = producer_id()
        self._log = structlog.get_logger().bind(producer=self._id)
        self._sample = Sampler(settings.log_message_every)
        self._sent = metrics.SENT.labels(self._topic)
        self._sent_bytes = metrics.SENT_BYTES.labels(self._topic)
        self._latency = metrics.DELIVERY_DURATION.labels("send", self._topic)
        # seq -> when it was sent, until its answer is taken off the queue.
        self._pending: dict[int, float] = {}
        # (seq, when answered, RecordMetadata or exception), filled by the IO thread.
        self._answers: deque[tuple[int, float, Any]] = deque()
        # Set by the IO thread on an answer while the loop waits for one.
        self._answered = threading.Event()
        self._waiting = False
        self._wake_at = 0
        self._stall_after_s = (
            settings.delivery_timeout_ms + settings.effective_request_timeout_ms
        ) / 1000 + STALL_GRACE_S
        self._stall_check_due = 0.0

    def run(self) -> None:
        """Connect, wait for the topic, and send until asked to stop."""
        self._client = self._connect()
        if self._client is None:
            return
        if self._wait_for_topic():
            self._loop()
        self._close()

    def _wait_for_topic(self) -> bool:
        """Block until the topic's partitions are known; False if told to stop first."""
        attempt = 0
        while not self._shutdown.requested:
            self._health.beat()
            try:
                partitions = self._client.partitions_for(self._topic)
            except KafkaError as exc:
                partitions, error = None, type(exc).__name__
            else:
                error = "UnknownTopicOrPartitionError"
            if partitions:
                self._health.set_ready(True)
                self._log.info("topic.ready", topic=self._topic, partitions=len(partitions))
                return True
            attempt += 1
            delay = min(30.0, 0.5 * 2**attempt)
            self._health.set_ready(False, f"topic {self._topic} is not available")
            self._log.error("topic.unavailable", topic=self._topic, error=error, retry_in_s=delay)
            self._shutdown.wait(delay)
        return False

    def _loop(self) -> None:
        rate = self._settings.rate
        interval = 1.0 / rate if rate else 0.0
        next_at = time.monotonic()
        seq = 0
        while not self._shutdown.requested:
            self._health.beat()
            if self._answers:
                self._take_answers()
            if interval:
                delay = next_at - time.monotonic()
                if delay > 0:
                    self._shutdown.wait(min(delay, _TICK_S))
                    continue
                # After a stall (a blocked send, a paused VM) resume the rate, do not burst.
                next_at = max(next_at + interval, time.monotonic() - 1.0)
            if len(self._pending) >= MAX_UNANSWERED:
                self._wait_for_answers()
                self._check_stalled()
                continue
            seq += 1
            self._send(seq)
            self._check_stalled()
            if self._client is None:
                return

    def _send(self, seq: int) -> None:
        key, value = message.encode(self._id, seq, datetime.now(UTC), self._settings.message_size)
        self._pending[seq] = time.perf_counter()
        try:
            future = self._client.send(self._topic, key=key, value=value)
        except KafkaError as exc:
            # Raised before the record was queued (no metadata or buffer space in time).
            if self._pending.pop(seq, None) is not None:
                self._count_failure(seq, exc)
            return
        # One bound callable for both outcomes: this runs per message, on the hot path.
        answer = functools.partial(self._queue_answer, seq)
        future.add_callback(answer)
        future.add_errback(answer)

    def _queue_answer(self, seq: int, outcome: Any) -> None:
        # Runs on kafka-python's IO thread, once per message: queue it and no more.
        answers = self._answers
        answers.append((seq, time.perf_counter(), outcome))
        if self._waiting and len(answers) >= self._wake_at:
            self._answered.set()

    def _wait_for_answers(self) -> None:
        """Wait, up to a tick, until half of the unanswered sends are answered.

        Half, not one: waking for every answer would hand the GIL back and
        forth with the IO thread once per batch it completes, and the IO
        thread runs fastest when left alone.
        """
        self._wake_at = len(self._pending) - MAX_UNANSWERED // 2
        self._waiting = True
        self._answered.clear()
        # Checked after clearing, so answers queued in between are not missed.
        if len(self._answers) < self._wake_at:
            self._answered.wait(_TICK_S)
        self._waiting = False
        self._take_answers()

    def _take_answers(self) -> None:
        """Count, time and sample-log every answer queued so far."""
        answers, pending, sample = self._answers, self._pending, self._sample
        latencies: list[float] = []
        sent_bytes = 0
        ready = False
        while answers:
            seq, answered_at, outcome = answers.popleft()
            started = pending.pop(seq, None)
            if started is None:
                # Already counted as failed when its client was given up on.
                continue
            if isinstance(outcome, BaseException):
                self._count_failure(seq, outcome)
                ready = False
                continue
            if not ready:
                # Ready as of this answer: before its log line, which may be watched for.
                self._health.set_ready(True)
                ready = True
            latencies.append(answered_at - started)
            sent_bytes += outcome.serialized_key_size + outcome.serialized_value_size
            if sample():
                self._log.info(
                    "message.sent",
                    topic=outcome.topic,
                    partition=outcome.partition,
                    offset=outcome.offset,
                    seq=seq,
                )
        if latencies:
            self._latency.observe_many(latencies)
            self._sent.inc(len(latencies))
            self._sent_bytes.inc(sent_bytes)

    def _check_stalled(self) -> None:
        now = time.perf_counter()
        if now < self._stall_check_due:
            return
        self._stall_check_due = now + _TICK_S
        # Sequence numbers go in in order, so the first one left is the oldest.
        oldest = next(iter(self._pending.values()), None)
        if oldest is None or now - oldest < self._stall_after_s:
            return
        abandoned, self._pending = sorted(self._pending), {}
        self._log.error(
            "producer.stalled",
            unanswered=len(abandoned),
            waited_s=round(time.perf_counter() - oldest, 1),
            first_seq=abandoned[0],
            last_seq=abandoned[-1],
        )
        stalled = KafkaTimeoutError("the Kafka client left the send unanswered; client replaced")
        for seq in abandoned:
            self._count_failure(seq, stalled)
        self._close_client(timeout=0)
        # None only when a stop was requested meanwhile; the loop then ends.
        self._client = self._connect()

    def _count_failure(self, seq: int, exc: BaseException) -> None:
        error_type = type(exc).__name__
        metrics.SEND_ERRORS.labels(self._topic, error_type).inc()
        self._health.set_ready(False, f"last send failed: {error_type}")
        self._log.warning("message.failed", topic=self._topic, seq=seq, error=str(exc))

    def _close(self) -> None:
        """Flush what is in flight, then close; all inside Docker's stop grace period."""
        if self._client is None:
            return
        started = time.monotonic()
        try:
            self._client.flush(timeout=FLUSH_TIMEOUT_S)
        except KafkaError as exc:
            self._log.warning("producer.flush_failed", error=str(exc))
        self._close_client(timeout=1.0)
        # Closing answered whatever the flush left: delivered, or failed.
        self._take_answers()
        self._log.info("producer.closed", took_s=round(time.monotonic() - started, 3))

    def _close_client(self, timeout: float) -> None:
        try:
            self._client.close(timeout=timeout)
        except KafkaError:
            # close() flushes first and gives up on a timeout before it stops
            # the IO thread; stop it anyway, failing what it still holds.
            sender = getattr(self._client, "_sender", None)
            if sender is not None:
                sender.force_close()
