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


def _container(rendered: kube.Rendered, component: str) -> dict[str, Any]:
    (container,) = rendered.one("Deployment", component)["spec"]["template"]["spec"]["containers"]
    found: dict[str, Any] = container
    return found


def _env(rendered: kube.Rendered, component: str) -> dict[str, Any]:
    env = _container(rendered, component)["env"]
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in env}


def test_no_sink_unless_asked() -> None:
    rendered = kube.render([kube.CHART / "ci" / "kafka-values.yaml"])
    components = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]
        for d in rendered.of_kind("Deployment")
    }
    assert components == {"producer", "consumer"}


@pytest.mark.parametrize("mode", ["bulk", "upsert"])
def test_the_sink_is_the_consumer_with_the_examples_handler(mode: str) -> None:
    rendered = kube.render([KAFKA_SINK], {"sink.mode": mode})
    sink = _container(rendered, "sink")
    assert sink["args"] == ["consumer"]
    assert sink["image"] == "eventhubs-kafka-python:0.1.0-postgres-sink"
    env = _env(rendered, "sink")
    assert env["CONSUMER_HANDLER"] == f"examples.postgres_sink:{mode}"
    assert env["SINK_DATABASE_URL"] == {
        "secretKeyRef": {"name": "sink-database", "key": "database-url"}
    }
    # A group of its own, on the consumer's topic and broker.
    consumer = _env(rendered, "consumer")
    assert env["KAFKA_GROUP_ID"] == "postgres-sink" != consumer["KAFKA_GROUP_ID"]
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_TOPIC", "KAFKA_SECURITY_PROTOCOL"):
        assert env[name] == consumer[name]


def test_the_users_handler_stays_the_consumers() -> None:
    rendered = kube.render(
        [KAFKA_SINK],
        {"env": {"CONSUMER_HANDLER": "orders.handlers:handle", "CONSUMER_BATCH_SIZE": 200}},
    )
    assert _env(rendered, "consumer")["CONSUMER_HANDLER"] == "orders.handlers:handle"
    sink = _env(rendered, "sink")
    assert sink["CONSUMER_HANDLER"] == "examples.postgres_sink:bulk"
    assert sink["CONSUMER_BATCH_SIZE"] == "200"
    names = [item["name"] for item in _container(rendered, "sink")["env"]]
    assert len(names) == len(set(names))


def test_on_event_hubs_it_reads_with_its_own_group_and_files() -> None:
    rendered = kube.render([EVENT_HUBS_FILES])
    env = _env(rendered, "sink")
    assert env["EVENTHUBS_CONSUMER_GROUPID"] == "postgres-sink"
    assert (
        env["EVENTHUBS_CONNECTION_STRING_FILE"]
        == _env(rendered, "consumer")["EVENTHUBS_CONNECTION_STRING_FILE"]
    )
    assert env["CONSUMER_HANDLER"] == "examples.postgres_sink:upsert"
    assert "SINK_DATABASE_URL" not in env
    path = env["SINK_DATABASE_URL_FILE"]
    pod = rendered.one("Deployment", "sink")["spec"]["template"]["spec"]
    (mount,) = [
        m
        for m in _container(rendered, "sink")["volumeMounts"]
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
    sink = rendered.one("Deployment", "sink")["spec"]["template"]["spec"]
    assert sink["serviceAccountName"] in accounts
    assert (
        sink["serviceAccountName"]
        != rendered.one("Deployment", "consumer")["spec"]["template"]["spec"]["serviceAccountName"]
    )


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
