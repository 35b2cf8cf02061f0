"""The machine a run came from, and its figures as Markdown tables and as JSON."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import confluent_kafka

from localkafka.jars import KAFKA_VERSION, java_executable


def machine() -> dict[str, Any]:
    """What the figures depend on: CPU, memory, and the versions of everything measured."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as info:
        total_kib = int(info.readline().split()[1])
    java = subprocess.run(
        [java_executable(), "-version"], capture_output=True, text=True, check=False
    )
    found = re.search(r'version "([^"]+)"', java.stderr)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(total_kib / 1024**2, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "java": found.group(1) if found else "unknown",
        "kafka_broker": KAFKA_VERSION,
        "kafka_python": metadata.version("kafka-python"),
        "crc32c": metadata.version("crc32c"),
        "aiokafka": metadata.version("aiokafka"),
        "confluent_kafka": metadata.version("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
    }


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def _rate(figures: dict[str, Any]) -> str:
    msgs, mb = figures["messages_per_s"], figures["mb_per_s"]
    return f"{msgs['median']:,.0f} ({mb['median']:.1f} MB/s, ±{msgs['spread'] * 50:.0f}%)"


def _labels(m: dict[str, Any]) -> dict[str, str]:
    """Each throughput contender's name in the tables, with its version."""
    return {
        "java": f"Java client {m['kafka_broker']}",
        "bare": f"bare kafka-python {m['kafka_python']}",
        "ours": "**ours**",
        "aiokafka": f"aiokafka {m['aiokafka']}",
        "confluent": f"confluent-kafka {m['confluent_kafka']} (librdkafka {m['librdkafka']})",
        "confluent_10ms": "confluent-kafka, `fetch.queue.backoff.ms=10`",
    }


def _contenders(case: dict[str, Any]) -> list[str]:
    return [c for c, figures in case.items() if isinstance(figures, dict) and "runs" in figures]


def _vs_bare(case: dict[str, Any], contender: str) -> str:
    return "1.00" if contender == "bare" else f"{case[f'{contender}_vs_bare']:.2f}"


def _cpu(figures: dict[str, Any]) -> str:
    """CPU of all the client's threads per message sent; the Java tool does not say."""
    cpu = figures.get("cpu_us_per_message")
    return "—" if cpu is None else f"{cpu['median']:.1f} µs"


def _producer_table(cases: dict[str, Any], labels: dict[str, str]) -> list[str]:
    header = ["client"]
    for size, case in cases.items():
        asked = size.removesuffix("B")
        header += [
            f"{asked} B asked, {case['value_bytes']} B values",
            "vs bare",
            "records/batch",
            "CPU/message",
        ]
    rows = []
    for contender in _contenders(next(iter(cases.values()))):
        row = [labels[contender]]
        for case in cases.values():
            row += [
                _rate(case[contender]),
                _vs_bare(case, contender),
                f"{case[contender]['records_per_batch']['median']:,.0f}",
                _cpu(case[contender]),
            ]
        rows.append(row)
    return _table(header, rows)


def _consumer_table(case: dict[str, Any], labels: dict[str, str]) -> list[str]:
    header = ["client", f"{case['messages']:,} messages of {case['value_bytes']} B", "vs bare"]
    rows = [[labels[c], _rate(case[c]), _vs_bare(case, c)] for c in _contenders(case)]
    return _table(header, rows)


#: The consumer's commit interval in the benchmark (KAFKA_COMMIT_INTERVAL_MS' default).
COMMIT_INTERVAL_S = 0.1


def _consumer_profile(
    consumer: dict[str, Any], hotpath: dict[str, Any], tracing: dict[str, Any] | None = None
) -> list[str]:
    """Our consumer's time per message, step by step, against bare kafka-python's; with
    *tracing* (``bench tracing``'s consumer figures), what a span adds, outside the total."""
    per_message = {c: 1e6 / consumer[c]["messages_per_s"]["median"] for c in ("bare", "ours")}
    steps = {
        k: hotpath[f"step_{k}_us"]["median"]
        for k in ("decode", "latency", "duration", "handler")
        if f"step_{k}_us" in hotpath  # runs before the handler existed have no such step
    }
    histograms = hotpath["step_histograms_us"]["median"]
    loop_rest = hotpath["consumer_batch_us"]["median"] - sum(steps.values()) - histograms
    commits = (
        hotpath["commit_cpu_ms"]["median"]
        * 1000
        / (consumer["ours"]["messages_per_s"]["median"] * COMMIT_INTERVAL_S)
    )
    handler = (
        [
            (
                "the handler: build our Record, call the default handler (logging off)",
                steps["handler"],
            )
        ]
        if "handler" in steps
        else []
    )
    rows = [
        ("kafka-python fetching and parsing (bare kafka-python's rate)", per_message["bare"]),
        ("decode and check the envelope (msgspec)", steps["decode"]),
        ("end-to-end latency: read its timestamp", steps["latency"]),
        ("processing time: read the clock", steps["duration"]),
        *handler,
        ("two histogram updates per poll of 500", histograms),
        ("the rest of the loop: counts, retries, stop and deadline checks", loop_rest),
        ("offset commits, one per 100 ms (kafka-python's CPU)", commits),
    ]
    accounted = sum(value for _, value in rows)
    rows.append(("not accounted for above", per_message["ours"] - accounted))
    extra = []
    if tracing is not None:
        for mode, sampled in (("on_100", "100 %"), ("on_1", "1 %")):
            extra.append(
                [
                    f"with tracing on, a `process` span, {sampled} sampled (not in the total; "
                    "its rate against tracing off's, `bench tracing`)",
                    f"+{tracing[mode]['us_per_record_over_off']:.2f}",
                ]
            )
    return _table(
        ["step", "µs per message"],
        [[name, f"{value:.2f}"] for name, value in rows]
        + [["**ours, measured (1 / its rate)**", f"**{per_message['ours']:.2f}**"]]
        + extra,
    )


#: ``bench tracing``'s last figures, kept beside latest.json (the case runs only when named).
TRACING_RESULTS = Path(__file__).parent / "results" / "tracing.json"


def _tracing(cases: dict[str, Any]) -> dict[str, Any] | None:
    """The consumer's tracing figures: this run's, else the last ``bench tracing``'s."""
    if "tracing" in cases:
        found: dict[str, Any] = cases["tracing"]["consumer"]
        return found
    if not TRACING_RESULTS.exists():
        return None
    last: dict[str, Any] = json.loads(TRACING_RESULTS.read_text())["cases"]["tracing"]["consumer"]
    return last


#: The tracing case's contenders, as the tables name them.
TRACING_MODES = {
    "off": "off",
    "on_100": "on, 100 % sampled",
    "on_1": "on, `parentbased_traceidratio` 0.01",
}


def tracing_table(case: dict[str, Any]) -> list[str]:
    """Both services' rates by tracing mode, what each record's spans cost, and the spans'
    fate (``bench tracing``: docs/tracing.md and docs/performance.md show it)."""
    rows = []
    for service in ("producer", "consumer"):
        for mode, label in TRACING_MODES.items():
            m = case[service][mode]
            rate = m["messages_per_s"]
            spans = (
                "none"
                if mode == "off"
                else f"{m['exported']['median']:,.0f} sent, {m['dropped']['median']:,.0f} dropped"
            )
            rows.append(
                [
                    service,
                    label,
                    f"{rate['median']:,.0f} (±{rate['spread'] * 50:.0f}%)",
                    f"{m['vs_off']:.2f}",
                    "" if mode == "off" else f"{m['us_per_record_over_off']:.1f}",
                    spans,
                ]
            )
    header = ["service", "tracing", "messages/s", "vs off", "µs per record over off", "spans"]
    intro = [
        "Tracing's cost at full speed, to Jaeger v2 on the same machine (100 B messages; "
        "the consumer reads records without a `traceparent`; spans of one run; median "
        "of rounds):",
        "",
    ]
    return intro + _table(header, rows)


#: ``bench processing``'s last figures, kept beside latest.json when the case ran alone.
PROCESSING_RESULTS = Path(__file__).parent / "results" / "processing.json"
#: The processing case's contenders, as the table names them.
PROCESSING_CONTENDERS = {
    "one_at_a_time": "ours, one at a time (`partition`, the default)",
    "key": "ours, `key`",
    "key_async": "ours, `key`, `async def` handler",
    "unordered": "ours, `unordered`",
    "parallel_consumer": "Parallel Consumer 0.5.3.3, `KEY` (Java)",
}


def _processing(cases: dict[str, Any]) -> dict[str, Any] | None:
    """The processing figures: this run's, else the last ``bench processing``'s."""
    if "processing" in cases:
        found: dict[str, Any] = cases["processing"]
        return found
    if not PROCESSING_RESULTS.exists():
        return None
    last: dict[str, Any] = json.loads(PROCESSING_RESULTS.read_text())["cases"]["processing"]
    return last


def processing_table(case: dict[str, Any]) -> list[str]:
    """Records/s of a handler that waits, per ordering, against one at a time and
    Parallel Consumer (``bench processing``)."""
    rows = []
    for contender, label in PROCESSING_CONTENDERS.items():
        m = case[contender]
        rate = m["records_per_s"]
        memory = m.get("peak_rss_mib")
        rows.append(
            [
                label,
                f"{rate['median']:,.0f} (±{rate['spread'] * 50:.0f}%)",
                f"{m['vs_one_at_a_time']:.1f}",
                f"{m['vs_parallel_consumer']:.2f}",
                "" if memory is None else f"{memory['median']:.0f}",
            ]
        )
    header = ["consumer", "records/s", "vs one at a time", "vs Parallel Consumer", "peak MiB"]
    intro = [
        f"A handler that waits {case['wait_ms']} ms per record, {case['keys']} keys, 10 "
        f"partitions, one consumer process, {case['in_flight']} records in flight "
        "(`python -m bench processing`; median of rounds):",
        "",
    ]
    return intro + _table(header, rows)


def _extra_tables(cases: dict[str, Any]) -> list[str]:
    """Tracing's table, if this run measured it; processing's and the sink's, this run's or
    the last."""
    out: list[str] = []
    if "tracing" in cases:
        out += [*tracing_table(cases["tracing"]), ""]
    processing = _processing(cases)
    if processing is not None:
        out += [*processing_table(processing), ""]
    sink = _last("sink", cases, SINK_RESULTS)
    if sink is not None:
        out += [*sink_table(sink), ""]
    transform = _last("transform", cases, TRANSFORM_RESULTS)
    if transform is not None:
        out += [*transform_table(transform), ""]
    return out


#: ``bench sink``'s last figures, kept beside latest.json when the case ran alone.
SINK_RESULTS = Path(__file__).parent / "results" / "sink.json"
#: The sink case's contenders, as the table names them.
SINK_LABELS = {
    "handler": "`examples.postgres_sink:handler`, a record at a time",
    "bulk": "`examples.postgres_sink:bulk`, a batch at a time",
    "upsert": "`examples.postgres_sink:upsert`, a batch at a time: records into a row per key "
    "(300 keys)",
    "copy": "`COPY` of the same rows, in-process (psycopg)",
    "kafka_connect": "Kafka Connect 4.1.1 with Debezium's JDBC sink 3.5.0, its best `batch.size`",
}


def _last(name: str, cases: dict[str, Any], saved: Path) -> dict[str, Any] | None:
    """The case *name*'s figures: this run's, else those saved when it last ran alone."""
    if name in cases:
        found: dict[str, Any] = cases[name]
        return found
    if not saved.exists():
        return None
    last: dict[str, Any] = json.loads(saved.read_text())["cases"][name]
    return last


def sink_table(case: dict[str, Any]) -> list[str]:
    """Rows a second into PostgreSQL: the sink's two handlers, and COPY (``bench sink``)."""
    intro = [
        "The PostgreSQL sink into a PostgreSQL server on the same machine, records of about "
        "100 B with a key and a header, 10 partitions, one consumer process "
        "(`python -m bench sink`; median of rounds):",
        "",
    ]
    rows = []
    for name, label in SINK_LABELS.items():
        if name not in case:
            continue  # a run from before it was a contender
        rate = case[name]["rows_per_s"]
        rows.append(
            [
                label,
                f"{rate['median']:,.0f} (±{rate['spread'] * 50:.0f}%)",
                f"{case[name]['vs_copy']:.3f}",
            ]
        )
    return intro + _table(["writer", "rows/s", "vs COPY"], rows)


#: ``bench transform``'s last figures, kept beside latest.json when the case ran alone.
TRANSFORM_RESULTS = Path(__file__).parent / "results" / "transform.json"
#: The transform case's contenders, as the table names them.
TRANSFORM_LABELS = {
    "default_handler": "the default handler (publishes nothing)",
    "at_least_once": "a copy of each record published, at least once",
    "exactly_once": "the same, exactly once (a transaction per commit)",
}


def transform_table(case: dict[str, Any]) -> list[str]:
    """Records a second, topic to topic (``bench transform``)."""
    intro = [
        f"A transform: {case['records']:,} records of about 100 B, 10 partitions, one "
        "consumer process, each record published to another topic "
        "(`python -m bench transform`; median of rounds):",
        "",
    ]
    rows = []
    for name, label in TRANSFORM_LABELS.items():
        rate = case[name]["records_per_s"]
        rows.append(
            [
                label,
                f"{rate['median']:,.0f} (±{rate['spread'] * 50:.0f}%)",
                f"{case[name]['vs_default_handler']:.2f}",
                f"{case[name]['vs_at_least_once']:.2f}",
            ]
        )
    return intro + _table(
        ["consumer", "records/s", "vs the default handler", "vs at least once"], rows
    )


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


#: Where docs/performance.md holds the tables of the latest run.
README_MARKERS = ("<!-- bench:tables -->", "<!-- /bench:tables -->")


def with_tables(readme: str, tables: str) -> str:
    """*readme* with *tables* between its markers, in place of what was there."""
    start, end = README_MARKERS
    before, found, rest = readme.partition(start)
    _, found_end, after = rest.partition(end)
    if not (found and found_end):
        raise ValueError(f"the page has no {start} ... {end} section")
    return f"{before}{start}\n{tables}\n{end}{after}"


def markdown(results: dict[str, Any]) -> str:
    """The performance page's tables for whichever cases *results* holds."""
    cases = results["cases"]
    m = results["machine"]
    out: list[str] = [
        f"Measured {m['date'][:10]} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; "
        f"Python {m['python']}, kafka-python {m['kafka_python']}, Java {m['java']}, "
        f"Kafka {m['kafka_broker']} broker on the same machine; {results['rounds']} rounds.",
        "",
    ]
    labels = _labels(m)
    if "producer" in cases:
        out += [
            "Producer, messages/s (acks=all, idempotent, linger 5 ms; records per batch as "
            "written in the broker's log; CPU of all the process's threads per message, "
            "which a noisy host's rates hide):",
            "",
        ]
        out += [*_producer_table(cases["producer"], labels), ""]
    if "consumer" in cases:
        out += ["Consumer, messages/s from a pre-filled topic:", ""]
        out += [*_consumer_table(cases["consumer"], labels), ""]
    if "consumer" in cases and "hotpath" in cases:
        out += [
            "Where a consumed message's time goes, µs (our steps timed alone, in-process):",
            "",
        ]
        out += [*_consumer_profile(cases["consumer"], cases["hotpath"], _tracing(cases)), ""]
    if "latency" in cases:
        c = cases["latency"]
        row = [f"{c[k]['median']:.1f} ms" for k in ("p50_ms", "p99_ms", "max_ms")]
        out += [f"End-to-end latency at {c['rate_per_s']:,} messages/s (median of rounds):", ""]
        out += [*_table(["p50", "p99", "max"], [row]), ""]
    if "handover" in cases:
        c = cases["handover"]
        rows = [
            [
                "a second consumer joins",
                f"{c['join_s']['median']:.2f} s",
                f"{c['join_first_paused_s']['median'] * 1000:.0f} ms",
            ],
            [
                "the second stops (SIGTERM)",
                f"{c['sigterm_s']['median']:.2f} s",
                f"{c['sigterm_first_paused_s']['median'] * 1000:.0f} ms",
            ],
            [
                "the second is killed (SIGKILL)",
                f"{c['sigkill_s']['median']:.2f} s",
                f"{c['sigkill_duplicates']['median']:.0f} messages processed twice",
            ],
        ]
        out += [
            f"Rebalance handover, {c['partitions']} partitions, producer at "
            f"{c['rate_per_s']} messages/s (median of rounds):",
            "",
        ]
        out += [
            *_table(["event", "until the partitions have moved", "first consumer's pause"], rows)
        ]
        out += [""]
    if "strategies" in cases:
        c = cases["strategies"]
        rows = [
            [
                f"`{name}`",
                f"{c[name]['join_first_paused_s']['median'] * 1000:.0f} ms",
                f"{c[name]['join_s']['median']:.2f} s",
                f"{c[name]['sigterm_first_paused_s']['median'] * 1000:.0f} ms",
                f"{c[name]['sigterm_s']['median']:.2f} s",
            ]
            for name in c
            if isinstance(c[name], dict) and "sigterm_s" in c[name]
        ]
        out += [
            "A second consumer joins, then stops (SIGTERM, as a scale-down does), by "
            "assignment strategy (median of rounds):",
            "",
        ]
        head = ["strategy", "join: first's pause", "join: handover"]
        head += ["stop: first's pause", "stop: handover"]
        out += [*_table(head, rows), ""]
    if "memory" in cases:
        c = cases["memory"]
        rows = [
            [
                "producer",
                f"{c['producer_idle_mib']:.0f} MiB",
                f"{c['producer_load_peak_mib']:.0f} MiB",
            ],
            [
                "consumer",
                f"{c['consumer_idle_mib']:.0f} MiB",
                f"{c['consumer_load_peak_mib']:.0f} MiB",
            ],
        ]
        out += ["Resident memory:", ""]
        out += [*_table(["service", "idle", "under load (peak)"], rows), ""]
    if "sources" in cases:
        c = cases["sources"]
        rows = [
            [
                f"`{name}`",
                f"{c[name]['messages_per_s']['median']:,.0f} "
                f"(±{c[name]['messages_per_s']['spread'] * 50:.0f}%)",
            ]
            for name in ("envelopes", "stdin-json", "stdin-text")
        ]
        out += [
            f"Producer sources at full speed, {c['records']:,} records of about "
            f"{c['value_bytes']} B, messages/s (`python -m producer`, median of rounds):",
            "",
        ]
        out += [*_table(["PRODUCER_SOURCE", "messages/s"], rows), ""]
    out += _extra_tables(cases)
    if "hotpath" in cases:
        c = cases["hotpath"]
        row = [
            f"{c[k]['median']:.2f} µs"
            for k in ("encode_100B_us", "encode_1024B_us", "decode_us", "consumer_batch_us")
        ] + [f"{c['commit_cpu_ms']['median']:.2f} ms"]
        header = [
            "build a message, 100 B",
            "build one, 1 KiB",
            "decode one",
            "the consumer's loop, per message",
            "one offset commit (CPU)",
        ]
        out += ["What our code adds per message, timed in-process (median of rounds):", ""]
        out += [*_table(header, [row]), ""]
    return "\n".join(out)
