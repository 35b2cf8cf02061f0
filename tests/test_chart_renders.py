"""The Helm chart passes `helm lint --strict` and renders, in every case of its matrix
(deploy/helm/eventhubs-kafka-python/ci/*-values.yaml, as chart-testing reads them),
to objects that kubeconform finds valid, in strict mode, against Kubernetes 1.34's own
schemas and the CRDs of KEDA and the Prometheus Operator."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import kube

pytestmark = pytest.mark.tools

CASES = kube.ci_values()


def case_id(path: Path) -> str:
    return path.name.removesuffix("-values.yaml")


def test_the_matrix_covers_each_choice_both_ways() -> None:
    """Kafka and Event Hubs, KEDA on and off, monitoring on and off, the chart's own
    Secret and an existing one, Entra ID: each is some case's choice."""
    cases = {case_id(path): yaml.safe_load(path.read_text()) for path in CASES}

    def some(predicate: Any) -> bool:
        return any(predicate(values) for values in cases.values())

    def broker(values: dict[str, Any]) -> str:
        return str(values.get("broker", "kafka"))

    def keda(values: dict[str, Any]) -> bool:
        return bool(values.get("autoscaling", {}).get("enabled"))

    def monitoring(values: dict[str, Any]) -> bool:
        return bool(values.get("monitoring", {}).get("podMonitor", {}).get("enabled"))

    def existing_secret(values: dict[str, Any]) -> bool:
        named = [
            values.get(part, {}).get("secret", {}).get("name") for part in ("producer", "consumer")
        ]
        return bool(values.get("secret", {}).get("name") or any(named))

    for name in ("kafka", "eventHubs"):
        for flag in (keda, monitoring):
            assert some(lambda v, n=name, f=flag: broker(v) == n and f(v))
            assert some(lambda v, n=name, f=flag: broker(v) == n and not f(v))
    assert some(existing_secret)
    assert some(lambda v: v.get("secret", {}).get("value"))
    assert some(lambda v: v.get("eventHubs", {}).get("auth") == "entraId")


@pytest.mark.parametrize("values", CASES, ids=case_id)
def test_helm_lint_strict_passes(values: Path) -> None:
    result = kube.helm("lint", "--strict", str(kube.CHART), "--values", str(values))
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout
    assert "[ERROR]" not in result.stdout


@pytest.mark.parametrize("values", CASES, ids=case_id)
def test_every_rendered_object_is_valid_for_kubernetes_1_34(values: Path) -> None:
    rendered = kube.render([values])
    report = kube.kubeconform(rendered.text)
    summary = report["summary"]
    assert report["resources"] == [], report["resources"]
    assert summary["valid"] == len(rendered.objects) > 0
    assert summary["invalid"] == summary["errors"] == summary["skipped"] == 0


def _with(obj: dict[str, Any], path: list[str], value: object) -> dict[str, Any]:
    changed = copy.deepcopy(obj)
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return changed


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("Deployment", ["spec", "template", "spec", "securityContext", "runAsUsr"], 10001),
        ("Deployment", ["spec", "replicas"], "two"),
        ("ScaledObject", ["spec", "maxReplicas"], 10),
        ("TriggerAuthentication", ["spec", "secretTargetRef"], [{"parameter": "password"}]),
        ("PodMonitor", ["spec", "podMetricsEndpoints"], [{"port": "metrics", "intervl": "30s"}]),
        ("PrometheusRule", ["spec", "groups"], [{"rules": []}]),
    ],
)
def test_kubeconform_would_catch_a_wrong_field(kind: str, path: list[str], value: object) -> None:
    """The validation above can fail: one misspelt or mistyped field is refused, for
    Kubernetes' kinds and the CRDs' alike."""
    rendered = kube.render([kube.CHART / "ci" / "eventhubs-keda-monitoring-values.yaml"])
    wrong = _with(rendered.of_kind(kind)[0], path, value)
    report = kube.kubeconform(yaml.safe_dump(wrong))
    assert report["summary"]["invalid"] == 1, report


def test_otel_variables_reach_each_service_as_given() -> None:
    """The chart passes OpenTelemetry's variables through: both services share the
    collector and sampler, each has its own service name."""
    rendered = kube.render([kube.CHART / "ci" / "kafka-tracing-values.yaml"])
    for component in ("producer", "consumer"):
        (container,) = rendered.one("Deployment", component)["spec"]["template"]["spec"][
            "containers"
        ]
        env = {item["name"]: item.get("value") for item in container["env"]}
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability.svc:4318"
        assert (env["OTEL_TRACES_SAMPLER"], env["OTEL_TRACES_SAMPLER_ARG"]) == (
            "parentbased_traceidratio",
            "0.01",
        )
        assert env["OTEL_SERVICE_NAME"] == f"orders-{component}"
