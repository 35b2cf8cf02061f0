"""The dead-letter topic: where a record goes once the handler has given up on it.

Event Hubs has no dead-letter queue on its Kafka endpoint, so this is a
topic (an event hub) of the user's, which must exist: it is checked at
start and never created. A record is written there with its own key, value
and headers, plus headers that say where it came from and why it failed, as
text, so that kcat and Kafka's console consumer show them. The broker must
acknowledge it (acks=all) before the original's offset may be committed.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable

from kafka.errors import KafkaError
from opentelemetry.trace import Link, Span, get_current_span

from common.clients import ProducerClient, RecordMetadata, SendFuture
from common.failure import ServiceFailed
from common.tracing import Tracing, parent_of
from common.tracing import messaging as conventions
from consumer.handler import Record

#: The headers a dead letter carries, beside the original's own. The meaning of
#: Spring Kafka's ``kafka_dlt-*`` headers, written as text.
ORIGINAL_TOPIC = "dlt.original.topic"
ORIGINAL_PARTITION = "dlt.original.partition"
ORIGINAL_OFFSET = "dlt.original.offset"
ORIGINAL_TIMESTAMP = "dlt.original.timestamp"
CONSUMER_GROUP = "dlt.original.consumer.group"
EXCEPTION_TYPE = "dlt.exception.type"
EXCEPTION_MESSAGE = "dlt.exception.message"
EXCEPTION_STACKTRACE = "dlt.exception.stacktrace"
ATTEMPTS = "dlt.attempts"
#: Ours, replaced on each write: a replayed record that fails again is not named twice.
OURS = (
    ORIGINAL_TOPIC,
    ORIGINAL_PARTITION,
    ORIGINAL_OFFSET,
    ORIGINAL_TIMESTAMP,
    CONSUMER_GROUP,
    EXCEPTION_TYPE,
    EXCEPTION_MESSAGE,
    EXCEPTION_STACKTRACE,
    ATTEMPTS,
)
#: Characters of the exception's message kept: enough to read, bounded.
MESSAGE_CHARS = 1_000
#: Characters of the traceback kept, its end (the frame that raised, and the error):
#: a few frames' worth, small beside Event Hubs' 1 MB record.
STACKTRACE_CHARS = 4_000


class DeadLetterFailed(Exception):
    """The dead-letter topic did not take the record; it will be tried again."""


def exception_type(error: BaseException) -> str:
    """``module.Name``, or just ``Name`` for a builtin: what the headers and logs say."""
    kind = type(error)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def headers_for(
    record: Record,
    group_id: str,
    error: BaseException,
    attempts: int,
    redact: Callable[[str], str] = str,
) -> list[tuple[str, bytes]]:
    """The original's headers (ours from an earlier dead-lettering dropped), then ours.

    *redact* takes the service's known secrets out of the exception's message and
    traceback, as out of a log line.
    """
    kept = [(name, value or b"") for name, value in record.headers if name not in OURS]
    ours = {
        ORIGINAL_TOPIC: record.topic,
        ORIGINAL_PARTITION: str(record.partition),
        ORIGINAL_OFFSET: str(record.offset),
        ORIGINAL_TIMESTAMP: str(record.timestamp),
        CONSUMER_GROUP: group_id,
        EXCEPTION_TYPE: exception_type(error),
        EXCEPTION_MESSAGE: redact(str(error))[:MESSAGE_CHARS],
        EXCEPTION_STACKTRACE: redact(stacktrace(error)),
        ATTEMPTS: str(attempts),
    }
    return kept + [(name, value.encode()) for name, value in ours.items()]


def stacktrace(error: BaseException) -> str:
    """*error*'s traceback as Python prints it, its last STACKTRACE_CHARS characters."""
    text = "".join(traceback.format_exception(error))
    if len(text) <= STACKTRACE_CHARS:
        return text
    return "...\n" + text[-STACKTRACE_CHARS:].partition("\n")[2]


class DeadLetters:
    """Writes records to the dead-letter topic, one at a time, each acknowledged."""

    def __init__(
        self,
        topic: str,
        group_id: str,
        connect: Callable[[], ProducerClient | None],
        timeout_s: float,
        *,
        tracing: Tracing | None = None,
        client_id: str = "dead-letters",
        redact: Callable[[str], str] = str,
    ) -> None:
        self.topic = topic
        self._redact = redact
        #: Set when tracing is on: each write is a ``send`` span linked to the record's trace.
        self._tracing = tracing
        self._client_id = client_id
        self._group_id = group_id
        self._connect = connect
        #: Longest a write waits for the broker's acknowledgement.
        self.timeout_s = timeout_s
        self._client: ProducerClient | None = None
        # Writes not yet answered when their wait ran out, by the original's topic,
        # partition and offset: waited on again, never written twice.
        self._unanswered: dict[tuple[str, int, int], SendFuture] = {}
        # Workers write side by side (consumer/dispatch.py); the client is shared.
        self._lock = threading.Lock()

    def start(self) -> None:
        """Connect, and refuse to start when the topic does not exist."""
        client = self._client_now()
        try:
            partitions = client.partitions_for(self.topic)
        except KafkaError:
            partitions = None
        if not partitions:
            raise ServiceFailed(
                "dead_letter_topic_missing",
                f"CONSUMER_DEAD_LETTER_TOPIC={self.topic} does not exist (or this identity "
                "may not see it); create it (on Event Hubs, a second event hub): it is "
                "never created for you",
            )

    def write(
        self, record: Record, error: BaseException, attempts: int, *, wait_s: float
    ) -> RecordMetadata:
        """Write *record* and wait up to *wait_s* for the broker's acknowledgement.

        DeadLetterFailed if it is refused, or not acknowledged in time: the
        caller's poll loop cannot wait longer than what is left of its batch's
        time. An answer still to come is kept, and the next write of the same
        record waits for it instead of writing the record a second time.
        """
        span = None if self._tracing is None else self._span_for(record)
        try:
            written = self._write(record, error, attempts, wait_s)
        except DeadLetterFailed as failed:
            if span is not None:
                conventions.failed(span, failed, type(failed).__name__)
            raise
        if span is not None:
            conventions.delivered(span, written.partition, written.offset)
        return written

    def _span_for(self, record: Record) -> Span:
        """A ``send`` span, child of the record's ``process`` span, linked to the trace
        the record came with; the dead letter keeps the record's own ``traceparent``."""
        assert self._tracing is not None
        came_with = parent_of(record.headers).context
        links = (
            [Link(get_current_span(came_with).get_span_context())] if came_with is not None else []
        )
        return conventions.send_span(
            self._tracing.tracer,
            self.topic,
            record.key,
            None if record.value is None else len(record.value),
            client_id=self._client_id,
            links=links,
        )

    def _write(
        self, record: Record, error: BaseException, attempts: int, wait_s: float
    ) -> RecordMetadata:
        where = (record.topic, record.partition, record.offset)
        with self._lock:
            client = self._client_now()
            answer = self._unanswered.pop(where, None)
        try:
            if answer is None:
                answer = client.send(
                    self.topic,
                    value=record.value,
                    key=record.key,
                    headers=headers_for(record, self._group_id, error, attempts, self._redact),
                )
            wait_s = max(0.0, min(wait_s, self.timeout_s))
            try:
                return answer.get(timeout=wait_s)
            except KafkaError:
                if answer.is_done:
                    raise
            with self._lock:
                self._unanswered[where] = answer
            raise DeadLetterFailed(
                f"not acknowledged within {wait_s:.1f} s, what was left of the batch's time; "
                "waited for again"
            )
        except KafkaError as exc:
            if client.failed_for_good():
                # kafka-python fails every later send of this client: start afresh.
                self.close()
            raise DeadLetterFailed(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            self._unanswered.clear()
        if client is not None:
            client.close(timeout=self.timeout_s)

    def _client_now(self) -> ProducerClient:
        if self._client is None:
            client = self._connect()
            if client is None:
                raise DeadLetterFailed("stopped before the dead-letter client could connect")
            self._client = client
        return self._client
