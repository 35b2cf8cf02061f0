"""The Dockerfile, docker-compose.yml, Prometheus and Grafana files pass the real
validators, and every name they use is one the services really have."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from common.config import ConsumerSettings, ProducerSettings, env_variables
from common.entra import AZURE_VARIABLES
from common.tracing import COMPOSE_VARIABLES
from localkafka import KAFKA_VERSION
from tests.conftest import REPO, our_metric_names

pytestmark = pytest.mark.tools

BIN = Path(sys.executable).parent
#: What the services read: their settings, what azure-identity reads for them, and
#: OpenTelemetry's variables that compose passes on.
VARIABLES = (
    set(env_variables(ProducerSettings))
    | set(env_variables(ConsumerSettings))
    | set(AZURE_VARIABLES)
    | set(COMPOSE_VARIABLES)
)
#: Compose's own, read from .env by compose itself, and our compose files' own: where
#: ports are published, and the Docker secret's file (docker-compose.secrets.yml).
COMPOSE_OWN = {
    "COMPOSE_PROFILES",
    "PUBLISH_ADDRESS",
    "EVENTHUBS_CONNECTION_STRING_SECRET",
    "SINK_MODE",
}


def tool(name: str) -> str:
    found = shutil.which(name, path=f"{BIN}:{os.environ.get('PATH', '')}")
    if found is None:
        pytest.fail(f"{name} is not installed; `make test` installs it", pytrace=False)
    return found


def check(*argv: str) -> str:
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def compose(env_file: Path, *options: str) -> dict:
    text = check(
        tool("docker-compose"),
        "--env-file",
        str(env_file),
        "-f",
        "docker-compose.yml",
        *options,
        "config",
        "--format",
        "json",
    )
    return json.loads(text)


@pytest.fixture
def no_env_file(tmp_path: Path) -> Path:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    return empty


def test_compose_is_valid_without_and_with_env_example(no_env_file: Path) -> None:
    bare = compose(no_env_file)
    example = compose(REPO / ".env.example")

    for config in (bare, example):
        services = config["services"]
        assert {"kafka", "topic", "producer", "consumer", "prometheus", "grafana"} <= set(services)
        assert services["producer"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:19092"
        assert services["consumer"]["environment"]["KAFKA_GROUP_ID"] == "testgroup"


def test_consumer_can_scale(no_env_file: Path) -> None:
    consumer = compose(no_env_file)["services"]["consumer"]

    assert "container_name" not in consumer
    # A container port with no fixed host port: Docker picks one per replica.
    assert all(not port.get("published") for port in consumer.get("ports", []))


def test_every_port_is_published_on_loopback_unless_publish_address_says(
    no_env_file: Path, tmp_path: Path
) -> None:
    def addresses(env_file: Path) -> set[str]:
        services = compose(env_file, "--profile", "postgres", "--profile", "tracing")["services"]
        return {port["host_ip"] for s in services.values() for port in s.get("ports", [])}

    opened = tmp_path / "opened.env"
    opened.write_text("PUBLISH_ADDRESS=0.0.0.0\n")
    assert addresses(no_env_file) == {"127.0.0.1"}
    assert addresses(opened) == {"0.0.0.0"}


def test_kafka_image_matches_localkafka(no_env_file: Path) -> None:
    services = compose(no_env_file)["services"]

    assert services["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"
    assert (
        f"<kafka.version>{KAFKA_VERSION}</kafka.version>"
        in (REPO / "localkafka" / "pom.xml").read_text()
    )


def test_eventhubs_env_file_reaches_the_services(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        'EVENTHUBS_CONNECTION_STRING="Endpoint=sb://ns.servicebus.windows.net/;'
        'SharedAccessKeyName=k;SharedAccessKey=s"\n'
        "EVENTHUBS_TOPIC=hub\nEVENTHUBS_CONSUMER_GROUPID=g\n"
        "KAFKA_BOOTSTRAP_SERVERS=\nKAFKA_TOPIC=\nKAFKA_GROUP_ID=\n"
    )
    env = compose(env_file)["services"]["consumer"]["environment"]

    # Empty KAFKA_ values are "not set" to the services, so Event Hubs decides.
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == env["KAFKA_TOPIC"] == env["KAFKA_GROUP_ID"] == ""
    assert env["EVENTHUBS_CONNECTION_STRING"].startswith("Endpoint=sb://ns.")
    assert env["EVENTHUBS_CONSUMER_GROUPID"] == "g"


def test_compose_and_env_example_set_only_variables_the_services_read(
    no_env_file: Path,
) -> None:
    services = compose(no_env_file)["services"]
    for name in ("producer", "consumer"):
        unknown = set(services[name]["environment"]) - VARIABLES
        assert not unknown, (name, unknown)
    in_example = set(re.findall(r"^#? ?([A-Z][A-Z_]+)=", (REPO / ".env.example").read_text(), re.M))
    assert in_example == VARIABLES | COMPOSE_OWN


def test_azure_setup_script_passes_shellcheck() -> None:
    check(tool("shellcheck"), "deploy/azure/setup.sh")
    # Without a mode it explains itself and touches nothing: no az on the PATH is needed.
    usage = subprocess.run(
        ["/bin/bash", "deploy/azure/setup.sh"],
        cwd=REPO, capture_output=True, text=True, check=False, env={"PATH": ""},
    )  # fmt: skip
    assert usage.returncode == 2
    assert "keys|entra" in usage.stderr


def test_dockerfile_passes_hadolint() -> None:
    check(tool("hadolint"), "Dockerfile")


def test_prometheus_config_and_rules_pass_promtool() -> None:
    check(tool("promtool"), "check", "config", "prometheus/prometheus.yml")
    check(tool("promtool"), "check", "rules", "prometheus/alerts.yml")


def test_alerts_fire_when_they_should() -> None:
    # Synthetic series: produced-but-not-consumed, no consumer, growing lag,
    # a replica down; and a healthy pipeline that must raise nothing.
    check(tool("promtool"), "test", "rules", "prometheus/alerts.test.yml")


def _queried_metrics(expressions: list[str]) -> set[str]:
    found = set()
    for expr in expressions:
        # Label names live in by (...) clauses and {...} matchers; metric names do not.
        bare = re.sub(r"\{[^}]*\}", "", re.sub(r"\b(by|without)\s*\([^)]*\)", "", expr))
        for name in re.findall(r"\b((?:messaging|consumer|producer)_[a-z_]+)\b", bare):
            found.add(re.sub(r"_(bucket|sum|count)$", "", name))
    return found


def test_dashboard_and_alerts_query_only_exported_metrics() -> None:
    dashboard = json.loads((REPO / "grafana/dashboards/eventhubs-kafka.json").read_text())
    panel_exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    rules = yaml.safe_load((REPO / "prometheus/alerts.yml").read_text())
    rule_exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]

    queried = _queried_metrics(panel_exprs + rule_exprs)
    histograms = {n.removesuffix("_bucket") for n in queried}
    assert queried
    assert histograms - our_metric_names() == set()
    for needed in ("consumer_partition_owned", "consumer_lag_records", "consumer_rebalances_total"):
        assert needed in queried


def test_dockerfile_builds_without_a_registry() -> None:
    """No ``# syntax=`` line: BuildKit fetches that frontend image before it builds,
    so with no registry at hand every build fails at once; nothing here needs it."""
    dockerfile = (REPO / "Dockerfile").read_text()
    assert not re.search(r"^#\s*syntax\s*=", dockerfile, re.MULTILINE | re.IGNORECASE)


@pytest.mark.parametrize(("mode", "handler"), [("", "bulk"), ("upsert", "upsert")])
def test_the_postgres_profile_runs_the_sink_in_the_mode_asked(
    tmp_path: Path, mode: str, handler: str
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"SINK_MODE={mode}\n" if mode else "")
    services = compose(env_file, "--profile", "postgres")["services"]
    assert services["sink"]["environment"]["CONSUMER_HANDLER"] == (
        f"examples.postgres_sink:{handler}"
    )
