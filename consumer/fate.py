"""The fate of one record: handled, retried, dead-lettered, or the consumer stops.

The policy (which failure is retried, for how long), the lines that say
what happened and the stop are written once, here, for both ways of running
the handler: one record at a time on the polling thread
(``consumer/in_order.py``, which pauses a partition instead of waiting), and
side by side on workers (``consumer/dispatch.py``), where :class:`Settle`
waits out a record's backoff on its worker, holding back only its key.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import cast

import structlog
from opentelemetry.trace import Span, use_span

from common import events, message
from common.backoff import Backoff
from common.clients import RecordMetadata
from common.failure import ServiceFailed
from common.health import Health
from consumer import metrics
from consumer.dead_letter import DeadLetterFailed, DeadLetters, exception_type
from consumer.handler import DependencyUnavailable, Record, RecordRefused
from consumer.tracing import RecordSpans

#: Characters of an exception's message in a log line.
ERROR_CHARS = 500

Log = structlog.typing.FilteringBoundLogger


class Outcome(enum.Enum):
    """What became of a record."""

    #: The handler returned: done, its offset may be committed.
    OK = "ok"
    #: Given up on and written to the dead-letter topic: done.
    DEAD_LETTERED = "dead_lettered"
    #: Given up on, with no dead-letter topic: the consumer stops before it.
    FAILED = "failed"
    #: Not settled: its partition went to another member, or the consumer stops.
    ABANDONED = "abandoned"


def gives_up(error: BaseException, attempts: int, limit: int) -> bool:
    """Whether the handler has had its tries on a record after *attempts* failed calls.

    A dependency that is down is waited for, however long; a record the
    handler refused is given up at once.
    """
    if isinstance(error, DependencyUnavailable):
        return False
    return isinstance(error, RecordRefused) or attempts >= limit


def gave_up(health: Health, record: Record, error: BaseException | None = None) -> ServiceFailed:
    """The stop, not ready from now on: the handler gave up on *record* with no dead-letter
    topic, or (with *error*) our own code failed around it on a worker."""
    where = f"{record.topic}[{record.partition}]@{record.offset}"
    health.set_ready(False, f"stopping: the handler failed on {where}")
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


def said(error: BaseException) -> str:
    """An exception as a log field: its type and the start of its message."""
    return f"{exception_type(error)}: {str(error)[:ERROR_CHARS]}"


def log_retrying(
    log: Log,
    record: Record,
    attempts: int,
    error: BaseException,
    delay: float,
    *,
    records: int = 1,
) -> None:
    """A record (or a batch of *records* from it on) is tried again after *delay*."""
    batch = {"records": records} if records > 1 else {}
    log.warning(
        events.HANDLER_RETRYING,
        **batch,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        attempt=attempts,
        until_it_works=isinstance(error, DependencyUnavailable),
        retry_in_s=round(delay, 2),
        error=said(error),
        exc_info=error,
    )


def log_dead_lettered(
    log: Log,
    record: Record,
    attempts: int,
    error: BaseException,
    *,
    topic: str,
    written: RecordMetadata,
) -> None:
    log.warning(
        events.RECORD_DEAD_LETTERED,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        attempts=attempts,
        error=said(error),
        exc_info=error,
        dead_letter_topic=topic,
        dead_letter_partition=written.partition,
        dead_letter_offset=written.offset,
    )


def log_dead_letter_failed(
    log: Log, record: Record, topic: str, failed: DeadLetterFailed, delay: float
) -> None:
    log.error(
        events.DEAD_LETTER_FAILED,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        dead_letter_topic=topic,
        error=str(failed)[:ERROR_CHARS],
        retry_in_s=round(delay, 2),
    )


def log_failed(log: Log, record: Record, attempts: int, error: BaseException) -> None:
    log.error(
        events.HANDLER_FAILED,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        attempts=attempts,
        error=said(error),
        exc_info=error,
    )


#: Waits *seconds* before a record is tried again; False when it must not be (its
#: partition went, or the consumer stops).
Waiter = Callable[[Record, float], bool]


class Settle:
    """Runs the handler on one record until its fate is settled; called on a worker.

    Only this record's worker waits between tries, so a record being retried
    holds back the records ordered behind it (its key, or its partition), and
    nothing else.
    """

    def __init__(
        self,
        handle: Callable[[Record], object],
        topic: str,
        group_id: str,
        *,
        attempts: int,
        backoff_s: tuple[float, float],
        dead_letters: DeadLetters | None,
        spans: RecordSpans | None,
        log: Log,
        wait: Waiter,
        work_s: float = 0.0,
    ) -> None:
        self._handle = handle
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._dead_letters = dead_letters
        self._spans = spans
        self._log = log
        self._wait = wait
        self._work_s = work_s
        self._outcomes = {
            outcome: metrics.HANDLED.labels(topic, outcome.value)
            for outcome in (Outcome.OK, Outcome.DEAD_LETTERED, Outcome.FAILED)
        }
        self._retried = metrics.HANDLED.labels(topic, "retried")
        self._duration = metrics.PROCESS_DURATION.labels(topic)
        self._latency = metrics.END_TO_END.labels(topic)
        self._consumed = {
            kind: metrics.CONSUMED.labels(topic, group_id, kind)
            for kind in ("envelope", "other", "tombstone")
        }

    def __call__(self, record: Record) -> Outcome:
        """Settle *record* with a plain function as the handler, on this thread."""
        started = time.perf_counter()
        span = None if self._spans is None else self._spans.start(record)
        outcome, error = self._settle(record, span)
        return self._ended(record, started, span, outcome, error)

    def each(self, records: Sequence[Record]) -> Sequence[Outcome]:
        """Settle the one record of a unit of work (``consumer/dispatch.py``)."""
        return (self(records[0]),)

    def count_retried(self, records: int) -> None:
        """Count *records*, failed together, as to be tried again."""
        self._retried.inc(records)

    def counted(self, records: Sequence[Record], started: float) -> None:
        """Count *records*, handled together since *started*, as handled."""
        share = (time.perf_counter() - started) / len(records)
        for record in records:
            self._count(record, time.perf_counter() - share)
        self._outcomes[Outcome.OK].inc(len(records))

    async def settle_async(self, record: Record) -> Outcome:
        """Settle *record* with an ``async def`` handler, on the event loop; what blocks
        (a backoff's wait, a dead letter's write) waits on a thread of the loop's."""
        started = time.perf_counter()
        span = None if self._spans is None else self._spans.start(record)
        outcome, error = await self._settle_async(record, span)
        return self._ended(record, started, span, outcome, error)

    def _ended(
        self,
        record: Record,
        started: float,
        span: Span | None,
        outcome: Outcome,
        error: BaseException | None,
    ) -> Outcome:
        if span is not None:
            if error is None:
                span.end()
            else:
                self._spans_done(span, outcome, error)
        if outcome is not Outcome.ABANDONED:
            self._count(record, started)
            self._outcomes[outcome].inc()
        return outcome

    def _settle(self, record: Record, span: Span | None) -> tuple[Outcome, BaseException | None]:
        backoff = Backoff(*self._backoff_s)
        attempts = 0
        while True:
            if self._work_s:
                time.sleep(self._work_s)
            try:
                with inside(span, record_exception=True):
                    self._handle(record)
            except Exception as error:  # noqa: BLE001  (the user's code: any error is theirs)
                attempts += 1
                if gives_up(error, attempts, self._attempts):
                    return self._give_up(record, attempts, error, span, backoff)
                delay = self._retrying(record, attempts, error, span, backoff)
                if not self._wait(record, delay):
                    return Outcome.ABANDONED, error
                continue
            return Outcome.OK, None

    async def _settle_async(
        self, record: Record, span: Span | None
    ) -> tuple[Outcome, BaseException | None]:
        """:meth:`_settle`, awaiting the handler."""
        backoff = Backoff(*self._backoff_s)
        attempts = 0
        handle = cast(Callable[[Record], Awaitable[object]], self._handle)
        while True:
            if self._work_s:
                await asyncio.sleep(self._work_s)
            try:
                with inside(span, record_exception=True):
                    await handle(record)
            except Exception as error:  # noqa: BLE001  (the user's code: any error is theirs)
                attempts += 1
                if gives_up(error, attempts, self._attempts):
                    return await asyncio.to_thread(
                        self._give_up, record, attempts, error, span, backoff
                    )
                delay = self._retrying(record, attempts, error, span, backoff)
                if not await asyncio.to_thread(self._wait, record, delay):
                    return Outcome.ABANDONED, error
                continue
            return Outcome.OK, None

    def _retrying(
        self,
        record: Record,
        attempts: int,
        error: BaseException,
        span: Span | None,
        backoff: Backoff,
    ) -> float:
        """Say that *record* is tried again, and when: the wait in seconds."""
        delay = backoff.next()
        self._retried.inc()
        with inside(span):
            log_retrying(self._log, record, attempts, error, delay)
        if span is not None:
            span.add_event("retry", {"attempt": attempts + 1})
        return delay

    def _give_up(
        self,
        record: Record,
        attempts: int,
        error: BaseException,
        span: Span | None,
        backoff: Backoff,
    ) -> tuple[Outcome, BaseException]:
        dead_letters = self._dead_letters
        if dead_letters is None:
            with inside(span):
                log_failed(self._log, record, attempts, error)
            return Outcome.FAILED, error
        while True:
            try:
                with inside(span):
                    written = dead_letters.write(
                        record, error, attempts, wait_s=dead_letters.timeout_s
                    )
                    log_dead_lettered(
                        self._log,
                        record,
                        attempts,
                        error,
                        topic=dead_letters.topic,
                        written=written,
                    )
            except DeadLetterFailed as failed:
                delay = backoff.next()
                log_dead_letter_failed(self._log, record, dead_letters.topic, failed, delay)
                if not self._wait(record, delay):
                    return Outcome.ABANDONED, error
                continue
            return Outcome.DEAD_LETTERED, error

    def _spans_done(self, span: Span, outcome: Outcome, error: BaseException) -> None:
        assert self._spans is not None
        if outcome is Outcome.ABANDONED:
            span.add_event("partition_revoked")
            span.end()
        else:
            self._spans.failed(span, outcome.value, error)

    def _count(self, record: Record, started: float) -> None:
        end = time.perf_counter()
        self._duration.observe_many((end - started,))
        value = record.value
        envelope = message.envelope_of(value)
        if envelope is not None:
            self._consumed["envelope"].inc()
            sent_at = envelope.sent_at.timestamp()
        else:
            self._consumed["other" if value is not None else "tombstone"].inc()
            sent_at = record.timestamp / 1000 if record.timestamp >= 0 else 0.0
        if sent_at:
            # Clocks differ: a producer ahead of us is not a negative latency.
            self._latency.observe_many((max(0.0, time.time() - sent_at),))


def inside(
    span: Span | None, *, record_exception: bool = False
) -> contextlib.AbstractContextManager[object]:
    """The record's span as the current one, when tracing: its lines carry its ids, and
    what the handler does is its child."""
    if span is None:
        return contextlib.nullcontext()
    return use_span(
        span,
        end_on_exit=False,
        record_exception=record_exception,
        # A failed try is an event; the status says how the record ended.
        set_status_on_exception=False,
    )
