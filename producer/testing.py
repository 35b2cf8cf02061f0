"""Stand-ins for the producer's kafka-python client (``producer.client``), for loop tests.

They follow the Protocol and nothing more: a test answers each send
(``succeed``, ``fail``) and reads back what the service sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from kafka.errors import KafkaTimeoutError

from common.testing import ManualClock, Written
from producer.client import Outcome, RecordMetadata, SendFuture


class FakeSendFuture:
    """A send's future, answered by the test: ``succeed`` or ``fail``."""

    def __init__(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self.topic, self.key, self.payload = topic, key, value
        self.headers = headers or []
        self.is_done = False
        self.exception: BaseException | None = None
        self._value: RecordMetadata | None = None
        self._callbacks: list[Callable[[Outcome], object]] = []

    @property
    def value(self) -> RecordMetadata:
        assert self._value is not None, "read only once done, without an exception"
        return self._value

    def add_both(self, f: Callable[[Outcome], object]) -> object:
        if self.is_done:
            f(self.exception or self.value)
        else:
            self._callbacks.append(f)
        return self

    def succeed(self, partition: int = 0, offset: int = 0) -> None:
        self._value = Written(
            self.topic, partition, offset, len(self.key or b""), len(self.payload or b"")
        )
        self._done(self._value)

    def fail(self, error: BaseException) -> None:
        self.exception = error
        self._done(error)

    def _done(self, outcome: Outcome) -> None:
        self.is_done = True
        for f in self._callbacks:
            f(outcome)


class FakeProducer:
    """``KafkaProducer`` as the producer service uses it; answers nothing until told.

    *on_send* is called with each future as it is made: answer it there, or
    keep it for later. ``close`` fails whatever is still unanswered, as
    kafka-python's does.
    """

    def __init__(
        self,
        partitions: Iterable[int] = range(10),
        on_send: Callable[[FakeSendFuture], object] = lambda _future: None,
    ) -> None:
        self.partitions = set(partitions)
        self.on_send = on_send
        self.sent: list[FakeSendFuture] = []
        self.closed = False

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> SendFuture:
        future = FakeSendFuture(topic, key, value, headers)
        self.sent.append(future)
        self.on_send(future)
        return future

    def partitions_for(self, topic: str) -> set[int] | None:
        return self.partitions or None

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        self.closed = True
        for future in self.sent:
            if not future.is_done:
                future.fail(KafkaTimeoutError("closed before it was answered"))

    def metrics(self) -> Mapping[str, Mapping[str, float]]:
        return {}


__all__ = ["FakeProducer", "FakeSendFuture", "ManualClock", "Written"]
