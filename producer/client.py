"""The part of kafka-python's ``KafkaProducer`` the producer service uses, typed.

kafka-python ships no type hints; these Protocols say what we rely on, so
mypy checks the service's side of the boundary and a test can stand in a
client of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol


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
    """A send's future, answered on kafka-python's IO thread; read once ``is_done``."""

    @property
    def is_done(self) -> bool: ...
    @property
    def value(self) -> RecordMetadata:
        """Where the record was written; None until done, and after a failure."""

    @property
    def exception(self) -> BaseException | None: ...
    def add_both(self, f: Callable[[Outcome], object]) -> object:
        """Call *f* with the answer, on the IO thread (or now, if answered already)."""


class ProducerClient(Protocol):
    """``kafka.KafkaProducer``, as far as the service uses it."""

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> SendFuture:
        """Queue a record; raises KafkaError when it cannot even be queued."""

    def partitions_for(self, topic: str) -> set[int] | None:
        """The topic's partitions, fetching metadata if needed."""

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued record is answered."""

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the IO thread."""

    def metrics(self) -> Mapping[str, Mapping[str, float]]:
        """The client's own figures, by group (throttle time among them)."""
