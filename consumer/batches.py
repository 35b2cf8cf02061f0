"""The fate of a batch: handled together, retried together, or handed over a record at a time.

A batch handler (``@consumer.handler.batch``) gets records of one partition
in offset order, for work cheaper in bulk. When it raises, the batch is
retried as a batch with the record's backoff, up to
``CONSUMER_RETRY_ATTEMPTS`` calls (``DependencyUnavailable``: until it
works). When those are spent, or the handler refused the batch
(``RecordRefused``), its records are handed over one at a time (each a
batch of one, with its own tries), so that the record that fails is
dead-lettered, or stops the consumer, and the others are handled. A handler
that knows which record failed raises ``BatchFailed(index, error)``: the
records before it are done, it alone goes the one-at-a-time way, and those
after it come again as a batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from opentelemetry.trace import Span

from common.backoff import Backoff
from consumer.fate import Log, Outcome, Settle, Waiter, gives_up, inside, log_retrying
from consumer.handler import BatchFailed, BatchHandler, DependencyUnavailable, Record
from consumer.tracing import RecordSpans


class SettleBatch:
    """Runs a batch handler on one batch until each record's fate is settled."""

    def __init__(
        self,
        handle: BatchHandler,
        one_at_a_time: Settle,
        *,
        attempts: int,
        backoff_s: tuple[float, float],
        log: Log,
        wait: Waiter,
        spans: RecordSpans | None = None,
    ) -> None:
        self._spans = spans
        self._handle = handle
        self._one = one_at_a_time
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._log = log
        self._wait = wait

    def __call__(self, records: Sequence[Record]) -> Sequence[Outcome]:
        outcomes: list[Outcome] = []
        while records:
            started = time.perf_counter()
            tried = self._try(records)
            if tried is None:
                # To be tried no more (its partition goes, or the consumer stops).
                return outcomes
            done, named = tried
            if done:
                self._one.counted(records[:done], started)
                outcomes += [Outcome.OK] * done
            records = records[done:]
            # Those left, one at a time: the named one alone, then the rest as a batch;
            # after a batch given up on, every one of them.
            for record in records[:1] if named else records:
                outcome = self._one(record)
                outcomes.append(outcome)
                if outcome is Outcome.FAILED or outcome is Outcome.ABANDONED:
                    return outcomes
            records = records[1:] if named else []
        return outcomes

    def _try(self, records: Sequence[Record]) -> tuple[int, bool] | None:
        """Call the handler on *records* until it returns, names a record, or its tries
        are spent: how many records are done, and whether the next one was named; None
        when it may be tried no more."""
        span = None if self._spans is None else self._spans.start_batch(records)
        try:
            return self._tries(records, span)
        finally:
            if span is not None:
                span.end()

    def _tries(self, records: Sequence[Record], span: Span | None) -> tuple[int, bool] | None:
        backoff = Backoff(*self._backoff_s)
        attempts = 0
        while True:
            try:
                with inside(span, record_exception=True):
                    self._handle(records)
            except BatchFailed as failed:
                if 0 <= failed.index < len(records):
                    return failed.index, True
                error: Exception = failed
            except Exception as raised:  # noqa: BLE001  (the user's code: any error is theirs)
                error = raised
            else:
                return len(records), False
            attempts += 1
            if len(records) == 1 or (
                gives_up(error, attempts, self._attempts)
                and not isinstance(error, DependencyUnavailable)
            ):
                # Spent, or refused: one at a time, from the first record.
                return 0, False
            delay = backoff.next()
            self._one.count_retried(len(records))
            with inside(span):
                log_retrying(self._log, records[0], attempts, error, delay, records=len(records))
            if span is not None:
                span.add_event("retry", {"attempt": attempts + 1})
            if not self._wait(records[0], delay):
                return None


def one_at_a_time(handle: BatchHandler) -> Callable[[Record], object]:
    """*handle* as a handler of one record: a batch of one, whose BatchFailed is the
    error it names (a RecordRefused is dead-lettered at once)."""

    def handle_one(record: Record) -> object:
        try:
            return handle((record,))
        except BatchFailed as failed:
            raise failed.error from failed

    return handle_one
