"""Records nobody here wrote, refused by your handler, against the real broker: a transient
failure is handled exactly once; a permanent one goes to the dead-letter topic with every
header, read back by Kafka's own console consumer; a dead letter the broker refuses loses
nothing; a missing dead-letter topic is refused at start; without one the consumer stops
on the record, and a restart stops on it again; replay puts fixed records back."""

from __future__ import annotations

import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from tests.clients import CONSOLE_PRODUCER, console_read_letters, java, kcat, read_all
from tests.conftest import Cluster, EventHubsFront, Services, eventhubs_env

HANDLER_SETTINGS = {
    "CONSUMER_RETRY_ATTEMPTS": "3",
    "CONSUMER_RETRY_BACKOFF_MS": "100",
    "CONSUMER_RETRY_BACKOFF_MAX_MS": "1000",
}


class Topics:
    """Topics of one test, with the configs it asks for; deleted afterwards."""

    def __init__(self, kafka: Cluster) -> None:
        self.admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
        self.created: list[str] = []

    def create(self, partitions: int = 1, **configs: str) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        self.admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs)])
        self.created.append(name)
        return name

    def configure(self, topic: str, **configs: str) -> None:
        self.admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs)])


@pytest.fixture
def topics(kafka: Cluster) -> Iterator[Topics]:
    made = Topics(kafka)
    try:
        yield made
    finally:
        if made.created:
            made.admin.delete_topics(made.created)
        made.admin.close()


def _committed(kafka: Cluster, group: str, topic: str, partitions: int = 1) -> dict[int, int]:
    """The group's committed offsets, as the broker has them."""
    reader = KafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, group_id=group)
    try:
        found = {}
        for p in range(partitions):
            offset = reader.committed(TopicPartition(topic, p))
            if offset is not None:
                found[p] = offset
        return found
    finally:
        reader.close()


def _handled(consumer: object) -> list[str]:
    return [line["value"] for line in consumer.events("test.handled")]  # type: ignore[attr-defined]


def test_foreign_records_the_handler_refuses_are_dead_lettered_with_every_header(
    services: Services, topics: Topics
) -> None:
    kafka = services.kafka
    topic, dead = topics.create(), topics.create()
    kcat(kafka.bootstrap_servers, "-P", "-t", topic, "-K:", "-H", "trace=kcat-1",
         stdin=b"k1:first\nk2:poison from kcat\nk3:second\n")  # fmt: skip
    java(
        CONSOLE_PRODUCER,
        "--bootstrap-server", kafka.bootstrap_servers,
        "--topic", topic,
        stdin=b"third\npoison from java\nfourth\n",
    )  # fmt: skip
    group = f"g-{topic}"
    consumer = services.start(
        "consumer",
        KAFKA_TOPIC=topic,
        KAFKA_GROUP_ID=group,
        CONSUMER_HANDLER="tests.handlers:fail_poison",
        CONSUMER_DEAD_LETTER_TOPIC=dead,
        **HANDLER_SETTINGS,
    )
    services.wait_until(
        lambda: len(consumer.events("record.dead_lettered")) == 2 and len(_handled(consumer)) == 4,
        what="4 handled, 2 dead-lettered",
    )
    services.wait_until(lambda: _committed(kafka, group, topic) == {0: 6}, what="all committed")
    assert consumer.stop() == 0

    assert _handled(consumer) == ["first", "second", "third", "fourth"]
    retries = consumer.events("handler.retrying")
    assert [(r["offset"], r["attempt"]) for r in retries] == [(1, 1), (1, 2), (4, 1), (4, 2)]
    letters = console_read_letters(kafka.bootstrap_servers, dead, 2)
    assert [letter["value"] for letter in letters] == ["poison from kcat", "poison from java"]
    kcats = letters[0]
    assert kcats["key"] == "k2"
    assert kcats["trace"] == "kcat-1"  # its own header kept
    assert kcats["dlt.original.topic"] == topic
    assert kcats["dlt.original.partition"] == "0"
    assert kcats["dlt.original.offset"] == "1"
    assert int(kcats["dlt.original.timestamp"]) > 0
    assert kcats["dlt.original.consumer.group"] == group
    assert kcats["dlt.exception.type"] == "ValueError"
    assert kcats["dlt.exception.message"] == "cannot parse poison"
    assert kcats["dlt.attempts"] == "3"
    assert letters[1]["dlt.original.offset"] == "4"
    assert "Traceback" not in consumer.output()


def test_a_transient_failure_is_handled_exactly_once(services: Services, topics: Topics) -> None:
    topic, dead = topics.create(), topics.create()
    kcat(services.kafka.bootstrap_servers, "-P", "-t", topic, stdin=b"one\ntwo\nthree\n")
    consumer = services.start(
        "consumer",
        KAFKA_TOPIC=topic,
        KAFKA_GROUP_ID=f"g-{topic}",
        CONSUMER_HANDLER="tests.handlers:flaky",
        FLAKY_FAILURES="2",
        CONSUMER_DEAD_LETTER_TOPIC=dead,
        **HANDLER_SETTINGS,
    )
    services.wait_until(lambda: len(_handled(consumer)) == 3, what="3 handled")
    assert consumer.stop() == 0
    assert _handled(consumer) == ["one", "two", "three"]
    assert len(consumer.events("handler.retrying")) == 2
    assert consumer.events("record.dead_lettered") == []


def test_a_dead_letter_the_broker_refuses_loses_nothing(services: Services, topics: Topics) -> None:
    kafka = services.kafka
    topic = topics.create()
    # The broker refuses any batch over 100 bytes in the dead-letter topic:
    # MessageSizeTooLargeError, a refusal no retry of the client's can fix.
    dead = topics.create(**{"max.message.bytes": "100"})
    kcat(
        kafka.bootstrap_servers,
        "-P",
        "-t",
        topic,
        stdin=b"before\npoison " + b"x" * 200 + b"\nafter\n",
    )
    group = f"g-{topic}"
    consumer = services.start(
        "consumer",
        KAFKA_TOPIC=topic,
        KAFKA_GROUP_ID=group,
        CONSUMER_HANDLER="tests.handlers:refuse_poison",
        CONSUMER_DEAD_LETTER_TOPIC=dead,
        **HANDLER_SETTINGS,
    )
    services.wait_until(
        lambda: len(consumer.events("record.dead_letter_failed")) >= 3, what="refused 3 times"
    )
    # Nothing past the refused record was handled or committed meanwhile.
    assert _handled(consumer) == ["before"]
    assert _committed(kafka, group, topic) in ({}, {0: 1})
    assert "MessageSizeTooLarge" in consumer.events("record.dead_letter_failed")[0]["error"]

    topics.configure(dead, **{"max.message.bytes": "1048588"})
    services.wait_until(lambda: consumer.events("record.dead_lettered"), timeout=60,
                        what="the dead letter taken")  # fmt: skip
    services.wait_until(lambda: _committed(kafka, group, topic) == {0: 3}, what="all committed")
    assert consumer.stop() == 0
    assert _handled(consumer) == ["before", "after"]
    (letter,) = console_read_letters(kafka.bootstrap_servers, dead, 1)
    assert letter["value"].startswith("poison")
    assert letter["dlt.attempts"] == "1"


def test_a_missing_dead_letter_topic_is_refused_at_start(
    services: Services, topics: Topics
) -> None:
    topic = topics.create()
    consumer = services.start(
        "consumer",
        KAFKA_TOPIC=topic,
        KAFKA_GROUP_ID=f"g-{topic}",
        CONSUMER_DEAD_LETTER_TOPIC=f"{topic}.never-created",
    )
    assert consumer.process.wait(timeout=60) == 1
    consumer.collect()
    (failed,) = consumer.events("service.failed")
    assert failed["reason"] == "dead_letter_topic_missing"
    assert f"{topic}.never-created" not in topics.admin.list_topics()
    assert "Traceback" not in consumer.output()


def test_without_a_dead_letter_topic_the_consumer_stops_on_the_record_each_time(
    services: Services, topics: Topics
) -> None:
    kafka = services.kafka
    topic = topics.create()
    kcat(kafka.bootstrap_servers, "-P", "-t", topic, stdin=b"a\nb\npoison\nc\n")
    group = f"g-{topic}"
    settings = {
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP_ID": group,
        "CONSUMER_HANDLER": "tests.handlers:fail_poison",
        **HANDLER_SETTINGS,
    }
    for run in range(2):  # the orchestrator's restart meets the same record
        consumer = services.start("consumer", **settings)
        assert consumer.process.wait(timeout=60) == 1, consumer.output()
        consumer.collect()
        (failed,) = consumer.events("handler.failed")
        assert (failed["partition"], failed["offset"], failed["attempts"]) == (0, 2, 3)
        assert "ValueError: cannot parse poison" in failed["error"]
        assert consumer.events("service.failed")[0]["reason"] == "handler_failed"
        assert _handled(consumer) == (["a", "b"] if run == 0 else [])
        assert _committed(kafka, group, topic) == {0: 2}
        assert "Traceback" not in consumer.output()


def test_sigkill_while_waiting_for_a_dependency_keeps_at_least_once(
    services: Services, topics: Topics, tmp_path: Path
) -> None:
    kafka = services.kafka
    topic = topics.create(partitions=2)
    kcat(kafka.bootstrap_servers, "-P", "-t", topic, "-p", "0", stdin=b"p0-a\np0-b\n")
    kcat(kafka.bootstrap_servers, "-P", "-t", topic, "-p", "1", stdin=b"p1-a\np1-b\n")
    flag = tmp_path / "database-up"
    settings = {
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP_ID": f"g-{topic}",
        "CONSUMER_HANDLER": "tests.handlers:waits_for_flag",
        "DEPENDENCY_FLAG": str(flag),
        **HANDLER_SETTINGS,
    }
    first = services.start("consumer", **settings)
    services.wait_until(
        lambda: len(first.events("handler.retrying")) >= 4, what="both partitions waiting"
    )
    assert all(line["until_it_works"] for line in first.events("handler.retrying"))
    assert first.get("/healthz")[0] == 200  # waiting is alive
    first.stop(signal.SIGKILL)

    flag.touch()
    second = services.start("consumer", **settings)
    services.wait_until(lambda: len(_handled(second)) == 4, timeout=60, what="4 handled")
    assert second.stop() == 0
    assert sorted(_handled(second)) == ["p0-a", "p0-b", "p1-a", "p1-b"]
    assert _handled(first) == []


def test_the_walkthrough_variables_through_the_event_hubs_front(
    services: Services, topics: Topics, eventhubs_front: EventHubsFront
) -> None:
    kafka = services.kafka
    topic, dead = topics.create(), topics.create()
    kcat(kafka.bootstrap_servers, "-P", "-t", topic, stdin=b"ok\npoison\nok again\n")
    consumer = services.start(
        "consumer",
        clean_env=True,
        **eventhubs_env(kafka, topic, f"g-{topic}"),
        CONSUMER_HANDLER="tests.handlers:refuse_poison",
        CONSUMER_DEAD_LETTER_TOPIC=dead,
        **HANDLER_SETTINGS,
    )
    services.wait_until(
        lambda: len(_handled(consumer)) == 2 and consumer.events("record.dead_lettered"),
        timeout=60,
        what="2 handled, 1 dead-lettered through the front",
    )
    assert consumer.stop() == 0
    (letter,) = console_read_letters(kafka.bootstrap_servers, dead, 1)
    assert (letter["value"], letter["dlt.exception.type"]) == (
        "poison",
        "consumer.handler.RecordRefused",
    )


def test_replay_puts_the_dead_letters_back_and_the_fixed_handler_takes_them(
    services: Services, topics: Topics
) -> None:
    kafka = services.kafka
    topic, dead = topics.create(), topics.create()
    kcat(kafka.bootstrap_servers, "-P", "-t", topic, "-K:", "-H", "trace=t1",
         stdin=b"k1:a\nk2:poison one\nk3:b\nk4:poison two\n")  # fmt: skip
    settings = {
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP_ID": f"g-{topic}",
        "CONSUMER_DEAD_LETTER_TOPIC": dead,
        **HANDLER_SETTINGS,
    }
    broken = services.start("consumer", CONSUMER_HANDLER="tests.handlers:refuse_poison", **settings)
    services.wait_until(lambda: len(broken.events("record.dead_lettered")) == 2, what="2 letters")
    assert broken.stop() == 0

    fixed = services.start("consumer", CONSUMER_HANDLER="tests.handlers:handle_all", **settings)
    # A filter that matches nothing replays nothing, and says so.
    none = services.start_command(
        "replay", [sys.executable, "-m", "consumer", "replay", "--partition", "7"],
        env={**services.base_env, **settings},
    )  # fmt: skip
    assert none.process.wait(timeout=60) == 0
    none.collect()
    (finished,) = none.events("replay.finished")
    assert (finished["read"], finished["replayed"], finished["skipped"]) == (2, 0, 2)

    replay = services.start_command(
        "replay", [sys.executable, "-m", "consumer", "replay", "--exception", "RecordRefused",
                   "--from-offset", "3"],
        env={**services.base_env, **settings},
    )  # fmt: skip
    assert replay.process.wait(timeout=60) == 0
    replay.collect()
    (finished,) = replay.events("replay.finished")
    assert (finished["read"], finished["replayed"], finished["failed"]) == (2, 1, 0)
    (replayed,) = replay.events("record.replayed")
    assert (replayed["topic"], replayed["original_offset"], replayed["offset"]) == (topic, 3, 4)

    services.wait_until(lambda: "poison two" in _handled(fixed), what="the replayed record handled")
    assert fixed.stop() == 0
    again = next(e for e in fixed.events("test.handled") if e["value"] == "poison two")
    assert again["offset"] == 4
    # Back with its own key and header, without the dead letter's.
    (record,) = [r for r in read_all(kafka.bootstrap_servers, topic) if r["offset"] == 4]
    assert record["key"] == "k4"
    assert record["headers"] == ["trace", "t1"]


def test_a_rebalance_while_waiting_for_a_dependency_keeps_at_least_once(
    services: Services, topics: Topics, tmp_path: Path
) -> None:
    kafka = services.kafka
    topic = topics.create(partitions=4)
    for p in range(4):
        kcat(
            kafka.bootstrap_servers,
            "-P",
            "-t",
            topic,
            "-p",
            str(p),
            stdin=f"p{p}-a\np{p}-b\n".encode(),
        )
    flag = tmp_path / "database-up"
    group = f"g-{topic}"
    settings = {
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP_ID": group,
        "CONSUMER_HANDLER": "tests.handlers:waits_for_flag",
        "DEPENDENCY_FLAG": str(flag),
        **HANDLER_SETTINGS,
    }
    first = services.start("consumer", **settings)
    services.wait_until(
        lambda: {line["partition"] for line in first.events("handler.retrying")} == {0, 1, 2, 3},
        what="all four partitions waiting",
    )
    second = services.start("consumer", **settings)
    services.wait_until(
        lambda: second.assignment() and first.events("partitions.revoked"), what="a rebalance"
    )
    flag.touch()
    expected = sorted(f"p{p}-{x}" for p in range(4) for x in "ab")
    services.wait_until(
        lambda: sorted(set(_handled(first) + _handled(second))) == expected,
        timeout=60,
        what="every record handled",
    )
    services.wait_until(
        lambda: _committed(kafka, group, topic, 4) == {p: 2 for p in range(4)}, what="committed"
    )
    assert second.stop() == 0
    assert first.stop() == 0
    # Nothing was handled before the dependency came back: no record twice.
    assert sorted(_handled(first) + _handled(second)) == expected


def test_sigterm_lets_the_record_being_handled_finish_then_commits_and_exits(
    services: Services, topics: Topics
) -> None:
    kafka = services.kafka
    topic = topics.create()
    kcat(kafka.bootstrap_servers, "-P", "-t", topic, stdin=b"one\ntwo\nthree\n")
    group = f"g-{topic}"
    consumer = services.start(
        "consumer",
        KAFKA_TOPIC=topic,
        KAFKA_GROUP_ID=group,
        CONSUMER_HANDLER="tests.handlers:slow",
        SLOW_S="3",
    )
    services.wait_until(lambda: consumer.events("test.started"), what="the first record begun")
    started = time.monotonic()
    assert consumer.stop(timeout=10) == 0  # Docker's grace period
    assert time.monotonic() - started < 10
    assert _handled(consumer) == ["one"]  # finished, and nothing begun after the signal
    assert _committed(kafka, group, topic) == {0: 1}
