"""PRODUCER_SOURCE: the producer sends what a source yields, accounts for every record when
it ends or is stopped, and says in its exit status whether all of it was delivered.

Broker-free, against common.testing's stand-in producer; the same promises
against the real broker and Kafka's own console consumer are in
test_sources_broker.py.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import structlog

from common import events
from common.clients.testing import FakeProducer, FakeSendFuture
from common.config import ProducerPlan, ProducerSettings, load, resolve
from common.failure import ServiceFailed
from common.health import Health
from common.shutdown import Shutdown
from examples import signups
from producer import stdin
from producer.feed import Feed
from producer.service import ProducerService
from producer.source import Outgoing, Prepared, Skipped
from tests import sources


def _plan(**settings: object) -> ProducerPlan:
    return resolve(
        load(
            ProducerSettings,
            {
                "bootstrap_servers": "127.0.0.1:9",
                "topic": "t",
                "log_message_every": 0,
                "rate": 0,
                **settings,
            },
        )
    )


def _run(source: Iterable[object], client: FakeProducer, shutdown: Shutdown | None = None) -> None:
    ProducerService(
        _plan(source="tests.sources:orders"),
        lambda: client,
        Health(),
        shutdown or Shutdown(),
        feed=Feed(source),
    ).run()


def _finished(logs: list[dict[str, object]]) -> dict[str, object]:
    (line,) = [line for line in logs if line["event"] == events.PRODUCER_FINISHED]
    return line


def test_every_kind_of_value_is_sent_with_its_key_and_headers(
    logs: list[dict[str, object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERS", "3")
    client = FakeProducer(on_send=FakeSendFuture.succeed)
    _run(sources.orders(), client)

    sent = [(f.key, f.payload, f.headers) for f in client.sent]
    assert sent == [
        (b"o-0", b'{"order":0}', [("kind", b"order")]),
        (None, b"order 1", []),
        (None, b"order 2", []),
    ]
    finished = _finished(logs)
    assert (finished["records"], finished["delivered"], finished["failed"]) == (3, 3, 0)
    assert finished["source_ended"] is True


def test_a_value_json_cannot_write_is_skipped_and_the_rest_sent(
    logs: list[dict[str, object]],
) -> None:
    client = FakeProducer(on_send=FakeSendFuture.succeed)
    with pytest.raises(ServiceFailed) as failed:
        _run(sources.with_a_bad_value(), client)

    assert [f.payload for f in client.sent] == [b"first", b"last"]
    (skipped,) = [line for line in logs if line["event"] == events.SOURCE_SKIPPED]
    assert skipped["where"] == "record 2"
    assert "not bytes, text or JSON" in str(skipped["reason"])
    assert failed.value.reason == "inputs_skipped"
    assert _finished(logs)["skipped"] == 1


def test_a_failed_send_makes_the_exit_status_1(logs: list[dict[str, object]]) -> None:
    def refuse_the_second(future: FakeSendFuture) -> None:
        if future.payload == b"order 1":
            future.fail(TimeoutError("not acknowledged"))
        else:
            future.succeed()

    client = FakeProducer(on_send=refuse_the_second)
    with pytest.raises(ServiceFailed) as failed:
        _run(sources.orders(), client)

    assert failed.value.reason == "records_undelivered"
    assert failed.value.exit_status == 1
    finished = _finished(logs)
    assert (finished["records"], finished["delivered"], finished["failed"]) == (3, 2, 1)


def test_a_source_that_raises_ends_the_run_with_what_it_gave_delivered(
    logs: list[dict[str, object]],
) -> None:
    client = FakeProducer(on_send=FakeSendFuture.succeed)
    with pytest.raises(ServiceFailed) as failed:
        _run(sources.fails_midway(), client)

    assert [f.payload for f in client.sent] == [b"one", b"two"]
    assert failed.value.reason == "source_failed"
    assert "the event store went away" in failed.value.detail
    assert _finished(logs)["delivered"] == 2


def test_a_stop_accounts_for_every_record_read(logs: list[dict[str, object]]) -> None:
    """Stopped mid-source: each record read is delivered, failed or counted unsent."""
    shutdown = Shutdown()
    given = threading.Event()

    def endless() -> Iterator[object]:
        number = 0
        while True:
            number += 1
            if number == 50:
                given.set()
            yield f"event {number}"

    def stop_after_some(future: FakeSendFuture) -> None:
        future.succeed()
        if given.is_set():
            shutdown.event.set()

    client = FakeProducer(on_send=stop_after_some)
    with pytest.raises(ServiceFailed):  # unsent records: not all of the source went
        _run(endless(), client, shutdown)

    finished = _finished(logs)
    assert finished["source_ended"] is False
    assert finished["delivered"] == len(client.sent)
    assert finished["records"] == (
        finished["delivered"] + finished["failed"] + finished["unsent"]  # type: ignore[operator]
    )


def test_json_lines_give_records_and_name_each_bad_line() -> None:
    lines = (
        b'{"value": {"id": 1}, "key": "k1", "headers": {"source": "crm"}}\n'
        b'{"value": "plain text"}\n'
        b"\n"
        b'{"value": null, "key": "gone"}\n'
        b'{"id": 2}\n'
        b"not json at all\n"
        b'{"value": 3, "headers": [["h", "a"], ["h", null]]}\n'
        b'{"value": 4, "key": 5}'
    )
    read = list(stdin.json_lines(io.BytesIO(lines)))

    assert read[:3] == [
        Outgoing(b'{"id": 1}', "k1", {"source": "crm"}),
        Outgoing("plain text", None, {}),
        Outgoing(None, "gone", {}),
    ]
    assert read[3] == Skipped(
        "line 5",
        'Object contains unknown field `id`; a line is {"value": ..., "key": ..., "headers": ...} '
        "(a file of bare events: jq -c '{value: .}' wraps each)",
    )
    assert read[4].where == "line 6"
    assert str(read[4].reason).startswith("not JSON")
    assert read[5] == Outgoing(b"3", None, [("h", "a"), ("h", None)])
    assert read[6] == Skipped("line 8", "Expected `str | null`, got `int` - at `$.key`")


def test_text_lines_are_values_without_their_line_ends() -> None:
    read = list(stdin.text_lines(io.BytesIO(b"one\r\ntwo\n\nlast without end")))
    assert read == [b"one", b"two", b"", b"last without end"]


def test_the_feed_hands_items_over_in_order_and_takes_back_what_was_not_sent() -> None:
    feed = Feed(iter([b"a", b"b", b"c", b"d"]), limit=2)
    feed.start()
    taken: list[Prepared | Skipped] = []
    while not feed.finished:
        batch = feed.take(3, timeout=5)
        # As the loop does when the client refuses one: the rest go back, in order.
        feed.unread(batch[1:])
        taken += batch[:1]
    assert [item.value for item in taken if isinstance(item, Prepared)] == [b"a", b"b", b"c", b"d"]
    assert feed.take(1, timeout=0.01) == []


def test_lines_read_from_a_file_descriptor_keep_their_ends(tmp_path: Path) -> None:
    text = b"first\r\n" + b"x" * (stdin.CHUNK + 10) + b"\n\nlast without end"
    path = tmp_path / "lines"
    path.write_bytes(text)
    fd = os.open(path, os.O_RDONLY)
    try:
        lines = list(stdin.read_lines(fd))
    finally:
        os.close(fd)
    assert lines == [b"first\r\n", b"x" * (stdin.CHUNK + 10) + b"\n", b"\n", b"last without end"]
    assert b"".join(lines) == text


def test_the_documented_example_source_reads_a_csv_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = tmp_path / "signups.csv"
    export.write_text("id,user,plan\n1,ada,pro\n2,,free\n3,grace,free\n")
    monkeypatch.setenv("SIGNUPS_CSV", str(export))
    client = FakeProducer(on_send=FakeSendFuture.succeed)
    with structlog.testing.capture_logs() as logs, pytest.raises(ServiceFailed):
        _run(signups.events(), client)  # row 2 skipped: exit status 1

    assert [(f.key, f.payload, f.headers) for f in client.sent] == [
        (b"ada", b'{"user":"ada","plan":"pro"}', [("source", b"signup-export")]),
        (b"grace", b'{"user":"grace","plan":"free"}', [("source", b"signup-export")]),
    ]
    assert [(e["where"], e["reason"]) for e in logs if e["event"] == "source.skipped"] == [
        ("row 2", "no user")
    ]
