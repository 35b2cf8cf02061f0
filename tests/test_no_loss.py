"""Nothing is lost while consumers scale 1 -> 3 -> 1, one is SIGKILLed and the broker restarts.

Every sequence number the producer logged as delivered is processed by some
consumer. Duplicates come only from the consumer killed mid-batch: messages
it processed whose offsets it had not committed yet.
"""

from __future__ import annotations

import signal
from collections import Counter, defaultdict

import pytest

import localkafka
from harness import ServiceProcess
from tests.conftest import OwnBroker, Services, eventhubs_env, seqs, shared_access_key

pytestmark = [pytest.mark.faults, pytest.mark.localkafka]

TOPIC = "orders"
PARTITIONS = 10


def _received(consumer: ServiceProcess) -> list[tuple[int, int, int]]:
    """(seq, partition, offset) of every message *consumer* processed."""
    return [(e["seq"], e["partition"], e["offset"]) for e in consumer.events("message.received")]


def test_nothing_lost_through_scaling_a_crash_and_a_broker_restart(
    services: Services, own_broker: OwnBroker
) -> None:
    broker = own_broker.broker
    localkafka.create_topic(broker, TOPIC, partitions=PARTITIONS)
    # The Event Hubs path throughout: SASL_SSL, verified TLS, the key in play.
    env = {
        **eventhubs_env(own_broker.cluster, TOPIC, "loss-test"),
        # Real work takes time: the kill below lands in the middle of a batch.
        "CONSUMER_SIMULATED_WORK_MS": "20",
    }

    def owned(*members: ServiceProcess) -> list[list[int]]:
        return [m.owned(TOPIC) for m in members]

    def split_among(*members: ServiceProcess) -> bool:
        shares = owned(*members)
        together = sorted(partition for share in shares for partition in share)
        return all(shares) and together == list(range(PARTITIONS))

    a = services.start("consumer", clean_env=True, **env)
    services.wait_until(lambda: split_among(a), what="A owns all partitions")
    producer = services.start("producer", clean_env=True, PRODUCER_RATE="100", **env)
    services.wait_until(lambda: len(seqs(producer, "message.sent")) >= 200, what="200 sent")

    # Scale out to 3.
    b = services.start("consumer", clean_env=True, **env)
    c = services.start("consumer", clean_env=True, **env)
    services.wait_until(lambda: split_among(a, b, c), timeout=60, what="a 3-way split")
    services.wait_until(lambda: len(_received(b)) >= 100, timeout=60, what="B busy")

    # Crash one: no commit, no LeaveGroup; the group notices after the session timeout.
    b.stop(signal.SIGKILL)
    services.wait_until(lambda: split_among(a, c), timeout=60, what="A and C take over B's")

    # Restart the broker under load: same data dir, same ports.
    sent_before_restart = len(seqs(producer, "message.sent"))
    own_broker.stop()
    own_broker.restart()
    services.wait_until(
        lambda: len(seqs(producer, "message.sent")) >= sent_before_restart + 300,
        timeout=120,
        what="sends resuming after the broker restart",
    )

    # Scale in to 1.
    assert c.stop() == 0
    services.wait_until(lambda: split_among(a), timeout=60, what="A owns all again")
    for service in (a, producer):
        assert service.get("/metrics")[0] == 200  # the services fixture checks it for the key
    assert producer.stop() == 0
    sent = seqs(producer, "message.sent")
    services.wait_until(
        lambda: set(sent) <= {seq for seq, _, _ in _received(a) + _received(b) + _received(c)},
        timeout=120,
        what="every delivered message processed",
    )
    assert a.stop() == 0

    everything = _received(a) + _received(b) + _received(c)
    counts = Counter(seq for seq, _, _ in everything)
    lost = set(sent) - set(counts)
    duplicated = {seq for seq, n in counts.items() if n > 1}
    print(
        f"\nloss test: sent {len(sent)}, processed {len(everything)} "
        f"({len(counts)} distinct), lost {len(lost)}, duplicated {len(duplicated)}"
    )
    assert not lost
    assert sorted(sent) == list(range(1, len(sent) + 1)), "the producer skipped a number"

    # Each duplicate was processed by B, among the last it processed in its
    # partition: fetched and processed, not yet committed, when it died.
    b_by_partition: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for seq, partition, offset in _received(b):
        b_by_partition[partition].append((offset, seq))
    for partition, received in b_by_partition.items():
        flags = [seq in duplicated for _, seq in sorted(received)]
        first = flags.index(True) if True in flags else len(flags)
        assert all(flags[first:]), f"partition {partition}: a duplicate before B's last commit"
    b_seqs = {seq for seq, _, _ in _received(b)}
    assert duplicated <= b_seqs, "a duplicate that the killed consumer never processed"

    for service in (a, b, c, producer):
        if service is not b:
            assert service.process.returncode == 0
        assert "Traceback" not in service.output()
    services.secrets |= {broker.connection_string, shared_access_key(broker.connection_string)}
