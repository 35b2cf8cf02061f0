"""`make bench` works: every case runs and writes its figures, and the tools' output is read right.

The figures themselves are never judged here: benchmarks report, they do not
fail CI for being slow. A smoke run at a twentieth of the real length checks
that the harness still starts its broker, drives all three contenders and
writes the JSON docs/performance.md's tables come from, every contender included.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import confluent_loops, java, report
from bench.runs import rate_from_samples
from bench.stats import alternate, percentile, summary
from tests.conftest import REPO

# Starts brokers of its own, without the kafka fixture.
pytestmark = pytest.mark.started

#: The last lines of ProducerPerformance and ConsumerPerformance from Kafka 4.1.1.
PRODUCER_OUTPUT = """\
1000000 records sent, 232774.7 records/sec (26.64 MB/sec), 138.26 ms avg latency, \
547.00 ms max latency, 83 ms 50th, 448 ms 95th, 468 ms 99th, 538 ms 99.9th.
"""
CONSUMER_OUTPUT = """\
start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, \
rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
2026-11-24 21:23:31:594, 2026-11-24 21:23:32:391, 28.8326, 36.1765, 200220, 251217.0640, \
326, 471, 61.2158, 425095.5414
"""


def test_java_tool_summaries_are_read() -> None:
    assert java.parse_producer_output("warming up\n" + PRODUCER_OUTPUT) == {
        "messages": 1_000_000,
        "messages_per_s": 232774.7,
        "avg_latency_ms": 138.26,
    }
    # The rate once the group is joined, like the other contenders' clocks.
    assert java.parse_consumer_output(CONSUMER_OUTPUT) == 425095.5414
    with pytest.raises(java.JavaToolError):
        java.parse_producer_output("Exception in thread main\n")
    with pytest.raises(java.JavaToolError):
        java.parse_consumer_output("start.time, end.time\n")


def test_java_gets_our_producer_settings() -> None:
    args = {
        "bootstrap_servers": ["127.0.0.1:1", "127.0.0.1:2"],
        "acks": "all",
        "enable_idempotence": True,
        "compression_type": None,
        "linger_ms": 5,
        "client_id": "not-a-throughput-setting",
    }
    assert java.producer_properties(args) == [
        "bootstrap.servers=127.0.0.1:1,127.0.0.1:2",
        "acks=all",
        "enable.idempotence=true",
        "linger.ms=5",
        "compression.type=none",
    ]


def test_confluent_kafka_gets_our_settings() -> None:
    producer = {
        "bootstrap_servers": ["127.0.0.1:1", "127.0.0.1:2"],
        "acks": "all",
        "enable_idempotence": True,
        "compression_type": None,
        "linger_ms": 5,
        "max_block_ms": 3000,  # kafka-python's own: librdkafka has no such setting
    }
    assert confluent_loops.properties(producer) == {
        "bootstrap.servers": "127.0.0.1:1,127.0.0.1:2",
        "acks": "all",
        "enable.idempotence": True,
        "compression.type": "none",
        "linger.ms": 5,
    }


def test_statistics() -> None:
    assert [c for _, c in alternate("AB", 3)] == list("ABABAB")
    assert summary([10.0, 30.0, 20.0]) == {
        "median": 20.0,
        "min": 10.0,
        "max": 30.0,
        "spread": 1.0,
        "n": 3,
    }
    samples = sorted(float(x) for x in range(1, 101))
    assert (percentile(samples, 0.5), percentile(samples, 0.99)) == (50.0, 99.0)
    assert percentile([7.0], 0.99) == 7.0


def test_rate_from_sampled_log_lines() -> None:
    # One line per 1000 messages, a second apart: 1000 messages/s after the first two lines.
    lines = [{"timestamp": f"2026-01-01T00:00:{s:02d}Z"} for s in range(6)]
    assert rate_from_samples(lines, 1000, skip=2) == (3000, 3.0)


@pytest.mark.localkafka
def test_bench_smoke_run_writes_every_case(tmp_path: Path) -> None:
    output = tmp_path / "latest.json"
    cases = ["producer", "consumer", "latency", "memory", "hotpath"]
    run = subprocess.run(
        [sys.executable, "-m", "bench", *cases, "--rounds=1", "--scale=0.05", f"--output={output}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(output.read_text())

    assert {"date", "cpu", "cores", "kafka_python", "kafka_broker", "java"} <= set(
        results["machine"]
    )
    assert list(results["cases"]) == cases
    for size in ("100B", "1024B"):
        figures = results["cases"]["producer"][size]
        for contender in ("java", "bare", "ours", "aiokafka", "confluent"):
            assert figures[contender]["messages_per_s"]["median"] > 0
            # Read back from the broker's log: at least one record in each batch.
            assert figures[contender]["records_per_batch"]["median"] >= 1
        for contender in ("bare", "ours", "aiokafka", "confluent"):
            assert figures[contender]["cpu_us_per_message"]["median"] > 0
        assert figures["ours_vs_bare"] > 0
        assert figures["ours_cpu_vs_bare"] > 0
        assert figures["ours_vs_java"] > 0
    consumer = results["cases"]["consumer"]
    for contender in ("java", "bare", "ours", "aiokafka", "confluent", "confluent_10ms"):
        assert consumer[contender]["messages_per_s"]["median"] > 0
    latency = results["cases"]["latency"]
    assert 0 < latency["p50_ms"]["median"] <= latency["p99_ms"]["median"]
    assert results["cases"]["memory"]["consumer_load_peak_mib"] > 0
    hotpath = results["cases"]["hotpath"]
    assert hotpath["records"] >= 1_000
    for figure in ("encode_100B_us", "encode_1024B_us", "decode_us", "consumer_batch_us"):
        assert hotpath[figure]["median"] > 0
    assert hotpath["commit_cpu_ms"]["n"] == 1
    # The tables docs/performance.md shows.
    assert "| **ours** |" in run.stdout
    assert "Where a consumed message's time goes" in run.stdout
    assert "End-to-end latency" in run.stdout


def test_the_performance_page_shows_the_figures_of_the_latest_run() -> None:
    results = json.loads((REPO / "bench" / "results" / "latest.json").read_text())
    page = (REPO / "docs" / "performance.md").read_text()
    assert report.with_tables(page, report.markdown(results)) == page


def test_tables_replace_what_stood_between_the_markers() -> None:
    start, end = report.README_MARKERS
    readme = f"# Title\n{start}\nold\n{end}\nafter\n"
    assert report.with_tables(readme, "new") == f"# Title\n{start}\nnew\n{end}\nafter\n"
    with pytest.raises(ValueError, match="bench:tables"):
        report.with_tables("# no markers\n", "new")


def test_bench_tracing_smoke_run_measures_each_mode(tmp_path: Path) -> None:
    output = tmp_path / "tracing.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "tracing", "--rounds=1", "--scale=0.02",
         f"--output={output}"],
        cwd=REPO, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    tracing = json.loads(output.read_text())["cases"]["tracing"]
    for service in ("producer", "consumer"):
        assert tracing[service]["off"]["exported"]["median"] == 0
        assert tracing[service]["on_100"]["exported"]["median"] > 0
        for mode in ("off", "on_100", "on_1"):
            assert tracing[service][mode]["messages_per_s"]["median"] > 0
    assert "| consumer | on, 100 % sampled |" in run.stdout


def test_bench_sink_smoke_run_measures_each_writer(tmp_path: Path) -> None:
    output = tmp_path / "sink.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "sink", "--rounds=1", "--scale=0.05",
         f"--output={output}"],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    sink = json.loads(output.read_text())["cases"]["sink"]
    for writer in ("handler", "bulk", "upsert", "copy", "kafka_connect"):
        assert sink[writer]["rows_per_s"]["median"] > 0
    assert sink["copy"]["vs_copy"] == 1.0
    assert "| `examples.postgres_sink:bulk`, a batch at a time |" in run.stdout
    assert "with Debezium's JDBC sink 3.5.0, its best `batch.size` |" in run.stdout


def test_bench_transform_smoke_run_measures_each_guarantee(tmp_path: Path) -> None:
    output = tmp_path / "transform.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "transform", "--rounds=1", "--scale=0.05",
         f"--output={output}"],
        cwd=REPO, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    transform = json.loads(output.read_text())["cases"]["transform"]
    for contender in ("default_handler", "at_least_once", "exactly_once"):
        assert transform[contender]["records_per_s"]["median"] > 0
    assert transform["at_least_once"]["vs_at_least_once"] == 1.0
    assert "| the same, exactly once (a transaction per commit) |" in run.stdout
