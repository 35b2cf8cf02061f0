"""KEDA's own Kafka scaler, reading the chart's trigger as rendered, sees the lag that
Kafka's consumer-group tool sees for our consumer's group; turns active past the
activation threshold; and never implies more replicas than partitions.

The scaler is pkg/scalers of github.com/kedacore/keda/v2, built as build/bin/kedalag
(tests/kedascaler): the code KEDA's operator runs for a ScaledObject, without a
cluster. The local Kafka preset is checked on localkafka's plaintext listener; the
Event Hubs preset through the Event Hubs front (SASL PLAIN as $ConnectionString over
verified TLS), where the one change to the rendered trigger is its address, since
<namespace>.servicebus.windows.net does not resolve here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from tests import clients, kube
from tests.conftest import Cluster, EventHubsFront, Services, eventhubs_env, seqs

pytestmark = pytest.mark.localkafka

PARTITIONS = 10
#: Records the consumer handles and commits before it stops.
HANDLED = 400
#: Records sent after it stopped: the lag both tools must report.
BEHIND = 2_500


def implied_replicas(answer: dict[str, Any]) -> int:
    """What the HPA asks for from an AverageValue metric: ceil(value / target)."""
    return math.ceil(answer["metric"] / answer["target"])


def lag_of(kafka: Cluster, group: str, topic: str) -> int:
    """The group's total lag on *topic*, as Kafka's kafka-consumer-groups tool says."""
    lags = clients.group_lag(kafka.bootstrap_servers, group)
    assert {partition for (name, partition) in lags if name == topic} == set(range(PARTITIONS))
    return sum(lag for (name, _), lag in lags.items() if name == topic)


def leave_behind(
    services: Services,
    prefill: Callable[..., list[int]],
    topic: str,
    env: dict[str, str],
    *,
    clean_env: bool = False,
) -> None:
    """Our consumer handles HANDLED records, commits and stops; BEHIND more arrive."""
    prefill(topic, HANDLED)
    consumer = services.start("consumer", clean_env=clean_env, **env)
    services.wait_until(
        lambda: len(seqs(consumer, "message.received")) >= HANDLED,
        timeout=60,
        what=f"{HANDLED} records handled",
    )
    assert consumer.stop() == 0
    prefill(topic, BEHIND)


def test_the_kafka_presets_trigger_reports_the_groups_lag_active_and_capped(
    kafka: Cluster,
    services: Services,
    new_topic: Callable[..., str],
    prefill: Callable[..., list[int]],
) -> None:
    topic = new_topic(partitions=PARTITIONS)
    group = f"g-{topic}"
    leave_behind(services, prefill, topic, {"KAFKA_TOPIC": topic, "KAFKA_GROUP_ID": group})
    preset = [kube.CHART / "ci" / "kafka-keda-monitoring-values.yaml"]
    connection = {"kafka.bootstrapServers": kafka.bootstrap_servers, "kafka.topic": topic}
    connection["kafka.groupId"] = group

    metadata, auth = kube.keda_trigger(kube.render(preset, connection))
    assert auth == {}
    answer = kube.kedalag(metadata, auth)
    assert lag_of(kafka, group, topic) == BEHIND
    assert answer["metric"] == BEHIND
    assert answer["target"] == 1000
    assert answer["active"] is True
    assert implied_replicas(answer) == 3

    # A small threshold: 25 replicas' worth of lag, capped at the 10 partitions.
    metadata, auth = kube.keda_trigger(
        kube.render(preset, {**connection, "autoscaling.lagThreshold": 100})
    )
    capped = kube.kedalag(metadata, auth)
    assert capped["metric"] == PARTITIONS * 100
    assert implied_replicas(capped) == PARTITIONS
    # The cap is the chart's allowIdleConsumers "false": without it, KEDA asks for 25.
    uncapped = kube.kedalag({**metadata, "allowIdleConsumers": "true"}, auth)
    assert implied_replicas(uncapped) == BEHIND // 100

    # Activation: past the threshold, not at it.
    for threshold, active in [(BEHIND, False), (BEHIND - 1, True)]:
        metadata, auth = kube.keda_trigger(
            kube.render(preset, {**connection, "autoscaling.activationLagThreshold": threshold})
        )
        assert kube.kedalag(metadata, auth)["active"] is active, threshold


def test_a_group_that_never_committed_counts_the_whole_topic_with_the_charts_default(
    kafka: Cluster, new_topic: Callable[..., str], prefill: Callable[..., list[int]]
) -> None:
    """offsetResetPolicy earliest, like the consumer's KAFKA_AUTO_OFFSET_RESET: a new
    group's backlog is its lag, so KEDA starts consumers for it from zero replicas.
    With latest KEDA counts 1 a partition, whatever the backlog; with
    scaleToZeroOnInvalidOffset too, none, and a group at zero never starts."""
    topic = new_topic(partitions=PARTITIONS)
    prefill(topic, 700)
    values = {
        "kafka.bootstrapServers": kafka.bootstrap_servers,
        "kafka.topic": topic,
        "kafka.groupId": f"never-{topic}",
        "autoscaling.minReplicaCount": 0,
    }
    preset = [kube.CHART / "ci" / "kafka-values.yaml"]
    metadata, auth = kube.keda_trigger(kube.render(preset, {**values, "autoscaling.enabled": True}))
    assert metadata["offsetResetPolicy"] == "earliest"
    answer = kube.kedalag(metadata, auth)
    assert (answer["metric"], answer["active"]) == (700, True)
    latest = {**metadata, "offsetResetPolicy": "latest"}
    answer = kube.kedalag(latest, auth)
    assert (answer["metric"], answer["active"]) == (PARTITIONS, True)
    answer = kube.kedalag({**latest, "scaleToZeroOnInvalidOffset": "true"}, auth)
    assert (answer["metric"], answer["active"]) == (0, False)


def test_the_event_hubs_presets_trigger_logs_in_through_the_front(
    kafka: Cluster,
    services: Services,
    eventhubs_front: EventHubsFront,
    new_topic: Callable[..., str],
    prefill: Callable[..., list[int]],
) -> None:
    address, ca_file, connection_string = kafka.require_sasl_ssl()
    topic = new_topic(partitions=PARTITIONS)
    group = f"g-{topic}"
    # Our consumer as the chart runs it: the walkthrough's variables, through the front.
    leave_behind(services, prefill, topic, eventhubs_env(kafka, topic, group), clean_env=True)
    rendered = kube.render(
        [kube.CHART / "ci" / "eventhubs-inline-secret-keda-values.yaml"],
        {
            "eventHubs.eventHub": topic,
            "eventHubs.consumerGroup": group,
            # The chart puts the key in a Secret of its own; KEDA reads it from there.
            "secret.value": connection_string,
        },
    )
    metadata, auth = kube.keda_trigger(rendered)
    assert metadata["bootstrapServers"].endswith(".servicebus.windows.net:9093")
    assert (metadata["sasl"], metadata["tls"]) == ("plaintext", "enable")
    assert auth == {"username": "$ConnectionString", "password": connection_string}

    metadata["bootstrapServers"] = address
    # Go verifies the front's certificate against the test CA, as it would Azure's
    # against the system's.
    answer = kube.kedalag(metadata, auth, env={"SSL_CERT_FILE": str(ca_file)})
    assert lag_of(kafka, group, topic) == BEHIND
    assert answer["metric"] == BEHIND
    assert answer["active"] is True
    assert implied_replicas(answer) == 3
    assert not eventhubs_front.events("front.failed")


def test_the_front_refuses_the_scaler_a_wrong_key(
    kafka: Cluster, eventhubs_front: EventHubsFront, new_topic: Callable[..., str]
) -> None:
    """The key the scaler sends is checked: the pass above is not a front letting all in."""
    address, ca_file, connection_string = kafka.require_sasl_ssl()
    del eventhubs_front
    topic = new_topic(partitions=PARTITIONS)
    rendered = kube.render(
        [kube.CHART / "ci" / "eventhubs-inline-secret-keda-values.yaml"],
        {"eventHubs.eventHub": topic, "secret.value": connection_string.replace("Key=", "Key=x")},
    )
    metadata, auth = kube.keda_trigger(rendered)
    metadata["bootstrapServers"] = address
    result = kube.kedalag_result(metadata, auth, env={"SSL_CERT_FILE": str(ca_file)})
    assert result.returncode == 1
    assert connection_string.split("SharedAccessKey=")[1] not in result.stdout
