"""Stand-ins for kafka-python's clients, beside the Protocols they stand in for.

They follow the Protocols of ``common.clients`` and nothing more. A test
scripts what the broker does (the batches a poll returns, which sends are
answered, and when) and reads back what the service did (sends, seeks,
pauses, commits, closes), in milliseconds, the way httpx's ``MockTransport``
stands in for the network; the promises users rely on are tested against
Kafka itself.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable, Collection, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kafka import OffsetAndMetadata
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.structs import MemberState, TopicPartition

from common.clients._protocols import (
    CommitCallback,
    ConsumerRecord,
    Offsets,
    Outcome,
    RecordMetadata,
    SendFuture,
)
from common.clients._protocols import TopicPartition as Partition
from common.testing import ManualClock, Written

# --- The producer's side ------------------------------------------------------------


class FakeSendFuture:
    """A send's future, answered by the test: ``succeed`` or ``fail`` now, or
    ``succeed_at`` a time of a :class:`ManualClock`, which a wait in ``get`` moves."""

    def __init__(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] | None = None,
        waits: list[float | None] | None = None,
    ) -> None:
        self.topic, self.key, self.payload = topic, key, value
        self.headers = list(headers or [])
        self.exception: BaseException | None = None
        self._value: RecordMetadata | None = None
        self._callbacks: list[Callable[[Outcome], object]] = []
        self._answered = False
        #: A later answer: the clock, and when on it.
        self._due: tuple[ManualClock, float] | None = None
        self._waits = waits

    @property
    def is_done(self) -> bool:
        if self._due is not None:
            clock, at = self._due
            return clock.now >= at
        return self._answered

    @property
    def value(self) -> RecordMetadata:
        assert self._value is not None, "read only once done, without an exception"
        return self._value

    def header(self, name: str) -> str:
        """The header *name*, as text."""
        return next(value.decode() for key, value in self.headers if key == name)

    def add_both(self, f: Callable[[Outcome], object]) -> object:
        if self.is_done:
            f(self.exception or self.value)
        else:
            self._callbacks.append(f)
        return self

    def get(self, timeout: float | None = None) -> RecordMetadata:
        if self._waits is not None:
            self._waits.append(timeout)
        if self._due is not None and not self.is_done:
            # Waiting takes time; a wait shorter than the answer's ends as kafka-python's does.
            clock, at = self._due
            left = at - clock.now
            if timeout is not None and timeout < left:
                clock.advance(timeout)
                raise KafkaTimeoutError(f"Timeout after waiting for {timeout} secs.")
            clock.advance(left)
        if not self.is_done:
            raise KafkaTimeoutError(f"Timeout after waiting for {timeout} secs.")
        if self.exception is not None:
            raise self.exception
        return self.value

    def succeed(self, partition: int = 0, offset: int = 0) -> None:
        self._value = self._written(partition, offset)
        self._answer(self._value)

    def succeed_at(
        self, clock: ManualClock, at: float, partition: int = 0, offset: int = 0
    ) -> None:
        """Acknowledged once *clock* reads *at*: seen by ``is_done`` and ``get``."""
        self._value = self._written(partition, offset)
        self._due = (clock, at)

    def fail(self, error: BaseException) -> None:
        self.exception = error
        self._answer(error)

    def _written(self, partition: int, offset: int) -> Written:
        return Written(
            self.topic, partition, offset, len(self.key or b""), len(self.payload or b"")
        )

    def _answer(self, outcome: Outcome) -> None:
        self._answered = True
        for f in self._callbacks:
            f(outcome)


def leave_unanswered(_future: FakeSendFuture) -> None:
    """A producer's default: each send waits for the test to answer it."""


def acknowledge(
    refuse: int = 0,
    error: BaseException | None = None,
    clock: ManualClock | None = None,
    after_s: float = 0.0,
) -> Callable[[FakeSendFuture], None]:
    """Answers for a producer: the first *refuse* sends fail with *error*, the rest are
    written, at once, or *after_s* later on *clock*."""
    offsets = itertools.count()
    refused = 0

    def answer(future: FakeSendFuture) -> None:
        nonlocal refused
        if refused < refuse:
            refused += 1
            future.fail(error or KafkaTimeoutError("refused"))
        elif clock is None:
            future.succeed(0, next(offsets))
        else:
            future.succeed_at(clock, clock.now + after_s, 0, next(offsets))

    return answer


class FakeProducer:
    """``KafkaProducer`` as the services use it; answers each send with *on_send*.

    *on_send* is called with each future as it is made: answer it there
    (:func:`acknowledge`), or keep it for later (:func:`leave_unanswered`, the
    default). A topic has *partitions* if it is in *topics* (every topic, when
    None). ``close`` fails whatever is still unanswered, as kafka-python's does.
    """

    def __init__(
        self,
        partitions: Iterable[int] = range(10),
        on_send: Callable[[FakeSendFuture], object] = leave_unanswered,
        *,
        topics: Collection[str] | None = None,
    ) -> None:
        self.partitions = set(partitions)
        self.topics = None if topics is None else set(topics)
        self.on_send = on_send
        self.sent: list[FakeSendFuture] = []
        #: Each wait for an answer (``get``'s timeout), in order.
        self.waits: list[float | None] = []
        self.closed = False
        #: Set by a test: kafka-python's idempotence gave up, every later send fails.
        self.fatal = False
        #: Topics a broker said it does not have.
        self.missing: set[str] = set()
        #: What a transactional producer was asked, in order ("begin", "commit"...).
        self.transactions: list[str] = []
        #: Set by a test: how many commit_transaction calls fail (and must be aborted).
        self.refuse_commits = 0

    @classmethod
    def acknowledging(
        cls,
        topics: Collection[str] | None = None,
        *,
        refuse: int = 0,
        error: BaseException | None = None,
        clock: ManualClock | None = None,
        after_s: float = 0.0,
    ) -> FakeProducer:
        """A producer that answers each send itself, as :func:`acknowledge` says."""
        return cls(on_send=acknowledge(refuse, error, clock, after_s), topics=topics)

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> SendFuture:
        future = FakeSendFuture(topic, key, value, headers, self.waits)
        self.sent.append(future)
        self.on_send(future)
        return future

    def written(self) -> list[FakeSendFuture]:
        """The sends the broker took (or will take), in order."""
        return [future for future in self.sent if future.exception is None and future._value]

    def partitions_for(self, topic: str) -> set[int] | None:
        if self.topics is not None and topic not in self.topics:
            return None
        return set(self.partitions) or None

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        self.force_close()

    def force_close(self) -> None:
        self.closed = True
        for future in self.sent:
            if not future.is_done:
                future.fail(KafkaTimeoutError("closed before it was answered"))

    def failed_for_good(self) -> bool:
        return self.fatal

    def heard_topic_missing(self, topic: str, since: float) -> bool:
        return topic in self.missing

    def metrics(self) -> Mapping[str, Mapping[str, float]]:
        return {}

    def init_transactions(self) -> None:
        self.transactions.append("init")

    def begin_transaction(self) -> None:
        self.transactions.append("begin")

    def send_offsets_to_transaction(
        self, offsets: Mapping[Partition, OffsetAndMetadata], group_metadata: object
    ) -> None:
        self.transactions.append(
            "offsets " + ",".join(f"{tp.partition}:{m.offset}" for tp, m in offsets.items())
        )

    def commit_transaction(self) -> None:
        if self.refuse_commits:
            self.refuse_commits -= 1
            self.transactions.append("commit refused")
            raise KafkaError("the transaction could not commit")
        self.transactions.append("commit")

    def abort_transaction(self) -> None:
        self.transactions.append("abort")


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

    def last_heartbeat_answer(self) -> float | None:
        return None

    def io_sleep(self, seconds: float) -> Awaitable[object]:
        return _Sleep(seconds)

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


class _Done:
    """What ``commit_async`` returns: already done."""

    def __await__(self) -> Generator[None, None, None]:
        yield from ()


class _Sleep:
    """``io_sleep``'s wait: a stand-in has no IO loop to starve, so it blocks."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    def __await__(self) -> Generator[None, None, None]:
        time.sleep(self._seconds)
        return
        yield


__all__ = [
    "FakeConsumer",
    "FakeProducer",
    "FakeSendFuture",
    "LogConsumer",
    "ManualClock",
    "Membership",
    "Record",
    "TopicPartition",
    "Written",
    "acknowledge",
    "leave_unanswered",
    "records",
]
