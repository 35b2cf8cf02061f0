"""Exactly once (docs/handlers.md, "Exactly once"): with
CONSUMER_PROCESSING_GUARANTEE=exactly_once a handler's outputs and its input offsets are
committed in one Kafka transaction. A consumer SIGKILLed three times while it copies
records written by kcat leaves each input's output exactly once at read_committed, read by
Kafka's own console consumer, directly and through the Event Hubs front of a Premium
namespace; a member paused past its session (SIGSTOP) and woken is fenced, its work
aborted; a Standard namespace refuses transactions in one line at start; a transaction
that fails is aborted and its records handled again."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable

import pytest

from common.clients.testing import FakeProducer, LogConsumer, TopicPartition, records
from common.config import ConfigError, ConsumerPlan, ConsumerSettings, load, resolve
from consumer.handler import Output
from consumer.handler import Record as Handled
from tests.clients import Feed, console_read, kcat, read_all
from tests.conftest import Cluster, EventHubsFront, Services, eventhubs_env
from tests.groups import committed
from tests.loops import run_until

PARTITIONS = 4
KILLS = 3
TOPIC = "t"


def _env(kafka: Cluster, topic: str, out: str, via: str, **settings: str) -> dict[str, str]:
    group = f"g-{topic}"
    where = (
        eventhubs_env(kafka, topic, group)
        if via == "eventhubs"
        else {
            "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "KAFKA_TOPIC": topic,
            "KAFKA_GROUP_ID": group,
        }
    )
    return {
        **where,
        "CONSUMER_HANDLER": "tests.handlers:copies",
        "CONSUMER_OUTPUT_TOPIC": out,
        "CONSUMER_PROCESSING_GUARANTEE": "exactly_once",
        **settings,
    }


def _written(bootstrap: str, topic: str) -> int:
    """How many records *topic* holds, those of aborted transactions too."""
    out = kcat(bootstrap, "-C", "-t", topic, "-e", "-q", "-X", "isolation.level=read_uncommitted",
               "-f", "x\n")  # fmt: skip
    return out.count("x")


def _read_committed(bootstrap: str, topic: str) -> Counter[str]:
    """Every value of *topic* a read_committed reader sees, as Kafka's console consumer
    reads it, by how often."""
    committed = len(read_all(bootstrap, topic))  # kcat reads read_committed by default
    out = console_read(bootstrap, topic, committed, "--isolation-level", "read_committed")
    return Counter(value for _, _, value in out)


@pytest.mark.localkafka
@pytest.mark.tools
@pytest.mark.parametrize("via", ["kafka", "eventhubs"])
def test_each_input_is_output_exactly_once_through_kills(
    services: Services,
    kafka: Cluster,
    new_topic: Callable[..., str],
    eventhubs_front: EventHubsFront,
    via: str,
) -> None:
    eventhubs_front.configure(tier="premium")
    topic, out = new_topic(PARTITIONS), new_topic(PARTITIONS)
    group, bootstrap = f"g-{topic}", kafka.bootstrap_servers
    # One member, restarted under its own name: its new producer aborts what the killed
    # one left open.
    env = _env(kafka, topic, out, via, KAFKA_CLIENT_ID="member-a", HANDLER_WAIT_MS="2")
    feed = Feed(bootstrap, topic)
    feed.more(1_000)
    killed, mid_run = [0], []
    for _ in range(KILLS):
        consumer = services.start("consumer", clean_env=via == "eventhubs", **env)
        services.wait_until(
            lambda before=killed[-1]: (
                sum(committed(bootstrap, group, topic, PARTITIONS).values()) >= before + 200
            ),
            timeout=60,
            what="200 more committed",
        )
        consumer.stop(signal.SIGKILL)
        killed.append(sum(committed(bootstrap, group, topic, PARTITIONS).values()))
        mid_run.append(killed[-1] < feed.sent)
        feed.more(500)

    last = services.start("consumer", clean_env=via == "eventhubs", **env)
    services.wait_until(
        lambda: sum(committed(bootstrap, group, topic, PARTITIONS).values()) == feed.sent,
        timeout=90,
        what="every input committed",
    )
    assert last.stop() == 0

    seen = _read_committed(bootstrap, out)
    written = _written(bootstrap, out)
    print(f"inputs {feed.sent}, outputs written {written}, at read_committed {seen.total()}")
    assert set(seen) == {f"copy-{n}" for n in range(feed.sent)}
    assert [value for value, times in seen.items() if times > 1] == []
    # A kill came before the inputs fed so far were all committed: records in flight.
    assert any(mid_run)


@pytest.mark.localkafka
@pytest.mark.tools
def test_a_member_paused_past_its_session_is_fenced(
    services: Services, kafka: Cluster, new_topic: Callable[..., str]
) -> None:
    topic, out = new_topic(PARTITIONS), new_topic(PARTITIONS)
    group, bootstrap = f"g-{topic}", kafka.bootstrap_servers
    session = {"KAFKA_SESSION_TIMEOUT_MS": "6000", "KAFKA_HEARTBEAT_INTERVAL_MS": "1000"}
    feed = Feed(bootstrap, topic)
    feed.more(2_000)
    a = services.start(
        "consumer",
        **_env(kafka, topic, out, "kafka", KAFKA_CLIENT_ID="a", HANDLER_WAIT_MS="5", **session),
    )
    services.wait_until(lambda: len(a.events("test.handled")) >= 100, what="A busy")
    a.process.send_signal(signal.SIGSTOP)
    try:
        b = services.start(
            "consumer",
            **_env(kafka, topic, out, "kafka", KAFKA_CLIENT_ID="b", HANDLER_WAIT_MS="1", **session),
        )
        services.wait_until(lambda: len(b.owned(topic)) == PARTITIONS, timeout=60, what="B all")
        services.wait_until(lambda: len(b.events("test.handled")) >= 100, what="B busy")
    finally:
        a.process.send_signal(signal.SIGCONT)
    # Woken mid-batch, A handles on and commits with a generation the group has left behind.
    services.wait_until(lambda: a.events("transaction.aborted"), timeout=60, what="A fenced")
    services.wait_until(
        lambda: sum(committed(bootstrap, group, topic, PARTITIONS).values()) == feed.sent,
        timeout=90,
        what="every input committed",
    )
    assert a.stop() == 0
    assert b.stop() == 0

    # Fenced by the broker (a commit with a stale generation), or first by its own
    # client (the partitions lost when it learnt it was expelled): either way, aborted.
    print("A aborted:", [line["error"] for line in a.events("transaction.aborted")])
    seen = _read_committed(bootstrap, out)
    assert set(seen) == {f"copy-{n}" for n in range(feed.sent)}
    assert [value for value, times in seen.items() if times > 1] == []


@pytest.mark.localkafka
def test_a_standard_namespace_refuses_transactions_in_one_line_at_start(
    services: Services, kafka: Cluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(1)
    consumer = services.start(
        "consumer", clean_env=True, **_env(kafka, topic, new_topic(1), "eventhubs")
    )
    assert consumer.process.wait(timeout=60) == 2
    consumer.collect()
    (failed,) = consumer.events("service.failed")
    assert failed["reason"] == "transactions_unsupported"
    assert "Event Hubs has them only on Premium and Dedicated namespaces" in failed["error"]
    assert "Traceback" not in consumer.output()


def _plan(**settings: object) -> ConsumerPlan:
    return resolve(
        load(
            ConsumerSettings,
            {
                "bootstrap_servers": "127.0.0.1:9",
                "topic": TOPIC,
                "group_id": "g",
                "output_topic": "out",
                "processing_guarantee": "exactly_once",
                "commit_interval_ms": 0,
                **settings,
            },
        )
    )


@pytest.mark.usefixtures("logs")
def test_a_transaction_that_fails_is_aborted_and_its_records_handled_again() -> None:
    seen: list[int] = []

    def copy(record: Handled) -> Output:
        seen.append(record.offset)
        return Output(b"copy")

    client = LogConsumer(
        TOPIC, polls=[], logs={TopicPartition(TOPIC, 0): records(TOPIC, 0, range(3))}
    )
    outputs = FakeProducer.acknowledging()
    outputs.refuse_commits = 1
    run_until(_plan(), client, copy, lambda: len(seen) == 6, outputs=outputs)

    assert seen == [0, 1, 2, 0, 1, 2]
    assert outputs.transactions == [
        "init", "begin", "offsets 0:3", "commit refused", "abort",
        "begin", "offsets 0:3", "commit",
    ]  # fmt: skip
    assert client.seeks == [(TopicPartition(TOPIC, 0), 0)]


def test_exactly_once_reads_committed_and_names_its_transactions_after_the_member() -> None:
    plan = _plan(client_id="member-a")
    assert plan.kafka["isolation_level"] == "read_committed"
    assert plan.output_kafka is not None
    assert plan.output_kafka.get("transactional_id") == "g.member-a"
    assert _plan(processing_guarantee="at_least_once").kafka["isolation_level"] == (
        "read_uncommitted"
    )


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        (
            {"ordering": "key"},
            "CONSUMER_PROCESSING_GUARANTEE=exactly_once with CONSUMER_ORDERING=key",
        ),
    ],
)
def test_exactly_once_refuses_what_it_cannot_keep(settings: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        _plan(**settings)
    assert refused.value.problems[0].startswith(problem)
