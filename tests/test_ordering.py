"""What each ordering promises, broker-free on common.testing's stand-ins
(docs/handlers.md, "Records side by side"): in ``key`` order, records of one key one at a
time in offset order and different keys side by side, also within one partition; in
``unordered``, anything side by side; at most CONSUMER_MAX_IN_FLIGHT at once; a commit
that never passes a record not done; retries that hold back only their key; dead letters
and a stop on failure as with one record at a time; an ``async def`` handler on one event
loop."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence

import pytest
import structlog

from common.clients.testing import (
    FakeConsumer,
    FakeProducer,
    LogConsumer,
    Record,
    TopicPartition,
)
from common.config import ConsumerPlan, ConsumerSettings, load, resolve
from common.failure import ServiceFailed
from consumer.dispatch import AHEAD_PER_SLOT, Dispatcher, Ordering
from consumer.event_loop import EventLoop
from consumer.fate import Outcome
from consumer.handler import Record as Handled
from consumer.handler import RecordRefused, opened
from consumer.offsets import OffsetTracker
from consumer.rebalance import RebalanceListener
from consumer.service import ConsumerService
from examples import lookups
from tests.loops import run_until

TOPIC = "t"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
#: Longest a test waits for a handler's record to arrive; a failure, never a pace.
WAIT_S = 10


#: Every test's lines captured: the loops and workers write none elsewhere.
pytestmark = pytest.mark.usefixtures("logs")


def _plan(**settings: object) -> ConsumerPlan:
    return resolve(
        load(
            ConsumerSettings,
            {
                "bootstrap_servers": "127.0.0.1:9",
                "topic": TOPIC,
                "group_id": "g",
                "retry_attempts": 3,
                "retry_backoff_ms": 1,
                "retry_backoff_max_ms": 1,
                "ordering": "key",
                **settings,
            },
        )
    )


def _keyed(partition: int, keys: str) -> list[Record]:
    """One record per character of *keys*, its key, at offsets 0, 1, 2..."""
    return [
        Record(TOPIC, partition, offset, value=f"{partition}-{offset}".encode(), key=key.encode())
        for offset, key in enumerate(keys)
    ]


class Calls:
    """A handler's calls: when each began and ended, per record, thread-safe."""

    def __init__(self, work: Callable[[Handled], object] = lambda r: None) -> None:
        self._work = work
        self._lock = threading.Lock()
        self.spans: list[tuple[bytes | None, int, int, float, float]] = []
        self.running = 0
        self.most_running = 0
        self.done = 0

    def __call__(self, record: Handled) -> None:
        with self._lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        began = time.monotonic()
        try:
            self._work(record)
        finally:
            with self._lock:
                self.running -= 1
                self.done += 1
                self.spans.append(
                    (record.key, record.partition, record.offset, began, time.monotonic())
                )

    def by_key(self) -> dict[bytes | None, list[tuple[int, int, float, float]]]:
        found: dict[bytes | None, list[tuple[int, int, float, float]]] = defaultdict(list)
        for key, partition, offset, began, ended in sorted(self.spans, key=lambda s: s[3]):
            found[key].append((partition, offset, began, ended))
        return found


def _run(
    client: LogConsumer,
    handler: Callable[[Handled], object],
    until: Callable[[], bool],
    *,
    dead_letters: FakeProducer | None = None,
    loop: EventLoop | None = None,
    **settings: object,
) -> ConsumerService:
    return run_until(
        _plan(**settings), client, handler, until, dead_letters=dead_letters, loop=loop
    )


def _consumer(**logs: list[Record]) -> LogConsumer:
    by_partition = {TopicPartition(TOPIC, int(name[1:])): log for name, log in logs.items()}
    return LogConsumer(TOPIC, polls=[], logs=dict(by_partition))


def test_records_of_one_key_never_overlap_and_keep_their_order() -> None:
    keys = "abcabcaabbccdd" * 5
    calls = Calls(lambda r: time.sleep(0.001))
    client = _consumer(p0=_keyed(0, keys), p1=_keyed(1, keys[::-1]))
    _run(client, calls, lambda: calls.done == 2 * len(keys), max_in_flight=8)

    assert calls.done == 2 * len(keys)
    for key, handled in calls.by_key().items():
        for before, after in itertools.pairwise(handled):
            assert before[3] <= after[2], f"two records of key {key!r} overlapped"
        for partition in (0, 1):
            offsets = [offset for p, offset, _, _ in handled if p == partition]
            assert offsets == sorted(offsets), f"key {key!r} out of order in {partition}"
    assert calls.most_running > 1
    assert client.committed() == {P0: len(keys), P1: len(keys)}


def test_different_keys_of_one_partition_run_side_by_side() -> None:
    # Four records of four keys in one partition meet at a barrier: one at a time, they
    # could not.
    barrier = threading.Barrier(4, timeout=WAIT_S)
    calls = Calls(lambda r: barrier.wait())
    client = _consumer(p0=_keyed(0, "wxyz"))
    _run(client, calls, lambda: calls.done == 4, max_in_flight=4)

    assert calls.most_running == 4
    assert client.committed() == {P0: 4}


@pytest.mark.parametrize("ordering", ["key", "unordered"])
def test_no_more_than_the_bound_run_at_once(ordering: Ordering) -> None:
    polled: list[int | None] = []
    calls = Calls(lambda r: time.sleep(0.001))
    client = _consumer(p0=_keyed(0, "abcdefghij" * 10), p1=_keyed(1, "klmnopqrst" * 10))
    real_poll = client.poll

    def poll(timeout_ms: int, max_records: int | None = None) -> object:
        polled.append(max_records)
        return real_poll(timeout_ms, max_records)

    client.poll = poll  # type: ignore[method-assign,assignment]
    _run(client, calls, lambda: calls.done == 200, max_in_flight=3, ordering=ordering)

    assert calls.done == 200
    assert 1 < calls.most_running <= 3
    # Taken and not committed: no more than the window either.
    assert max(n for n in polled if n is not None) <= AHEAD_PER_SLOT[ordering] * 3


def test_a_commit_never_passes_a_record_still_running() -> None:
    release = threading.Event()
    committed_while_held: list[dict[TopicPartition, int]] = []
    calls = Calls(lambda r: release.wait(WAIT_S) if r.offset == 0 else None)
    client = _consumer(p0=_keyed(0, "abcdefghij"))

    def until() -> bool:
        if calls.done == 9 and not release.is_set():
            # Everything after offset 0 is done, and 0 is not.
            committed_while_held.extend(client.commits)
            release.set()
        return calls.done == 10

    _run(client, calls, until, commit_interval_ms=0)

    assert release.is_set()
    assert all(commit.get(P0, 0) == 0 for commit in committed_while_held)
    assert client.committed() == {P0: 10}


def test_a_retried_record_holds_back_only_its_own_key(logs: list[dict[str, object]]) -> None:
    tries: dict[int, int] = defaultdict(int)

    def flaky(record: Handled) -> None:
        tries[record.offset] += 1
        if record.offset == 0 and tries[0] < 3:
            raise OSError("busy")

    calls = Calls(flaky)
    client = _consumer(p0=_keyed(0, "abbbaab"))
    _run(client, calls, lambda: calls.done == 7 + 2)

    handled = calls.by_key()
    # Key a: offset 0 three times, then 4 and 5 in order, never before 0 was done.
    assert [offset for _, offset, _, _ in handled[b"a"]] == [0, 0, 0, 4, 5]
    # Key b went on while a waited.
    first_b_ended = handled[b"b"][0][3]
    last_try_of_a = handled[b"a"][2][2]
    assert first_b_ended < last_try_of_a
    retrying = [e for e in logs if e["event"] == "handler.retrying"]
    assert [(e["offset"], e["attempt"]) for e in retrying] == [(0, 1), (0, 2)]
    assert client.committed() == {P0: 7}


def test_a_refused_record_is_dead_lettered_and_the_rest_committed(
    logs: list[dict[str, object]],
) -> None:
    def refuse(record: Handled) -> None:
        if record.offset == 2:
            raise RecordRefused("bad value")

    letters = FakeProducer.acknowledging()
    calls = Calls(refuse)
    client = _consumer(p0=_keyed(0, "abcde"))
    _run(client, calls, lambda: calls.done == 5, dead_letters=letters)

    assert [letter.header("dlt.original.offset") for letter in letters.sent] == ["2"]
    assert [e["offset"] for e in logs if e["event"] == "record.dead_lettered"] == [2]
    assert client.committed() == {P0: 5}


def test_without_a_dead_letter_topic_the_consumer_stops_committing_only_before_it(
    logs: list[dict[str, object]],
) -> None:
    def refuse(record: Handled) -> None:
        if record.offset == 3:
            raise RecordRefused("bad value")

    calls = Calls(refuse)
    client = _consumer(p0=_keyed(0, "abcdefgh"))
    with pytest.raises(ServiceFailed) as stopped:
        _run(client, calls, lambda: False)

    assert stopped.value.reason == "handler_failed"
    assert "t[0]@3" in str(stopped.value)
    assert client.committed()[P0] == 3
    assert [e["offset"] for e in logs if e["event"] == "handler.failed"] == [3]


def test_an_async_handler_runs_on_one_event_loop_side_by_side() -> None:
    loops: set[int] = set()
    running, most = 0, 0
    done = threading.Event()
    handled: list[int] = []

    async def handle(record: Handled) -> None:
        nonlocal running, most
        loops.add(id(asyncio.get_running_loop()))
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1
        handled.append(record.offset)
        if len(handled) == 40:
            done.set()

    loop = EventLoop()
    try:
        client = _consumer(p0=_keyed(0, "abcdefgh" * 5))
        _run(client, handle, done.is_set, loop=loop, max_in_flight=8)
    finally:
        loop.close()

    assert len(loops) == 1
    assert 1 < most <= 8
    assert sorted(handled) == list(range(40))
    assert client.committed() == {P0: 40}


def test_the_async_example_opens_on_the_loop_and_handles_each_order() -> None:
    orders = [
        Record(TOPIC, 0, n, value=f'{{"customer": "c{n % 3}"}}'.encode(), key=b"c%d" % (n % 3))
        for n in range(12)
    ] + [Record(TOPIC, 0, 12, value=b"not json", key=b"x")]
    letters = FakeProducer.acknowledging()
    loop = EventLoop()
    try:
        with opened(lookups.handler, 0, "g", loop.run) as handle:
            client = _consumer(p0=orders)
            _run(
                client,
                handle,
                lambda: client.committed().get(P0) == 13,
                dead_letters=letters,
                loop=loop,
            )
    finally:
        loop.close()

    assert [letter.header("dlt.original.offset") for letter in letters.sent] == ["12"]
    assert client.committed() == {P0: 13}


def _dispatcher(
    handle: Callable[[Handled], object], offsets: OffsetTracker, bound: int = 4
) -> Dispatcher:
    def settle(records: Sequence[Handled]) -> Sequence[Outcome]:
        handle(records[0])
        return (Outcome.OK,)

    return Dispatcher(settle, "key", bound, offsets, log=structlog.get_logger())


def _handled(partition: int, keys: str) -> list[Handled]:
    return [
        Handled(TOPIC, partition, offset, -1, key.encode(), b"v", ())
        for offset, key in enumerate(keys)
    ]


def test_one_record_held_lets_the_others_run_only_so_far_past_it() -> None:
    release = threading.Event()
    done: list[int] = []
    offsets = OffsetTracker()
    dispatcher = _dispatcher(
        lambda r: release.wait(4 * WAIT_S) if r.offset == 0 else done.append(r.offset),
        offsets,
        bound=2,
    )
    window = dispatcher.window
    assert window == AHEAD_PER_SLOT["key"] * 2
    records = _handled(0, "a" + "bcd" * window)
    taken = 0
    while taken < len(records):
        # Only the held record left running, the others done: how much room is there?
        deadline = time.monotonic() + WAIT_S
        while dispatcher.in_flight != (1, 0) and taken and time.monotonic() < deadline:
            time.sleep(0.001)
        room = dispatcher.wait_for_room(0)
        if room <= 0:
            break
        dispatcher.submit(P0, records[taken : taken + room])
        taken += room

    # Every record past the held one is done, and no more were taken than the window.
    assert taken == window
    assert sorted(done) == list(range(1, window))
    assert offsets.next_offset(P0) is None  # nothing may be committed past offset 0
    release.set()
    assert dispatcher.wait_for_room(WAIT_S) == window
    assert offsets.next_offset(P0) == window
    assert dispatcher.stop(WAIT_S)


def test_a_revocation_finishes_what_the_partition_took_and_commits_it() -> None:
    started = threading.Event()
    release = threading.Event()
    client = FakeConsumer(TOPIC, polls=[], assigned={P0, P1})
    offsets = OffsetTracker()

    def handle(record: Handled) -> None:
        if record.offset == 0:
            started.set()
            release.wait(WAIT_S)

    dispatcher = _dispatcher(handle, offsets, bound=8)
    looks: list[bool] = []

    class Watched:
        """The dispatcher as the listener drains it; the handler ends once it looks."""

        def release(self, partitions: Collection[TopicPartition]) -> None:
            dispatcher.release(partitions)

        def busy(self, partitions: Collection[TopicPartition]) -> bool:
            looks.append(dispatcher.busy(partitions))
            release.set()
            return looks[-1]

        def forget(self, partitions: Collection[TopicPartition]) -> None:
            dispatcher.forget(partitions)

        def rewinds(self) -> dict[TopicPartition, int]:
            return dispatcher.rewinds()

    drain = Watched()
    listener = RebalanceListener(client, offsets, "g", drain=drain, drain_timeout_s=WAIT_S)
    # Offset 0 runs; 1 and 2 share its key and wait behind it.
    dispatcher.submit(P0, _handled(0, "aaab"))
    started.wait(WAIT_S)
    asyncio.run(listener.on_partitions_revoked({P0}))

    assert looks[0] is True  # the listener found records in flight, and waited for them
    assert client.committed() == {P0: 4}  # the waiting ones ran too, before the commit
    assert dispatcher.stop(WAIT_S)


def test_past_the_drain_timeout_a_running_record_is_left_and_its_partition_fetched_again(
    logs: list[dict[str, object]],
) -> None:
    release = threading.Event()
    client = FakeConsumer(TOPIC, polls=[], assigned={P0})
    offsets = OffsetTracker()
    dispatcher = _dispatcher(
        lambda r: release.wait(WAIT_S) if r.offset == 1 else None, offsets, bound=8
    )
    listener = RebalanceListener(client, offsets, "g", drain=dispatcher, drain_timeout_s=0.05)
    dispatcher.submit(P0, _handled(0, "abbc"))
    # Offset 1 never ends in time: 0 and 3 are done, 2 waits behind 1.
    asyncio.run(listener.on_partitions_revoked({P0}))
    asyncio.run(listener.on_partitions_assigned({P0}))
    release.set()

    assert client.committed() == {P0: 1}
    assert [e["reason"] for e in logs if e["event"] == "records.abandoned"] == ["revoked"]
    assert client.seeks == [(P0, 1)]  # given straight back: fetched again from 1
    assert dispatcher.stop(WAIT_S)
