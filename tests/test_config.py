"""Bad settings end the process before any network I/O: exit 2, one message, no secret."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from common.config import (
    ConfigError,
    ConsumerPlan,
    ConsumerSettings,
    EventHubsKey,
    ProducerPlan,
    ProducerSettings,
    env_names,
    env_variables,
    load,
    resolve,
)
from common.eventhubs import ConnectionStringError, parse_connection_string
from tests.conftest import REPO

KEY = "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0xMjM0NTY="
PORTAL = (
    "Endpoint=sb://contoso.servicebus.windows.net/;"
    f"SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={KEY}"
)


def run(module: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env={"PATH": os.environ["PATH"], **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def plan(
    model: type[ConsumerSettings] | type[ProducerSettings],
) -> ConsumerPlan | ProducerPlan:
    """What a service does at start: read the settings, then resolve them."""
    return resolve(load(model))


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in env_variables(ConsumerSettings) + env_variables(ProducerSettings):
        monkeypatch.delenv(name, raising=False)


def test_nothing_set_names_every_missing_variable() -> None:
    result = run("consumer")

    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_TOPIC", "KAFKA_GROUP_ID"):
        assert name in result.stderr


def test_malformed_values_are_all_named_without_quoting_secrets() -> None:
    result = run(
        "producer",
        KAFKA_BOOTSTRAP_SERVERS="kafka",
        KAFKA_TOPIC="t",
        METRICS_PORT="99999",
        PRODUCER_RATE="fast",
        EVENTHUBS_CONNECTION_STRING=f"SharedAccessKey={KEY}",
    )

    assert result.returncode == 2
    for name in (
        "KAFKA_BOOTSTRAP_SERVERS",
        "METRICS_PORT",
        "PRODUCER_RATE",
        "EVENTHUBS_CONNECTION_STRING",
    ):
        assert name in result.stderr
    assert KEY not in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_every_variable() -> None:
    result = run("consumer", "--help")

    assert result.returncode == 0
    for name in env_variables(ConsumerSettings):
        assert name in result.stdout


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "env:9092")
    monkeypatch.setenv("KAFKA_TOPIC", "from-env")

    settings = load(ProducerSettings, {"topic": "from-flag"})

    assert settings.topic == "from-flag"
    assert settings.bootstrap_servers == "env:9092"


def test_connection_string_alone_configures_eventhubs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTHUBS_CONNECTION_STRING", f'  "{PORTAL};EntityPath=orders" ')
    monkeypatch.setenv("EVENTHUBS_CONSUMER_GROUPID", "g")

    consumer = plan(ConsumerSettings)

    assert consumer.connection.bootstrap_servers == ("contoso.servicebus.windows.net:9093",)
    assert consumer.topic == "orders"
    assert isinstance(consumer.connection.security, EventHubsKey)
    assert consumer.kafka["security_protocol"] == "SASL_SSL"
    assert consumer.kafka["sasl_mechanism"] == "PLAIN"
    assert consumer.kafka["sasl_plain_username"] == "$ConnectionString"
    assert consumer.kafka["sasl_plain_password"] == f"{PORTAL};EntityPath=orders"
    assert KEY not in repr(consumer)


def test_walkthrough_broker_and_topic_names_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTHUBS_CONNECTION_STRING", PORTAL)
    monkeypatch.setenv("EVENTHUBS_BROKER", "contoso.servicebus.windows.net:9093")
    monkeypatch.setenv("EVENTHUBS_TOPIC", "testhub")

    settings = load(ProducerSettings)

    assert (settings.bootstrap_servers, settings.topic) == (
        "contoso.servicebus.windows.net:9093",
        "testhub",
    )


def test_eventhubs_refuses_a_session_timeout_out_of_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EVENTHUBS_CONNECTION_STRING", PORTAL + ";EntityPath=hub")
    monkeypatch.setenv("KAFKA_GROUP_ID", "g")
    monkeypatch.setenv("KAFKA_SESSION_TIMEOUT_MS", "1000")

    with pytest.raises(ConfigError, match="outside what Event Hubs accepts"):
        plan(ConsumerSettings)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", "needs SASL_SSL"),
        ("KAFKA_COMPRESSION_TYPE", "lz4", "not supported by Event Hubs"),
        ("KAFKA_SASL_PASSWORD", "x", "set only one"),
    ],
)
def test_settings_eventhubs_refuses(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv("EVENTHUBS_CONNECTION_STRING", PORTAL)
    monkeypatch.setenv("KAFKA_TOPIC", "t")
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigError) as error:
        plan(ProducerSettings)

    assert expected in str(error.value)
    assert KEY not in str(error.value)


@pytest.mark.parametrize(
    "text",
    [
        PORTAL,
        PORTAL + ";",
        f'"{PORTAL}"',
        f"  '{PORTAL}'\n",
        PORTAL.replace("Endpoint=", "endpoint = ").replace("windows.net/", "windows.net"),
    ],
)
def test_connection_strings_as_pasted(text: str) -> None:
    parsed = parse_connection_string(text)

    assert parsed.host == "contoso.servicebus.windows.net"
    assert parsed.bootstrap_servers == "contoso.servicebus.windows.net:9093"
    assert KEY not in repr(parsed)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "empty"),
        (f"SharedAccessKeyName=x;SharedAccessKey={KEY}", "no Endpoint"),
        (PORTAL.replace("sb://", "https://"), "not sb://"),
        (PORTAL.split(";SharedAccessKey=", maxsplit=1)[0], "no SharedAccessKey"),
        (PORTAL + ";Stray", "without '='"),
        (
            "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessSignature="
            f"SharedAccessSignature sr=contoso&sig={KEY}&se=1795660000&skn=send",
            "does not accept",
        ),
    ],
)
def test_broken_connection_strings(text: str, complaint: str) -> None:
    with pytest.raises(ConnectionStringError) as error:
        parse_connection_string(text)

    assert complaint in str(error.value)
    assert KEY not in str(error.value)


# Bad input, variable by variable: each ends in one ConfigError naming it.
MINIMAL = {"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092", "KAFKA_TOPIC": "t", "KAFKA_GROUP_ID": "g"}
MALFORMED = {
    "KAFKA_BOOTSTRAP_SERVERS": ["kafka", "kafka:99999", " , ", "kafka:port", "http://kafka:9092"],
    "EVENTHUBS_BROKER": ["contoso.servicebus.windows.net", "contoso:0"],
    "KAFKA_TOPIC": ["my topic", "orders/eu", ".", "t" * 250, "   "],
    "EVENTHUBS_TOPIC": ["event hub"],
    "EVENTHUBS_CONNECTION_STRING": [
        f"SharedAccessKeyName=x;SharedAccessKey={KEY}",
        f"Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKey={KEY}",
        f"Endpoint=https://contoso.servicebus.windows.net/;SharedAccessKeyName=x;SharedAccessKey={KEY}",
        f"{KEY}",
        f"Endpoint=sb://contoso.servicebus.windows.net/;{KEY}",
    ],
    "KAFKA_SECURITY_PROTOCOL": ["TLS", "SASL"],
    "KAFKA_SASL_MECHANISM": ["GSSAPI", "SCRAM-SHA-1"],
    "EVENTHUBS_NAMESPACE": ["contoso.example.com", "my namespace", "ns", "-contoso"],
    "KAFKA_SSL_CAFILE": ["/nonexistent/ca.pem", "/"],
    "KAFKA_SSL_VERIFY": ["maybe", "2"],
    "METRICS_PORT": ["http", "-1", "65536", "8000.5"],
    "LOG_LEVEL": ["LOUD", "10"],
    "LOG_FORMAT": ["xml"],
    "LOG_MESSAGE_EVERY": ["-1", "every"],
    "PRODUCER_RATE": ["fast", "-5", "nan"],
    "PRODUCER_MESSAGE_SIZE": ["0", "2000000", "1KB"],
    "KAFKA_COMPRESSION_TYPE": ["brotli"],
    "EVENTHUBS_TIER": ["basic", "Premium tier"],
    "KAFKA_LINGER_MS": ["-1", "5ms"],
    "KAFKA_DELIVERY_TIMEOUT_MS": ["100", "30000", "2m"],
    "KAFKA_REQUEST_TIMEOUT_MS": ["0", "200000"],
    "KAFKA_GROUP_ID": ["   "],
    "EVENTHUBS_CONSUMER_GROUPID": ["\t"],
    "KAFKA_AUTO_OFFSET_RESET": ["smallest", "beginning"],
    "KAFKA_PARTITION_ASSIGNMENT_STRATEGY": ["sticky-cooperative", "RangeAssignor"],
    "KAFKA_SESSION_TIMEOUT_MS": ["30s", "999"],
    "KAFKA_HEARTBEAT_INTERVAL_MS": ["0", "50", "1s", "30000"],
    "KAFKA_MAX_POLL_RECORDS": ["0", "all"],
    "KAFKA_COMMIT_INTERVAL_MS": ["-1", "100ms"],
    "KAFKA_MAX_POLL_INTERVAL_MS": ["500", "5m"],
    "CONSUMER_SIMULATED_WORK_MS": ["-1", "slow"],
    "CONSUMER_HANDLER": [
        "handle",
        "my handlers:handle",
        "tests.no_such_module:handle",
        "tests.handlers:no_such_name",
        "tests.handlers:NOT_CALLABLE",
        "tests.handlers:two_arguments",
        "tests.handlers_broken:handle",
    ],
    "PRODUCER_SOURCE": [
        "stdin",
        "my events:generate",
        "tests.no_such_module:orders",
        "tests.sources:no_such_name",
        "tests.sources:NOT_ITERABLE",
        "tests.sources:takes_an_argument",
        "tests.handlers_broken:handle",
    ],
    "CONSUMER_RETRY_ATTEMPTS": ["0", "three"],
    "CONSUMER_RETRY_BACKOFF_MS": ["0", "1s"],
    "CONSUMER_RETRY_BACKOFF_MAX_MS": ["0", "1m", "10"],
    "CONSUMER_DEAD_LETTER_TOPIC": ["dead letters", "t"],
    "CONSUMER_OUTPUT_TOPIC": ["out put", "t"],
    "CONSUMER_PROCESSING_GUARANTEE": ["exactly-once", "EOS", "at least once"],
    "CONSUMER_ORDERING": ["sideways", "KEY ORDER", "per-key"],
    "CONSUMER_MAX_IN_FLIGHT": ["0", "-1", "many"],
    "CONSUMER_DRAIN_TIMEOUT_MS": ["-1", "8s"],
    "CONSUMER_BATCH_MAX_RECORDS": ["0", "lots"],
    "CONSUMER_BATCH_MAX_WAIT_MS": ["-5", "1s"],
}
#: Any text is a valid value for these (Kafka accepts any group or client id,
#: any SASL user and password); a METRICS_HOST that cannot be bound is refused
#: at startup, in test_health_endpoints.
FREE_FORM = {
    "KAFKA_CLIENT_ID",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "METRICS_HOST",
}
ALL_VARIABLES = set(env_variables(ConsumerSettings)) | set(env_variables(ProducerSettings))


def test_every_variable_has_its_bad_values_tested() -> None:
    assert set(MALFORMED) | FREE_FORM == ALL_VARIABLES


def _model_reading(variable: str) -> type[ConsumerSettings] | type[ProducerSettings]:
    return ConsumerSettings if variable in env_variables(ConsumerSettings) else ProducerSettings


@pytest.mark.faults
@pytest.mark.parametrize(
    ("variable", "value"),
    [(variable, value) for variable, values in MALFORMED.items() for value in values],
)
def test_each_malformed_value_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    for name, default in MINIMAL.items():
        monkeypatch.setenv(name, default)
    if variable.startswith("EVENTHUBS_") and variable != "EVENTHUBS_CONNECTION_STRING":
        # The walkthrough's names count when ours are unset.
        for ours in ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_TOPIC", "KAFKA_GROUP_ID"):
            monkeypatch.delenv(ours)
        monkeypatch.setenv("EVENTHUBS_CONNECTION_STRING", PORTAL + ";EntityPath=hub")
        monkeypatch.setenv("EVENTHUBS_CONSUMER_GROUPID", "g")
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigError) as error:
        plan(_model_reading(variable))

    message = str(error.value)
    assert variable in message
    assert KEY not in message
    assert "Traceback" not in message


@pytest.mark.faults
@pytest.mark.parametrize("variable", sorted(ALL_VARIABLES))
def test_each_blank_variable_counts_as_unset(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    for name, default in MINIMAL.items():
        monkeypatch.setenv(name, default)
    monkeypatch.setenv(variable, "")
    model = _model_reading(variable)

    field, names = next((f, n) for f, n in env_names(model).items() if variable in n)
    if variable in MINIMAL:
        with pytest.raises(ConfigError, match=f"{variable}.* is missing"):
            plan(model)
    elif names[0] in MINIMAL:
        # A blank alias leaves the value of the variable that is set.
        assert getattr(load(model), field) == MINIMAL[names[0]]
    else:
        assert getattr(load(model), field) == model.model_fields[field].get_default()


@pytest.mark.faults
@pytest.mark.parametrize(
    ("variable", "pasted", "expected"),
    [
        ("KAFKA_TOPIC", " orders\n", "orders"),
        ("KAFKA_GROUP_ID", "\tgroup-1 ", "group-1"),
        ("KAFKA_SESSION_TIMEOUT_MS", " 45000 ", 45_000),
        ("KAFKA_SECURITY_PROTOCOL", " plaintext ", "PLAINTEXT"),
        ("KAFKA_BOOTSTRAP_SERVERS", " a:9092 , b:9092 ,", "a:9092,b:9092"),
    ],
)
def test_values_as_pasted_are_cleaned(
    monkeypatch: pytest.MonkeyPatch, variable: str, pasted: str, expected: object
) -> None:
    for name, default in MINIMAL.items():
        monkeypatch.setenv(name, default)
    monkeypatch.setenv(variable, pasted)

    settings = load(ConsumerSettings)

    field = next(f for f, names in env_names(ConsumerSettings).items() if variable in names)
    assert getattr(settings, field) == expected
