"""kafka-python's clients as the services use them, typed: one Protocol per client.

kafka-python ships no type hints; these say what we rely on, so mypy checks
the services' side of the boundary and a test can stand in a client of its
own (``common/clients/testing.py``). Each Protocol is met by the adapter of
``_kafka.py``, which is kafka-python's client with our workarounds applied.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Protocol

from kafka import OffsetAndMetadata

# --- Producing -------------------------------------------------------------------------


class RecordMetadata(Protocol):
    """Where the broker wrote a record."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def serialized_key_size(self) -> int: ...
    @property
    def serialized_value_size(self) -> int: ...


#: A send's answer: where it was written, or why it was not.
Outcome = RecordMetadata | BaseException


class SendFuture(Protocol):
    """A send's future, answered on kafka-python's IO thread."""

    @property
    def is_done(self) -> bool: ...
    @property
    def value(self) -> RecordMetadata:
        """Where the record was written; None until done, and after a failure."""

    @property
    def exception(self) -> BaseException | None: ...
    def add_both(self, f: Callable[[Outcome], object]) -> object:
        """Call *f* with the answer, on the IO thread (or now, if answered already)."""

    def get(self, timeout: float | None = None) -> RecordMetadata:
        """Wait up to *timeout* for the answer; KafkaTimeoutError when none came."""


class ProducerClient(Protocol):
    """``kafka.KafkaProducer``, as the producer service, dead letters and replay use it."""

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> SendFuture:
        """Queue a record; raises KafkaError when it cannot even be queued."""

    def partitions_for(self, topic: str) -> set[int] | None:
        """The topic's partitions, fetching metadata if needed."""

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued record is answered."""

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the IO thread."""

    def force_close(self) -> None:
        """Stop the IO thread after ``close()`` gave up, failing what it still holds."""

    def failed_for_good(self) -> bool:
        """Whether every later send will fail: the client must be replaced."""

    def heard_topic_missing(self, topic: str, since: float) -> bool:
        """Whether a broker said, since *since* (``time.monotonic``), that *topic* does
        not exist: a missing topic, not a missing broker."""

    def metrics(self) -> Mapping[str, Mapping[str, float]]:
        """The client's own figures, by group (throttle time among them)."""

    # A producer made with a transactional_id (exactly once, consumer/outputs.py).

    def init_transactions(self) -> None:
        """Fence earlier producers of this transactional id, aborting what they left open."""

    def begin_transaction(self) -> None: ...
    def send_offsets_to_transaction(
        self, offsets: Mapping[TopicPartition, OffsetAndMetadata], group_metadata: object
    ) -> None:
        """Commit *offsets* with the transaction; *group_metadata* (the consumer's) lets the
        broker fence a member the group has replaced (KIP-447)."""

    def commit_transaction(self) -> None: ...
    def abort_transaction(self) -> None: ...


# --- Consuming -------------------------------------------------------------------------


class TopicPartition(Protocol):
    """kafka-python's ``TopicPartition``: a hashable (topic, partition) pair."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    def __hash__(self) -> int: ...


class ConsumerRecord(Protocol):
    """One record as kafka-python hands it over."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes | None]]: ...


class GroupMetadata(Protocol):
    """Our membership of the group; ``state`` is a ``kafka.structs.MemberState``."""

    @property
    def state(self) -> object: ...


#: Offsets to commit: the next offset to read, per partition.
Offsets = Mapping[TopicPartition, OffsetAndMetadata]
#: Called on the IO thread with the offsets and None, or the commit's error.
CommitCallback = Callable[[Offsets, object], object]


class ConsumerClient(Protocol):
    """``kafka.KafkaConsumer``, as far as the service and its rebalance listener use it."""

    def subscribe(self, topics: Sequence[str], *, listener: object) -> None: ...
    def poll(
        self, timeout_ms: int, max_records: int | None = None
    ) -> Mapping[TopicPartition, Sequence[ConsumerRecord]]: ...
    def assignment(self) -> Collection[TopicPartition]: ...
    def partitions_for_topic(self, topic: str) -> set[int] | None: ...
    def topics(self) -> set[str]: ...
    def group_metadata(self) -> GroupMetadata: ...
    def seek(self, partition: TopicPartition, offset: int) -> None: ...
    def pause(self, *partitions: TopicPartition) -> None: ...
    def resume(self, *partitions: TopicPartition) -> None: ...
    def highwater(self, partition: TopicPartition) -> int | None: ...
    def commit(self, offsets: Offsets) -> None: ...
    def commit_async(
        self, offsets: Offsets, callback: CommitCallback | None = None
    ) -> Awaitable[object]: ...
    def close(self, autocommit: bool = True) -> None: ...
    def metrics(self) -> Mapping[str, Mapping[str, float]]: ...

    def last_heartbeat_answer(self) -> float | None:
        """When the group last answered our heartbeat (``time.monotonic``); None when
        the client cannot say."""

    def io_sleep(self, seconds: float) -> Awaitable[object]:
        """Let *seconds* pass, awaited inside a rebalance listener, without starving the
        client's IO loop (where the heartbeat runs)."""
