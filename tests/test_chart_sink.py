"""The chart runs the PostgreSQL sink (docs/postgres-sink.md) in either mode, as docker
compose's `postgres` profile does: the consumer with the example's handler, in a
group of its own, from the image's postgres-sink target, with the database's URL
from a Secret (by reference, or as a file beside the broker's). Off by default.
(kubeconform, the API server's dry run and the pods' checks judge its cases with the
rest of ci/; tests/compose/test_chart_security_context.py runs its pod.)"""

from __future__ import annotations

from typing import Any

import pytest

from tests import kube

pytestmark = pytest.mark.tools

KAFKA_SINK = kube.CHART / "ci" / "kafka-sink-values.yaml"
EVENT_HUBS_FILES = kube.CHART / "ci" / "eventhubs-secret-file-keda-values.yaml"


def test_no_sink_unless_asked() -> None:
    rendered = kube.render([kube.CHART / "ci" / "kafka-values.yaml"])
    assert sorted(rendered.components()) == ["consumer", "producer"]


@pytest.mark.parametrize("mode", ["bulk", "upsert"])
def test_the_sink_is_the_consumer_with_the_examples_handler(mode: str) -> None:
    rendered = kube.render([KAFKA_SINK], {"sink.mode": mode})
    sink = rendered.container("sink")
    assert sink["args"] == ["consumer"]
    assert sink["image"] == "eventhubs-kafka-python:0.1.0-postgres-sink"
    env = rendered.env("sink")
    assert env["CONSUMER_HANDLER"] == f"examples.postgres_sink:{mode}"
    assert env["SINK_DATABASE_URL"] == {
        "secretKeyRef": {"name": "sink-database", "key": "database-url"}
    }
    # A group of its own, on the consumer's topic and broker.
    consumer = rendered.env("consumer")
    assert env["KAFKA_GROUP_ID"] == "postgres-sink" != consumer["KAFKA_GROUP_ID"]
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_TOPIC", "KAFKA_SECURITY_PROTOCOL"):
        assert env[name] == consumer[name]


def test_the_users_handler_stays_the_consumers() -> None:
    rendered = kube.render(
        [KAFKA_SINK],
        {"env": {"CONSUMER_HANDLER": "orders.handlers:handle", "CONSUMER_BATCH_MAX_RECORDS": 200}},
    )
    assert rendered.env("consumer")["CONSUMER_HANDLER"] == "orders.handlers:handle"
    sink = rendered.env("sink")
    assert sink["CONSUMER_HANDLER"] == "examples.postgres_sink:bulk"
    assert sink["CONSUMER_BATCH_MAX_RECORDS"] == "200"
    names = [item["name"] for item in rendered.container("sink")["env"]]
    assert len(names) == len(set(names))


def test_on_event_hubs_it_reads_with_its_own_group_and_files() -> None:
    rendered = kube.render([EVENT_HUBS_FILES])
    env = rendered.env("sink")
    assert env["EVENTHUBS_CONSUMER_GROUPID"] == "postgres-sink"
    assert (
        env["EVENTHUBS_CONNECTION_STRING_FILE"]
        == rendered.env("consumer")["EVENTHUBS_CONNECTION_STRING_FILE"]
    )
    assert env["CONSUMER_HANDLER"] == "examples.postgres_sink:upsert"
    assert "SINK_DATABASE_URL" not in env
    path = env["SINK_DATABASE_URL_FILE"]
    pod = rendered.pod("sink")
    (mount,) = [
        m
        for m in rendered.container("sink")["volumeMounts"]
        if path.startswith(m["mountPath"] + "/")
    ]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"] == {
        "secretName": "sink-database",
        "defaultMode": 0o440,
        "items": [{"key": "url", "path": "url"}],
    }
    assert path.endswith("/url")


def test_it_has_a_service_account_of_its_own() -> None:
    rendered = kube.render([KAFKA_SINK])
    accounts = {a["metadata"]["name"] for a in rendered.of_kind("ServiceAccount")}
    sink = rendered.pod("sink")
    assert sink["serviceAccountName"] in accounts
    assert sink["serviceAccountName"] != rendered.pod("consumer")["serviceAccountName"]


def test_with_entra_id_it_signs_in_as_its_own_identity() -> None:
    entra = kube.CHART / "ci" / "eventhubs-entra-keda-values.yaml"
    sink = {"sink.enabled": True, "sink.database.secret.name": "sink-database"}
    error = kube.refusal([entra], sink)
    assert "sink.workloadIdentityClientId is required with eventHubs.auth: entraId" in error
    rendered = kube.render([entra], sink | {"sink.workloadIdentityClientId": "id-sink"})
    name = rendered.pod("sink")["serviceAccountName"]
    (account,) = [a for a in rendered.of_kind("ServiceAccount") if a["metadata"]["name"] == name]
    assert account["metadata"]["annotations"]["azure.workload.identity/client-id"] == "id-sink"
    assert "EVENTHUBS_CONNECTION_STRING" not in rendered.env("sink")


@pytest.mark.parametrize(
    ("values", "said"),
    [
        pytest.param(
            {"sink.database.secret.name": ""},
            "sink.database.secret.name is required with sink.enabled",
            id="no-database",
        ),
        pytest.param(
            {"sink.mode": "append"},
            "at '/sink/mode': value must be one of 'bulk', 'upsert'",
            id="unknown-mode",
        ),
        pytest.param(
            {"sink.env": {"SINK_DATABASE_URL": "postgresql://sink:hunter2@db/sink"}},
            "invalid propertyName 'SINK_DATABASE_URL'",
            id="url-in-env",
        ),
    ],
)
def test_values_that_cannot_work(values: dict[str, Any], said: str) -> None:
    error = kube.refusal([KAFKA_SINK], values)
    assert said in error
    assert error.count("Error:") == 1
    assert "hunter2" not in error
