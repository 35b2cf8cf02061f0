"""OpenTelemetry's own variables switch tracing on and shape it, as the specification says;
a bad value is one line at start and exit 2, never a silent default; spans the SDK drops
are counted; the stop waits for the last spans no longer than its bound."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence

import pytest
import structlog
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from common.config import ConfigError
from common.tracing import Tracing, TracingSettings, metrics, read_settings
from common.tracing._sdk import exporter_for, provider_for, resource_for
from tests.conftest import REPO


@pytest.mark.parametrize(
    ("env", "on", "exporters"),
    [
        ({}, False, ()),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "console"}, True, ("console",)),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, True, ("otlp", "console")),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318"}, True, ("otlp",)),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://j"}, False, ()),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False, ()),
        ({"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_SAMPLER": "nonsense"}, False, ()),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, True, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": ""}, False, ()),
    ],
)  # fmt: skip
def test_otel_variables_switch_tracing_on_and_off(
    env: dict[str, str], on: bool, exporters: tuple[str, ...]
) -> None:
    settings = read_settings(env, "consumer")
    assert (settings.enabled, settings.exporters) == (on, exporters)


def test_the_protocol_sampler_and_endpoint_are_read_as_the_specification_says() -> None:
    settings = read_settings(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "https://user:secret@collector:4317",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
            "OTEL_TRACES_SAMPLER": "ParentBased_TraceIdRatio",
            "OTEL_TRACES_SAMPLER_ARG": "0.01",
            "OTEL_EXPORTER_OTLP_HEADERS": "api-key=s3cr3t%2C,x-tenant=t1",
        },
        "producer",
    )
    assert settings.protocol == "grpc"  # the traces' own variable wins
    assert settings.endpoint == "https://collector:4317"  # no credentials shown
    assert (settings.sampler, settings.sampler_arg) == ("parentbased_traceidratio", 0.01)
    assert set(settings.secrets) == {"s3cr3t,", "t1", "secret"}  # for the redactor
    assert read_settings({"OTEL_TRACES_EXPORTER": "otlp"}, "p").protocol == "http/protobuf"
    ratio = read_settings({"OTEL_TRACES_SAMPLER": "traceidratio"}, "p")
    assert ratio.sampler_arg == 1.0  # the specification's default argument


BAD = {
    "OTEL_SDK_DISABLED": "yes",
    "OTEL_TRACES_EXPORTER": "zipkin",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
    "OTEL_TRACES_SAMPLER": "sometimes",
    "OTEL_BSP_MAX_QUEUE_SIZE": "0",
    "OTEL_BSP_SCHEDULE_DELAY": "5s",
    "OTEL_EXPORTER_OTLP_TIMEOUT": "-1",
    "OTEL_RESOURCE_ATTRIBUTES": "team",
    "OTEL_EXPORTER_OTLP_COMPRESSION": "brotli",
    "OTEL_SERVICE_NAME": " ",
}


@pytest.mark.parametrize(("name", "value"), BAD.items())
def test_each_bad_value_is_named_without_its_value(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        read_settings({"OTEL_TRACES_EXPORTER": "otlp", name: value}, "consumer")
    (line,) = raised.value.problems
    assert line.startswith(f"{name}: ")
    assert value.strip() == "" or value not in line.removeprefix(name)


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1%"}, "SAMPLER_ARG"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "SAMPLER_ARG"),
        ({"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4096"}, "must not exceed OTEL_BSP_MAX_QUEUE_SIZE"),
    ],
)
def test_values_that_cannot_work_together_are_refused(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        read_settings(env, "consumer")


def test_a_service_with_bad_otel_values_says_so_in_one_line_each_and_exits_2() -> None:
    env = {
        "PATH": os.environ["PATH"],
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
        "KAFKA_TOPIC": "t",
        "KAFKA_GROUP_ID": "g",
        "OTEL_TRACES_SAMPLER": "always-on",
        "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer abc,broken",
        "KAFKA_SESSION_TIMEOUT_MS": "nope",
    }
    done = subprocess.run(
        [sys.executable, "-m", "consumer"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    # Ours and OpenTelemetry's problems together, one line each, values never shown.
    assert lines[0] == "consumer: invalid configuration:"
    assert any(line.startswith("  KAFKA_SESSION_TIMEOUT_MS") for line in lines)
    assert (
        "  OTEL_TRACES_SAMPLER: must be one of always_on, always_off, traceidratio, "
        "parentbased_always_on, parentbased_always_off, parentbased_traceidratio" in lines
    )
    assert "  OTEL_EXPORTER_OTLP_HEADERS: must be key=value pairs separated by commas" in lines
    assert "Bearer" not in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({}, "consumer"),
        ({"OTEL_SERVICE_NAME": "orders-sink"}, "orders-sink"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=billing,team=pay"}, "billing"),
        (
            {"OTEL_SERVICE_NAME": "wins", "OTEL_RESOURCE_ATTRIBUTES": "service.name=loses"},
            "wins",
        ),
    ],
)
def test_the_service_name_is_ours_unless_otel_variables_name_it(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], name: str
) -> None:
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    resource = resource_for(TracingSettings(enabled=True, default_service_name="consumer"))
    assert resource.attributes["service.name"] == name
    if "team" in str(env):
        assert resource.attributes["team"] == "pay"


def test_an_installed_exporter_is_found_by_its_entry_point_name() -> None:
    """How Azure Monitor's exporter is named (``azure_monitor_opentelemetry_exporter``):
    shown here with the gRPC exporter's own entry point."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )

    settings = read_settings({"OTEL_TRACES_EXPORTER": "otlp_proto_grpc"}, "consumer")
    assert settings.exporters == ("otlp_proto_grpc",)
    assert isinstance(exporter_for("otlp_proto_grpc", settings.protocol), OTLPSpanExporter)
    with_key = read_settings(
        {"OTEL_TRACES_EXPORTER": "console", "APPLICATIONINSIGHTS_CONNECTION_STRING": "IK=k"}, "c"
    )
    assert with_key.secrets == ("IK=k",)  # for the redactor


def test_the_sampler_is_the_one_otel_traces_sampler_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    provider, processors = provider_for(TracingSettings(enabled=True), exporters=[])
    assert "TraceIdRatioBased{0.25}" in provider.sampler.get_description()
    assert provider.sampler.get_description().startswith("ParentBased")
    assert processors == []


class _Stuck(SpanExporter):
    """A backend that takes no span until told: a collector that hangs."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(30)
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.release.set()


@pytest.fixture
def stuck(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Tracing, _Stuck]]:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "4")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1")
    exporter = _Stuck()
    tracing = Tracing.start(TracingSettings(enabled=True), exporters=[exporter])
    yield tracing, exporter
    exporter.release.set()


def _dropped(reason: str) -> float:
    return metrics.SPANS_DROPPED.labels(reason)._value.get()


def test_spans_the_queue_cannot_hold_are_counted_and_the_stop_is_bounded(
    stuck: tuple[Tracing, _Stuck],
) -> None:
    tracing, exporter = stuck
    full_before, stopped_before = _dropped("queue_full"), _dropped("stopped")
    tracing.tracer.start_span("first").end()
    assert exporter.entered.wait(10)  # the batch thread is stuck in the export now
    with structlog.testing.capture_logs() as logs:
        for n in range(10):
            tracing.tracer.start_span(f"span {n}").end()
        tracing.stop(timeout_s=0.5)

    assert _dropped("queue_full") - full_before == 6  # 10 ended, 4 held by the queue
    assert _dropped("stopped") - stopped_before == 4  # still queued when the bound ran out
    (dropped,) = [e for e in logs if e["event"] == "tracing.spans_dropped"]
    assert (dropped["reason"], dropped["spans"]) == ("queue_full", 1)  # then collapsed
    (stopped,) = [e for e in logs if e["event"] == "tracing.stopped"]
    assert stopped["left"] == 4
    assert stopped["took_s"] < 5
