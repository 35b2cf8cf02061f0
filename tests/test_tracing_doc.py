"""docs/tracing.md says what the code does: every OTEL_* variable checked is in its table,
.env.example's tracing lines are values the services take, and its cost table and
docs/performance.md's span rows are bench/results/tracing.json as printed."""

from __future__ import annotations

import json
import re

from bench.report import _consumer_profile, tracing_table
from common.tracing import _settings, read_settings
from tests.conftest import REPO

PAGE = (REPO / "docs" / "tracing.md").read_text()
RESULTS = json.loads((REPO / "bench" / "results" / "tracing.json").read_text())


def test_every_variable_the_services_check_is_in_the_table() -> None:
    checked = {
        *_settings.COMPOSE_VARIABLES,
        *_settings._COUNTS,
        *_settings._TIMEOUTS[:1],
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_SERVICE_NAME",
    }
    table = PAGE[PAGE.index("| variable |") : PAGE.index("The SDK and its exporters")]
    assert sorted(v for v in checked if f"`{v}`" not in table) == []


def test_env_example_tracing_lines_are_taken_as_they_stand() -> None:
    example = (REPO / ".env.example").read_text()
    section = example[example.index("# --- Traces") :]
    values = dict(re.findall(r"^# (OTEL_[A-Z_]+)=(\S+)", section, re.M))
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in values
    values["OTEL_EXPORTER_OTLP_HEADERS"] = "api-key=k"  # its line shows a placeholder
    settings = read_settings(values, "consumer")
    assert settings.enabled
    assert settings.endpoint == "http://jaeger:4318"


def test_the_cost_table_is_the_last_bench_run() -> None:
    section = PAGE[PAGE.index("<!-- tracing:costs -->") : PAGE.index("<!-- /tracing:costs -->")]
    assert "\n".join(tracing_table(RESULTS["cases"]["tracing"])) in section


def test_performance_md_shows_the_spans_cost_per_record() -> None:
    latest = json.loads((REPO / "bench" / "results" / "latest.json").read_text())["cases"]
    table = _consumer_profile(
        latest["consumer"], latest["hotpath"], RESULTS["cases"]["tracing"]["consumer"]
    )
    page = (REPO / "docs" / "performance.md").read_text()
    assert "\n".join(table) in page
    for mode, figure in (("on_100", "95.6"), ("on_1", "9.9")):
        measured = RESULTS["cases"]["tracing"]["consumer"][mode]["us_per_record_over_off"]
        assert f"{measured:.1f}" == figure
        assert figure in page
