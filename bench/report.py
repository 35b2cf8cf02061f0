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
    }


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def _rate(figures: dict[str, Any]) -> str:
    msgs, mb = figures["messages_per_s"], figures["mb_per_s"]
    return f"{msgs['median']:,.0f} ({mb['median']:.1f} MB/s, ±{msgs['spread'] * 50:.0f}%)"


THROUGHPUT_HEADER = ["", "Java client", "bare kafka-python", "ours", "ours/bare", "ours/Java"]


def _throughput_row(label: str, case: dict[str, Any]) -> list[str]:
    return [
        label,
        *(_rate(case[c]) for c in ("java", "bare", "ours")),
        f"{case['ours_vs_bare']:.2f}",
        f"{case['ours_vs_java']:.2f}",
    ]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


#: Where the README's Performance section holds the tables of the latest run.
README_MARKERS = ("<!-- bench:tables -->", "<!-- /bench:tables -->")


def with_tables(readme: str, tables: str) -> str:
    """*readme* with *tables* between its markers, in place of what was there."""
    start, end = README_MARKERS
    before, found, rest = readme.partition(start)
    _, found_end, after = rest.partition(end)
    if not (found and found_end):
        raise ValueError(f"the README has no {start} ... {end} section")
    return f"{before}{start}\n{tables}\n{end}{after}"


def markdown(results: dict[str, Any]) -> str:
    """The README's Performance tables for whichever cases *results* holds."""
    cases = results["cases"]
    m = results["machine"]
    out: list[str] = [
        f"Measured {m['date'][:10]} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; "
        f"Python {m['python']}, kafka-python {m['kafka_python']}, Java {m['java']}, "
        f"Kafka {m['kafka_broker']} broker on the same machine; {results['rounds']} rounds.",
        "",
    ]
    if "producer" in cases:
        rows = [
            _throughput_row(f"{size.removesuffix('B')} B asked, {c['value_bytes']} B values", c)
            for size, c in cases["producer"].items()
        ]
        out += ["Producer, messages/s (acks=all, idempotent, linger 5 ms):", ""]
        out += [*_table(THROUGHPUT_HEADER, rows), ""]
    if "consumer" in cases:
        c = cases["consumer"]
        row = _throughput_row(f"{c['messages']:,} messages of {c['value_bytes']} B", c)
        out += ["Consumer, messages/s from a pre-filled topic:", ""]
        out += [*_table(THROUGHPUT_HEADER, [row]), ""]
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
            ]
            for name in c
            if isinstance(c[name], dict) and "join_s" in c[name]
        ]
        out += ["A second consumer joins, by assignment strategy (median of rounds):", ""]
        out += [*_table(["strategy", "first consumer's pause", "handover"], rows), ""]
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
