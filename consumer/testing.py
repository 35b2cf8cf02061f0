"""Stand-ins for the consumer's kafka-python clients (``consumer.client``, the dead-letter
producer of ``consumer.dead_letter``), for loop tests.

A test scripts what the broker does (the batches a poll returns, which dead
letters are answered, and when) and reads back what the service did (seeks,
pauses, commits, closes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kafka.errors import KafkaTimeoutError
from kafka.structs import MemberState, TopicPartition

from common.testing import ManualClock, Written
from consumer.client import CommitCallback, ConsumerRecord, Offsets
from consumer.client import TopicPartition as Partition

# --- The consumer's side ------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """A ``ConsumerRecord``'s fields, as a stand-in broker hands it over."""

    topic: str
    partition: int
    offset: int
    value: bytes | None = b"value"
    key: bytes | None = None
    timestamp: int = -1
    headers: Sequence[tuple[str, bytes | None]] = ()


def records(topic: str, partition: int, offsets: Iterable[int]) -> list[ConsumerRecord]:
    """Records at *offsets* of one partition."""
    return [Record(topic, partition, offset) for offset in offsets]


@dataclass
class Membership:
    """``group_metadata()``'s answer; set ``state`` to ``MemberState.UNJOINED`` to expel."""

    state: object = MemberState.STABLE


@dataclass
class FakeConsumer:
    """``KafkaConsumer`` as the consumer service uses it, answering polls from a script.

    Each poll returns the next batch of *polls*; past the end it calls
    *after_script* (a test's stop request, say) and returns nothing.
    """

    topic: str
    polls: list[Mapping[Partition, Sequence[ConsumerRecord]]]
    assigned: set[Partition] = field(default_factory=set)
    after_script: Callable[[], object] = lambda: None
    seeks: list[tuple[Partition, int]] = field(default_factory=list)
    commits: list[dict[Partition, int]] = field(default_factory=list)
    #: Partitions paused now; a paused partition's records are held back from polls.
    pausing: set[Partition] = field(default_factory=set)
    closed: bool = False
    membership: Membership = field(default_factory=Membership)

    def subscribe(self, topics: Sequence[str], *, listener: object) -> None:
        self.listener = listener

    def poll(
        self, timeout_ms: int, max_records: int | None = None
    ) -> Mapping[Partition, Sequence[ConsumerRecord]]:
        if not self.polls:
            self.after_script()
            return {}
        batch = self.polls.pop(0)
        self.assigned |= set(batch)
        return {tp: records for tp, records in batch.items() if tp not in self.pausing}

    def assignment(self) -> Collection[Partition]:
        return set(self.assigned)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return {tp.partition for tp in self.assigned} or {0}

    def topics(self) -> set[str]:
        return {self.topic}

    def group_metadata(self) -> Membership:
        return self.membership

    def seek(self, partition: Partition, offset: int) -> None:
        self.seeks.append((partition, offset))

    def pause(self, *partitions: Partition) -> None:
        self.pausing.update(partitions)

    def resume(self, *partitions: Partition) -> None:
        self.pausing.difference_update(partitions)

    def highwater(self, partition: Partition) -> int | None:
        return None

    def commit(self, offsets: Offsets) -> None:
        self.commits.append({tp: meta.offset for tp, meta in offsets.items()})

    def commit_async(
        self, offsets: Offsets, callback: CommitCallback | None = None
    ) -> Awaitable[object]:
        self.commit(offsets)
        if callback is not None:
            callback(offsets, None)
        return _Done()

    def close(self, autocommit: bool = True) -> None:
        self.closed = True

    def metrics(self) -> Mapping[str, Mapping[str, float]]:
        return {}

    def committed(self) -> dict[Partition, int]:
        """The last offset committed per partition, as the group would see it."""
        last: dict[Partition, int] = {}
        for commit in self.commits:
            last.update(commit)
        return last


@dataclass
class LogConsumer(FakeConsumer):
    """A stand-in broker that serves each partition's records from its position.

    Unlike :class:`FakeConsumer`'s script, it does what Kafka does with a
    seek (the next poll starts there) and a pause (nothing of that partition
    until resumed), so retries can be followed record by record. A poll that
    has nothing to give moves *clock* by its timeout, as a real poll waits;
    once every partition is read to its end and none is paused, it calls
    *after_script*. Offsets are positions in each list.
    """

    logs: dict[Partition, list[ConsumerRecord]] = field(default_factory=dict)
    clock: ManualClock | None = None
    positions: dict[Partition, int] = field(default_factory=dict)

    def poll(
        self, timeout_ms: int, max_records: int | None = None
    ) -> Mapping[Partition, Sequence[ConsumerRecord]]:
        self.assigned |= set(self.logs)
        left = max_records or 500
        batch: dict[Partition, Sequence[ConsumerRecord]] = {}
        for tp, log in self.logs.items():
            start = self.positions.get(tp, 0)
            if tp in self.pausing or start >= len(log) or not left:
                continue
            batch[tp] = log[start : start + left]
            left -= len(batch[tp])
            self.positions[tp] = start + len(batch[tp])
        if not batch:
            if self.pausing:
                if self.clock is not None:
                    self.clock.advance(timeout_ms / 1000)
            else:
                self.after_script()
        return batch

    def seek(self, partition: Partition, offset: int) -> None:
        super().seek(partition, offset)
        self.positions[partition] = offset


@dataclass(frozen=True)
class DeadLetter:
    """What a stand-in dead-letter topic was sent."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]

    def header(self, name: str) -> str:
        """The header *name*, as text."""
        return next(value.decode() for key, value in self.headers if key == name)


class _Answer:
    """``FutureRecordMetadata`` as dead letters wait on it, answered at *ready_at* on *clock*."""

    def __init__(
        self,
        written: Written | None,
        error: BaseException | None,
        clock: ManualClock | None = None,
        ready_at: float = 0.0,
        waits: list[float | None] | None = None,
    ) -> None:
        self._written, self._error = written, error
        self._clock, self._ready_at = clock, ready_at
        self._waits = waits

    @property
    def is_done(self) -> bool:
        return self._clock is None or self._clock.now >= self._ready_at

    def get(self, timeout: float | None = None) -> Written:
        if self._waits is not None:
            self._waits.append(timeout)
        if self._clock is not None and not self.is_done:
            # Waiting takes time; a wait shorter than the answer's ends as kafka-python's does.
            left = self._ready_at - self._clock.now
            if timeout is not None and timeout < left:
                self._clock.advance(timeout)
                raise KafkaTimeoutError(f"Timeout after waiting for {timeout} secs.")
            self._clock.advance(left)
        if self._error is not None:
            raise self._error
        assert self._written is not None
        return self._written


@dataclass
class FakeDeadLetterProducer:
    """``KafkaProducer`` as dead letters use it: takes every send, or refuses the first
    *refuse* with *error*; a topic in *topics* exists. With a *clock*, each send
    is acknowledged *answer_after_s* after it was made, and each wait for an
    answer moves the clock and is noted in *waits*."""

    topics: set[str] = field(default_factory=lambda: {"dlt"})
    refuse: int = 0
    error: BaseException = field(default_factory=lambda: KafkaTimeoutError("refused"))
    sent: list[DeadLetter] = field(default_factory=list)
    closed: bool = False
    clock: ManualClock | None = None
    answer_after_s: float = 0.0
    waits: list[float | None] = field(default_factory=list)

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> _Answer:
        if self.refuse:
            self.refuse -= 1
            return _Answer(None, self.error)
        self.sent.append(DeadLetter(topic, key, value, list(headers or ())))
        written = Written(topic, 0, len(self.sent) - 1, 0, 0)
        if self.clock is None:
            return _Answer(written, None, waits=self.waits)
        return _Answer(written, None, self.clock, self.clock.now + self.answer_after_s, self.waits)

    def partitions_for(self, topic: str) -> set[int] | None:
        return {0} if topic in self.topics else None

    def close(self, timeout: float | None = None) -> None:
        self.closed = True

    def metrics(self) -> Mapping[str, Mapping[str, float]]:
        return {}


class _Done:
    """What ``commit_async`` returns: already done."""

    def __await__(self) -> Generator[None, None, None]:
        yield from ()


__all__ = [
    "DeadLetter",
    "FakeConsumer",
    "FakeDeadLetterProducer",
    "LogConsumer",
    "ManualClock",
    "Membership",
    "Record",
    "TopicPartition",
    "records",
]
