"""What `.env` sets reaches the containers: every variable of `.env.example`, and its
Event Hubs block switches the services to SASL_SSL with the walkthrough's variables."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

import pytest

from common.config import ConsumerSettings, ProducerSettings, env_variables
from common.entra import AZURE_VARIABLES
from common.tracing import COMPOSE_VARIABLES
from tests.compose.project import REPO, Project

pytestmark = pytest.mark.compose

EXAMPLE = (REPO / ".env.example").read_text()
#: Set by compose itself: Prometheus scrapes each replica on 8000.
FIXED = {"METRICS_PORT": "8000"}
#: Read by the compose file itself, where a probe is no value: where ports are published.
REAL = {"PUBLISH_ADDRESS": "127.0.0.1"}
KEY = base64.b64encode(b"k" * 32).decode()


def _readers(variable: str) -> set[str]:
    readers = set()
    both = (*AZURE_VARIABLES, *COMPOSE_VARIABLES)
    if variable in env_variables(ProducerSettings) or variable in both:
        readers.add("producer")
    if variable in env_variables(ConsumerSettings) or variable in both:
        readers.add("consumer")
    return readers


def test_every_variable_of_env_example_reaches_its_containers(
    project: Callable[..., Project],
) -> None:
    variables = re.findall(r"^#? ?([A-Z][A-Z_]+)=", EXAMPLE, re.MULTILINE)
    # A value of its own for each, so that a mix-up shows too.
    values = {name: REAL.get(name, f"probe-{name.lower()}") for name in variables}
    compose = project("".join(f"{name}={value}\n" for name, value in values.items()))
    compose.compose("create", "producer", "consumer")

    missing = []
    for service in ("producer", "consumer"):
        (container,) = compose.containers(service, all_states=True)
        env = compose.environment(container)
        for name in variables:
            if service in _readers(name):
                expected = FIXED.get(name, values[name])
                if env.get(name) != expected:
                    missing.append(f"{service}: {name}={env.get(name)!r}")
    assert not missing, f"set in .env, not what the container gets: {missing}"


def _eventhubs_env_file() -> str:
    """`.env.example` with its Event Hubs block switched on, as its comments say to."""
    switched = re.compile(
        r"# (EVENTHUBS_CONNECTION_STRING|EVENTHUBS_TOPIC|EVENTHUBS_CONSUMER_GROUPID)="
    )
    emptied = re.compile(r"(KAFKA_BOOTSTRAP_SERVERS|KAFKA_TOPIC|KAFKA_GROUP_ID)=")
    lines = []
    for line in EXAMPLE.splitlines():
        edited = line
        if switched.match(line):
            edited = line[2:].split("   #")[0].strip()
        elif emptied.match(line):
            edited = line.split("=")[0] + "="
        lines.append(edited.replace("<namespace>", "contoso").replace("<key>", KEY))
    return "\n".join(lines) + "\n"


def test_the_eventhubs_block_of_env_example_switches_to_sasl_ssl(
    project: Callable[..., Project],
) -> None:
    compose = project(_eventhubs_env_file())
    plan = compose.compose(
        "run", "--rm", "--no-deps", "--entrypoint", "python", "producer", "-c",
        "from common.config import ProducerSettings, load, resolve\n"
        "plan = resolve(load(ProducerSettings))\n"
        "print(plan.kafka['security_protocol'], plan.kafka['sasl_mechanism'],"
        " plan.kafka['sasl_plain_username'], ','.join(plan.kafka['bootstrap_servers']),"
        " plan.topic, plan.kafka['ssl_context'].verify_mode.name)",
    )  # fmt: skip

    assert plan.split() == [
        "SASL_SSL",
        "PLAIN",
        "$ConnectionString",
        "contoso.servicebus.windows.net:9093",
        "testhub",
        "CERT_REQUIRED",
    ]
