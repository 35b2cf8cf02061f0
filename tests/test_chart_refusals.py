"""The chart refuses values that cannot work, before anything reaches a cluster: one
error from helm that names the value and what to do, and never a secret in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests import kube

pytestmark = pytest.mark.tools

KAFKA = kube.CHART / "ci" / "kafka-keda-monitoring-values.yaml"
EVENT_HUBS = kube.CHART / "ci" / "eventhubs-values.yaml"
SECRET = "Endpoint=sb://contoso-kafka.servicebus.windows.net/;SharedAccessKeyName=x;SharedAccessKey=c2VjcmV0"


@pytest.mark.parametrize(
    ("base", "values", "said"),
    [
        pytest.param(
            KAFKA,
            {"autoscaling.maxReplicaCount": 12},
            "autoscaling.maxReplicaCount (12) is above autoscaling.partitions (10): "
            "a consumer beyond the partition count gets none and sits idle",
            id="more-replicas-than-partitions",
        ),
        pytest.param(
            KAFKA,
            {"autoscaling.minReplicaCount": 5, "autoscaling.maxReplicaCount": 4},
            "autoscaling.minReplicaCount (5) is above autoscaling.maxReplicaCount (4)",
            id="min-above-max",
        ),
        pytest.param(
            KAFKA,
            {"kafka.bootstrapServers": ""},
            "kafka.bootstrapServers is required with broker: kafka",
            id="no-kafka-address",
        ),
        pytest.param(
            KAFKA,
            {"kafka.securityProtocol": "SASL_SSL", "kafka.sasl.username": "svc"},
            "kafka.securityProtocol SASL_SSL needs the SASL password: set secret.name",
            id="sasl-without-password",
        ),
        pytest.param(
            EVENT_HUBS,
            {"eventHubs.namespace": ""},
            "eventHubs.namespace is required with broker: eventHubs",
            id="no-namespace",
        ),
        pytest.param(
            EVENT_HUBS,
            {"secret.name": ""},
            "the services need an Event Hubs connection string: set secret.name",
            id="no-connection-string",
        ),
        pytest.param(
            EVENT_HUBS,
            {"eventHubs.auth": "entraId", "secret.name": "", "autoscaling.enabled": True},
            "producer.workloadIdentityClientId is required with eventHubs.auth: entraId",
            id="entra-without-identity",
        ),
        pytest.param(
            EVENT_HUBS,
            {
                "eventHubs.auth": "entraId",
                "producer.workloadIdentityClientId": "id-1",
                "consumer.workloadIdentityClientId": "id-2",
                "autoscaling.enabled": True,
            },
            "KEDA's kafka scaler cannot sign in with Entra ID (kedacore/keda#8070)",
            id="keda-with-entra-only",
        ),
    ],
)
def test_values_that_cannot_work(base: Path, values: dict[str, Any], said: str) -> None:
    error = kube.refusal([base], values)
    assert said in error
    assert error.count("Error:") == 1


@pytest.mark.parametrize(
    ("values", "said"),
    [
        pytest.param(
            {"env": {"KAFKA_SASL_PASSWORD": SECRET}},
            "invalid propertyName 'KAFKA_SASL_PASSWORD'",
            id="secret-in-env",
        ),
        pytest.param(
            {"consumer": {"env": {"EVENTHUBS_CONNECTION_STRING": SECRET}}},
            "invalid propertyName 'EVENTHUBS_CONNECTION_STRING'",
            id="connection-string-in-env",
        ),
        pytest.param({"brokr": "eventHubs"}, "brokr", id="misspelt-key"),
        pytest.param({"broker": "eventhubs"}, "broker", id="unknown-broker"),
        pytest.param({"autoscaling": {"lagThreshold": "many"}}, "lagThreshold", id="not-a-number"),
        pytest.param({"eventHubs": {"namespace": "sb://x"}}, "namespace", id="namespace-as-url"),
    ],
)
def test_the_values_schema_refuses(values: dict[str, Any], said: str) -> None:
    """values.schema.json: settings the chart owns, misspelt keys, wrong types."""
    error = kube.refusal([EVENT_HUBS], {"secret.value": SECRET, **values})
    assert "values don't meet the specifications of the schema" in error
    assert said in error
    assert SECRET not in error
    assert "c2VjcmV0" not in error
