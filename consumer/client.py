"""The part of kafka-python's ``KafkaConsumer`` the consumer service uses, typed.

kafka-python ships no type hints; these Protocols say what we rely on, so
mypy checks the service's side of the boundary.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Protocol

from kafka import OffsetAndMetadata


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
    def highwater(self, partition: TopicPartition) -> int | None: ...
    def commit(self, offsets: Offsets) -> None: ...
    def commit_async(
        self, offsets: Offsets, callback: CommitCallback | None = None
    ) -> Awaitable[object]: ...
    def close(self, autocommit: bool = True) -> None: ...
