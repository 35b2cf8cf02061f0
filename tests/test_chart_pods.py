"""What the schemas cannot check in the chart's objects, in every case of its matrix:
pods run as a careful operator runs them, probes reach the services' endpoints by
the port's name, the PDB and PodMonitor select the pods they are for, KEDA's
objects fit together and with the consumer's settings, the alerts are compose's,
and no secret is written outside a Secret."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import kube
from tests.kube import env_of, pod_spec

pytestmark = pytest.mark.tools

CASES = kube.ci_values()
REPO = kube.REPO


def case_id(path: Path) -> str:
    return path.name.removesuffix("-values.yaml")


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) == {"matchLabels"}, "only matchLabels selectors are expected"
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


def values_of(path: Path) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(path.read_text())
    return values


def cases_where(*keys: str) -> list[Path]:
    """The cases whose values turn on *keys* (a dotted path to true or a non-empty value)."""

    def on(values: dict[str, Any], key: str) -> bool:
        node: Any = values
        for part in key.split("."):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return bool(node)

    return [path for path in CASES if all(on(values_of(path), key) for key in keys)]


def setting(path: Path, key: str) -> Any:
    """*key* as the case sets it, or the chart's default."""
    node: Any = values_of(path)
    default: Any = values_of(kube.CHART / "values.yaml")
    for part in key.split("."):
        node = node.get(part, {}) if isinstance(node, dict) else {}
        default = default[part]
    return node if node != {} else default


@pytest.fixture(params=CASES, ids=case_id)
def rendered(request: pytest.FixtureRequest) -> kube.Rendered:
    return kube.render([request.param])


def render_each(cases: list[Path]) -> Any:
    """Parametrize a test over *cases*, rendered."""
    return pytest.mark.parametrize(
        "rendered", cases, ids=[case_id(path) for path in cases], indirect=True
    )


def test_pods_run_as_the_image_is_built_to_run(rendered: kube.Rendered) -> None:
    for deployment in rendered.of_kind("Deployment"):
        spec = pod_spec(deployment)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 10001
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        [container] = spec["containers"]
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        # The one writable place, as the Docker test runs it too; anything else mounted
        # (the secret as a file, with secret.asFile) is read-only.
        mounts = container["volumeMounts"]
        assert [m for m in mounts if not m.get("readOnly")] == [
            {"name": "tmp", "mountPath": "/tmp"}
        ]
        assert container["resources"]["requests"]
        assert container["resources"]["limits"]["memory"]
        assert spec["terminationGracePeriodSeconds"] >= 10


def test_probes_reach_healthz_and_readyz_on_the_metrics_port(rendered: kube.Rendered) -> None:
    for deployment in rendered.of_kind("Deployment"):
        [container] = pod_spec(deployment)["containers"]
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports == {"metrics": int(env_of(deployment)["METRICS_PORT"])}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        # The service's own answer: /healthz is 503 only past 30 s of a stuck loop.
        live = container["livenessProbe"]
        assert live["periodSeconds"] * live["failureThreshold"] >= 30


def test_the_pdb_selects_the_consumers_only(rendered: kube.Rendered) -> None:
    pdb = rendered.one("PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    chosen = [
        d["metadata"]["name"]
        for d in rendered.of_kind("Deployment")
        if selects(pdb["spec"]["selector"], pod_labels(d))
    ]
    assert chosen == [rendered.one("Deployment", "consumer")["metadata"]["name"]]


def test_each_deployment_selects_its_own_pods(rendered: kube.Rendered) -> None:
    deployments = rendered.of_kind("Deployment")
    for deployment in deployments:
        mine = [
            d["metadata"]["name"]
            for d in deployments
            if selects(deployment["spec"]["selector"], pod_labels(d))
        ]
        assert mine == [deployment["metadata"]["name"]]


@render_each(cases_where("monitoring.podMonitor.enabled"))
def test_the_pod_monitor_scrapes_both_services_as_compose_names_them(
    rendered: kube.Rendered,
) -> None:
    monitor = rendered.one("PodMonitor")
    deployments = rendered.of_kind("Deployment")
    assert all(selects(monitor["spec"]["selector"], pod_labels(d)) for d in deployments)
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
    # job="producer" / "consumer", as the alerts expect.
    label = monitor["spec"]["jobLabel"]
    assert {pod_labels(d)[label] for d in deployments} == {"producer", "consumer"}


@render_each(cases_where("monitoring.prometheusRule.enabled"))
def test_the_prometheus_rule_is_composes_alerts(rendered: kube.Rendered) -> None:
    alerts = yaml.safe_load((REPO / "prometheus" / "alerts.yml").read_text())
    assert rendered.one("PrometheusRule")["spec"]["groups"] == alerts["groups"]


@render_each(cases_where("autoscaling.enabled"))
def test_keda_scales_the_consumer_within_the_partitions(
    rendered: kube.Rendered, request: pytest.FixtureRequest
) -> None:
    consumer = rendered.one("Deployment", "consumer")
    spec = rendered.one("ScaledObject")["spec"]
    # KEDA owns the count: a replicas field would fight it on every upgrade.
    assert "replicas" not in consumer["spec"]
    assert spec["scaleTargetRef"] == {"name": consumer["metadata"]["name"]}
    partitions = setting(request.node.callspec.params["rendered"], "autoscaling.partitions")
    assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= partitions
    [trigger] = spec["triggers"]
    assert trigger["metadata"]["allowIdleConsumers"] == "false"
    # The trigger watches the group, topic and broker the consumer uses.
    env = env_of(consumer)
    meta = trigger["metadata"]
    if "EVENTHUBS_BROKER" in env:
        assert meta["bootstrapServers"] == env["EVENTHUBS_BROKER"]
        assert meta["topic"] == env["EVENTHUBS_TOPIC"]
        assert meta["consumerGroup"] == env["EVENTHUBS_CONSUMER_GROUPID"]
    else:
        assert meta["bootstrapServers"] == env["KAFKA_BOOTSTRAP_SERVERS"]
        assert meta["topic"] == env["KAFKA_TOPIC"]
        assert meta["consumerGroup"] == env["KAFKA_GROUP_ID"]


def test_every_secret_and_config_map_key_named_exists_or_is_the_users(
    rendered: kube.Rendered, request: pytest.FixtureRequest
) -> None:
    """A key the chart names is in an object the chart renders, or in a Secret
    the case's values name for the user to create."""
    values_file = request.node.callspec.params["rendered"]
    values = yaml.safe_load(values_file.read_text())
    users = {
        ref["name"]
        for ref in [
            values.get("secret", {}),
            *(values.get(part, {}).get("secret", {}) for part in ("producer", "consumer", "sink")),
            values.get("autoscaling", {}).get("secret", {}),
            values.get("sink", {}).get("database", {}).get("secret", {}),
        ]
        if ref.get("name")
    }
    ours = {s["metadata"]["name"]: set(s["data"]) for s in rendered.of_kind("Secret")}
    maps = {c["metadata"]["name"]: set(c["data"]) for c in rendered.of_kind("ConfigMap")}
    named: list[tuple[str, str]] = []
    for auth in rendered.of_kind("TriggerAuthentication"):
        named += [(r["name"], r["key"]) for r in auth["spec"].get("secretTargetRef", [])]
        for ref in auth["spec"].get("configMapTargetRef", []):
            assert ref["key"] in maps[ref["name"]]
    for deployment in rendered.of_kind("Deployment"):
        for value in env_of(deployment).values():
            if isinstance(value, dict):
                ref = value["secretKeyRef"]
                named.append((ref["name"], ref["key"]))
    for name, key in named:
        assert name in users or key in ours.get(name, set()), (name, key)
    # And nothing is named twice for one parameter.
    for auth in rendered.of_kind("TriggerAuthentication"):
        params = [r["parameter"] for r in auth["spec"].get("secretTargetRef", [])]
        params += [r["parameter"] for r in auth["spec"].get("configMapTargetRef", [])]
        assert sorted(params) == ["password", "username"]


@render_each(cases_where("secret.value"))
def test_a_secret_given_as_a_value_is_only_in_the_secret(rendered: kube.Rendered) -> None:
    secret = rendered.one("Secret")
    [value] = [base64.b64decode(v).decode() for v in secret["data"].values()]
    others = [obj for obj in rendered.objects if obj["kind"] != "Secret"]
    assert value not in yaml.safe_dump_all(others)


def test_event_hubs_pods_get_the_walkthroughs_variables() -> None:
    rendered = kube.render([kube.CHART / "ci" / "eventhubs-values.yaml"])
    consumer = env_of(rendered.one("Deployment", "consumer"))
    producer = env_of(rendered.one("Deployment", "producer"))
    for env in (consumer, producer):
        assert env["EVENTHUBS_BROKER"] == "contoso-kafka.servicebus.windows.net:9093"
        assert env["EVENTHUBS_TOPIC"] == "testhub"
        assert env["EVENTHUBS_CONNECTION_STRING"] == {
            "secretKeyRef": {"name": "eventhubs", "key": "connection-string"}
        }
    assert consumer["EVENTHUBS_CONSUMER_GROUPID"] == "testgroup"
    assert producer["EVENTHUBS_TIER"] == "standard"


def test_entra_id_pods_use_workload_identity_and_no_key() -> None:
    rendered = kube.render([kube.CHART / "ci" / "eventhubs-entra-keda-values.yaml"])
    accounts = {a["metadata"]["name"]: a for a in rendered.of_kind("ServiceAccount")}
    for component, client_id in [
        ("producer", "00000000-0000-0000-0000-000000000001"),
        ("consumer", "00000000-0000-0000-0000-000000000002"),
    ]:
        deployment = rendered.one("Deployment", component)
        env = env_of(deployment)
        assert env["EVENTHUBS_NAMESPACE"] == "contoso-kafka.servicebus.windows.net"
        assert "EVENTHUBS_CONNECTION_STRING" not in env
        assert pod_labels(deployment)["azure.workload.identity/use"] == "true"
        account = accounts[pod_spec(deployment)["serviceAccountName"]]
        assert account["metadata"]["annotations"] == {
            "azure.workload.identity/client-id": client_id
        }
    # KEDA alone holds a key: the Listen-only rule the values name.
    [auth] = rendered.of_kind("TriggerAuthentication")
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "password", "name": "eventhubs-listen", "key": "connection-string"}
    ]
