"""docs/kubernetes.md stays true: its `helm install` commands render as they are
written (placeholders filled in), and its Container Apps rule is the chart's
Event Hubs trigger."""

from __future__ import annotations

import json
import re
import shlex

import pytest
import yaml

from tests import kube

pytestmark = pytest.mark.tools

PAGE = kube.REPO / "docs" / "kubernetes.md"
PLACEHOLDERS = {
    "<registry>": "contoso.azurecr.io",
    "<namespace>": "contoso-kafka",
    "<client id>": "00000000-0000-0000-0000-000000000001",
}


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), re.DOTALL)


def install_commands() -> list[list[str]]:
    """Each `helm install` of the page, as its argument list."""
    commands = []
    for block in blocks("sh"):
        joined = block.replace("\\\n", " ")
        for placeholder, value in PLACEHOLDERS.items():
            joined = joined.replace(placeholder, value)
        commands += [
            shlex.split(line)
            for line in joined.splitlines()
            if line.startswith("helm install ") and "deploy/helm" in line
        ]
    return commands


def test_every_install_on_the_page_renders_and_names_the_image() -> None:
    commands = install_commands()
    assert len(commands) == 3
    for command in commands:
        release, chart, *options = command[2:]
        assert chart == "deploy/helm/eventhubs-kafka-python"
        values = {}
        for flag, setting in zip(options[::2], options[1::2], strict=True):
            assert flag == "--set"
            key, value = setting.split("=", 1)
            values[key] = {"true": True}.get(value, value)
        rendered = kube.render(values=values)
        assert release == kube.RELEASE
        for deployment in rendered.of_kind("Deployment"):
            [container] = deployment["spec"]["template"]["spec"]["containers"]
            # The sink runs the Dockerfile's postgres-sink target, tagged as the page builds it.
            tag = "0.1.0-postgres-sink" if container["name"] == "sink" else "0.1.0"
            assert container["image"] == f"contoso.azurecr.io/eventhubs-kafka-python:{tag}"
        assert rendered.of_kind("ScaledObject")


def test_the_container_apps_rule_is_the_charts_event_hubs_trigger() -> None:
    [rule_yaml] = [block for block in blocks("yaml") if "custom:" in block]
    [rule] = yaml.safe_load(rule_yaml)["rules"]
    rendered = kube.render(
        [kube.CHART / "ci" / "eventhubs-values.yaml"], {"autoscaling.enabled": True}
    )
    metadata, auth = kube.keda_trigger(rendered, {"eventhubs": {"connection-string": "key"}})
    assert rule["custom"]["type"] == "kafka"
    # Container Apps takes sasl and tls from secrets, not from the metadata.
    expected = {k: v for k, v in metadata.items() if k not in ("sasl", "tls")}
    expected["bootstrapServers"] = "<namespace>.servicebus.windows.net:9093"
    assert rule["custom"]["metadata"] == expected
    parameters = {entry["triggerParameter"] for entry in rule["custom"]["auth"]}
    assert parameters == {*auth, "sasl", "tls"}


def test_the_assignor_table_is_the_committed_bench_run() -> None:
    """The scale-down figures come from bench/results/strategies.json, as printed."""
    results = json.loads((kube.REPO / "bench" / "results" / "strategies.json").read_text())
    measured = results["cases"]["strategies"]
    rows = re.findall(r"^  \| `([a-z-]+)` \| (.+) \|$", PAGE.read_text(), re.MULTILINE)
    assert {name for name, _ in rows} == {"sticky", "cooperative-sticky", "range", "roundrobin"}
    for name, cells in rows:
        m = {key: value["median"] for key, value in measured[name].items() if key != "runs"}
        assert cells.split(" | ") == [
            f"{m['join_first_paused_s'] * 1000:.0f} ms",
            f"{m['join_s']:.2f} s",
            f"{m['sigterm_first_paused_s'] * 1000:.0f} ms",
            f"{m['sigterm_s']:.2f} s",
        ]
