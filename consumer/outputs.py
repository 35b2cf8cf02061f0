"""What the handler returns: records published, and acknowledged before the input is committed.

A handler may return an :class:`~consumer.handler.Output` or a list of them.
They are sent as it returns, on the thread it ran on, inside the record's
``process`` span (an output's ``traceparent`` is that span's child). Nothing
waits for each one: the consumer flushes them all before it commits offsets
(on time, at a rebalance and at the stop), so the broker has acknowledged a
record's outputs before its offset is committed. That is at least once: a
crash between the two publishes them again when the record is handled again.

An output the producer refuses as it is sent (wrong types, too large, a topic
that does not exist) fails the handler's call, like an error of its own: it
is retried, then dead-lettered. One the broker fails later, once the
producer's own retries are spent, stops the consumer before the next commit,
so that nothing past it is committed.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

from kafka.errors import KafkaError, KafkaTimeoutError
from opentelemetry.trace import get_current_span

from common.clients import Offsets, Outcome, ProducerClient
from common.failure import ServiceFailed
from common.runner import EXIT_CONFIG
from common.tracing import with_context
from consumer import metrics
from consumer.handler import BatchFailed, Output, Record, is_async

_F = TypeVar("_F", bound=Callable[..., object])


class OutputFailed(ServiceFailed):
    """The broker did not take an output: nothing past it may be committed."""

    def __init__(self, topic: str, error: BaseException) -> None:
        super().__init__(
            "output_failed",
            f"an output to {topic} failed: {type(error).__name__}: {error}; nothing after "
            "the last commit is committed, and its records are handled again at the next start",
        )


class TransactionAborted(Exception):
    """The transaction did not commit, and was aborted: its outputs are never visible to a
    read_committed reader, its offsets are not committed, and its records are to be
    handled again."""


class Outputs:
    """Sends what the handler returns, and says when all of it is acknowledged; or, for
    exactly once, sends it in a transaction that commits the input offsets with it."""

    def __init__(
        self,
        default_topic: str | None,
        connect: Callable[[], ProducerClient | None],
        *,
        timeout_s: float,
        transactional: bool = False,
    ) -> None:
        #: ``CONSUMER_OUTPUT_TOPIC``: where an output without a topic goes.
        self.default_topic = default_topic
        self._connect = connect
        #: Longest a stop waits for the last outputs' acknowledgements.
        self.timeout_s = timeout_s
        #: Exactly once: outputs and offsets go in transactions (:meth:`commit`).
        self.transactional = transactional
        self._in_transaction = False
        self._client: ProducerClient | None = None
        self._lock = threading.Lock()
        self._unanswered = 0
        self._failure: OutputFailed | None = None
        #: Which client's answers count: those of a client replaced are ignored.
        self._generation = 0

    def start(self) -> None:
        """Connect, and refuse to start when ``CONSUMER_OUTPUT_TOPIC`` does not exist, or
        transactions are asked for and the broker has none."""
        if self.transactional:
            self._client_now()
        if self.default_topic is None:
            return
        client = self._client_now()
        try:
            partitions = client.partitions_for(self.default_topic)
        except KafkaError:
            partitions = None
        if not partitions:
            raise ServiceFailed(
                "output_topic_missing",
                f"CONSUMER_OUTPUT_TOPIC={self.default_topic} does not exist (or this identity "
                "may not see it); create it (on Event Hubs, another event hub): it is never "
                "created for you",
            )

    def publishing(self, handle: _F) -> _F:
        """*handle*, publishing what it returns: a handler of one record or of a batch,
        plain or ``async def``."""
        publish = self.publish
        if is_async(handle):
            awaited = cast(Callable[[Any], Awaitable[object]], handle)

            @functools.wraps(handle)
            async def handle_async(record: Record) -> None:
                publish(await awaited(record))

            return cast(_F, handle_async)

        @functools.wraps(handle)
        def handle_and_publish(records: Any) -> None:
            try:
                returned = handle(records)
            except BatchFailed as failed:
                # The outputs of the records before the one that failed: they are done.
                publish(list(failed.outputs))
                raise
            publish(returned)

        return cast(_F, handle_and_publish)

    def publish(self, returned: object) -> None:
        """Send what a handler returned: None, an Output, or a list or tuple of them.

        Raises what makes the call a failure: TypeError or ValueError for what is no
        output, and what the producer refused at once.
        """
        if returned is None:
            return
        outputs = _outputs_in(returned)
        if not outputs:
            return
        span = get_current_span()
        traced = span.get_span_context().is_valid
        client = self._client_now()
        if self.transactional and not self._in_transaction:
            client.begin_transaction()
            self._in_transaction = True
        for output in outputs:
            topic = output.topic or self.default_topic
            if topic is None:
                raise ValueError(
                    "the handler returned an Output without a topic, and "
                    "CONSUMER_OUTPUT_TOPIC is not set"
                )
            headers = list(output.headers)
            if traced:
                headers = with_context(headers, span)
            with self._lock:
                self._unanswered += 1
                generation = self._generation
            try:
                future = client.send(topic, value=output.value, key=output.key, headers=headers)
            except BaseException:
                with self._lock:
                    self._unanswered -= 1
                raise
            future.add_both(functools.partial(self._answered, topic, generation))

    def _answered(self, topic: str, generation: int, outcome: Outcome) -> None:
        # Runs on the producer's IO thread.
        with self._lock:
            if generation != self._generation:
                return  # a replaced client's: its records are handled again
            self._unanswered -= 1
            # In a transaction, a failed output fails its commit instead: handled again.
            if (
                isinstance(outcome, BaseException)
                and self._failure is None
                and not self.transactional
            ):
                self._failure = OutputFailed(topic, outcome)
        outcome_label = "failed" if isinstance(outcome, BaseException) else "written"
        metrics.OUTPUTS.labels(topic, outcome_label).inc()

    def acknowledged(self) -> bool:
        """Whether every output sent so far is acknowledged; OutputFailed when one failed,
        now or before (once failed, never again: the consumer must stop)."""
        with self._lock:
            if self._failure is not None:
                raise self._failure
            return self._unanswered == 0

    def flush(self, timeout_s: float) -> bool:
        """Send what waits at once, and wait up to *timeout_s* for every answer: whether all
        are acknowledged; OutputFailed when one failed."""
        if self.acknowledged():
            return True
        client = self._client
        if client is not None:
            try:
                client.flush(timeout=timeout_s)
            except KafkaTimeoutError:
                return False
        return self.acknowledged()

    def replace(self) -> None:
        """Drop the client after a failed output, and what it still owed: the records since
        the last commit are handled again, and their outputs sent by a new client (an
        Event Hubs namespace that forgot the old producer id never takes it back)."""
        with self._lock:
            client, self._client = self._client, None
            self._generation += 1
            self._unanswered = 0
            self._failure = None
        if client is not None:
            _discard(client)

    def commit(self, offsets: Offsets, group_metadata: object) -> None:
        """Commit the transaction with the input *offsets*: its outputs and the offsets
        become visible together. TransactionAborted, once aborted, when it cannot commit
        (a member the group replaced is fenced here, by *group_metadata*)."""
        client = self._client_now()
        try:
            if not self._in_transaction:
                client.begin_transaction()
                self._in_transaction = True
            client.send_offsets_to_transaction(offsets, group_metadata)
            client.commit_transaction()
        except KafkaError as error:
            self._abort(client)
            raise TransactionAborted(f"{type(error).__name__}: {error}") from error
        finally:
            self._in_transaction = False

    def abort(self) -> bool:
        """Abort the open transaction, if any: whether there was one."""
        if not self._in_transaction or self._client is None:
            return False
        self._abort(self._client)
        self._in_transaction = False
        return True

    def _abort(self, client: ProducerClient) -> None:
        try:
            client.abort_transaction()
        except KafkaError:
            # Fenced, or failed for good: a new producer, initialised afresh, takes over.
            self._drop(client)

    def _drop(self, client: ProducerClient) -> None:
        with self._lock:
            if self._client is client:
                self._client = None
        _discard(client)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close(timeout=self.timeout_s)

    def _client_now(self) -> ProducerClient:
        with self._lock:
            if self._client is None:
                client = self._connect()
                if client is None:
                    raise ServiceFailed("stopped", "stopped before the outputs' client connected")
                if self.transactional:
                    _init_transactions(client)
                self._client = client
            return self._client


def _init_transactions(client: ProducerClient) -> None:
    """Fence this member's earlier producer; one line when the broker has no transactions."""
    try:
        client.init_transactions()
    except KafkaTimeoutError as error:
        _discard(client)
        raise ServiceFailed(
            "transactions_unavailable",
            f"CONSUMER_PROCESSING_GUARANTEE=exactly_once: no transaction coordinator "
            f"answered in time ({error})",
        ) from None
    except KafkaError as error:
        _discard(client)
        raise ServiceFailed(
            "transactions_unsupported",
            f"CONSUMER_PROCESSING_GUARANTEE=exactly_once: the broker refused transactions "
            f"({type(error).__name__}: {error}); Event Hubs has them only on Premium and "
            "Dedicated namespaces (a preview): use at_least_once on Standard",
            exit_status=EXIT_CONFIG,
        ) from None


def _outputs_in(returned: object) -> Sequence[Output]:
    if isinstance(returned, Output):
        outputs: Sequence[Output] = (returned,)
    elif isinstance(returned, list | tuple) and all(isinstance(one, Output) for one in returned):
        outputs = returned
    else:
        raise TypeError(
            f"the handler returned {type(returned).__name__}: return None, an Output, "
            "or a list of Outputs"
        )
    for output in outputs:
        _check(output)
    return outputs


def _check(output: Output) -> None:
    """TypeError naming the field of *output* that Kafka cannot carry."""
    for name in ("value", "key"):
        if not isinstance(getattr(output, name), bytes | None):
            raise TypeError(
                f"Output.{name} is {type(getattr(output, name)).__name__}: bytes or None "
                "(encode text yourself, say with .encode())"
            )
    if not isinstance(output.topic, str | None):
        raise TypeError(f"Output.topic is {type(output.topic).__name__}: a str, or None")
    for header in output.headers:
        if not (
            isinstance(header, tuple)
            and len(header) == 2
            and isinstance(header[0], str)
            and isinstance(header[1], bytes)
        ):
            raise TypeError("Output.headers holds something other than (str, bytes) pairs")


def _discard(client: ProducerClient) -> None:
    """Close *client* now, failing what it still holds: kafka-python's ``close`` flushes
    first, and raises when that takes longer than its timeout."""
    try:
        client.close(timeout=0)
    except KafkaError:
        client.force_close()
