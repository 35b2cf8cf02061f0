"""``python -m bench [case ...]``: wires a broker, the cases and the report together."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import localkafka
from bench.handover import handover_case, heartbeat_case, strategies_case
from bench.hotpath import hotpath_case
from bench.latency import latency_case
from bench.memory import memory_case
from bench.processing import processing_case
from bench.report import machine, markdown, with_tables, write_json
from bench.sink import sink_case
from bench.sources import sources_case
from bench.throughput import consumer_case, producer_case
from bench.tracing import tracing_case
from bench.transform import transform_case

CASES: dict[str, Callable[[str, int, float], dict[str, Any]]] = {
    "producer": producer_case,
    "consumer": consumer_case,
    "latency": latency_case,
    "handover": handover_case,
    "memory": memory_case,
    "hotpath": hotpath_case,
    "sources": sources_case,
    "processing": processing_case,
}
#: Run only when named: the comparison behind the default assignment strategy, the
#: heartbeat's, tracing's cost, the PostgreSQL sink (a server of its own), and a transform.
EXTRA_CASES: dict[str, Callable[[str, int, float], dict[str, Any]]] = {
    "strategies": strategies_case,
    "heartbeat": heartbeat_case,
    "tracing": tracing_case,
    "sink": sink_case,
    "transform": transform_case,
}
DEFAULT_OUTPUT = Path(__file__).parent / "results" / "latest.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the services against bare kafka-python and the Java client "
        "on a Kafka broker started for the run.",
    )
    parser.add_argument(
        "cases",
        nargs="*",
        metavar="case",
        help=f"any of {', '.join(CASES | EXTRA_CASES)} "
        "(default: all but strategies, heartbeat and tracing)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds per case (default: 5)")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply message counts and durations, e.g. 0.1 for a smoke run",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="where the JSON goes (default: bench/results/latest.json)",
    )
    parser.add_argument(
        "--readme",
        type=Path,
        help="also put the tables into this page (docs/performance.md), between its markers",
    )
    args = parser.parse_args(argv)
    known = CASES | EXTRA_CASES
    if unknown := [c for c in args.cases if c not in known]:
        parser.error(f"unknown case {', '.join(unknown)}; choose from {', '.join(known)}")
    chosen = args.cases or list(CASES)
    results: dict[str, Any] = {
        "machine": machine(),
        "rounds": args.rounds,
        "scale": args.scale,
        "cases": {},
        "took_s": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as data_dir:
        broker = localkafka.start(Path(data_dir), bind_to_parent=True)
        try:
            for name in chosen:
                started = time.monotonic()
                print(f"bench: {name} ...", file=sys.stderr, flush=True)
                results["cases"][name] = known[name](broker.plaintext, args.rounds, args.scale)
                results["took_s"][name] = round(time.monotonic() - started, 1)
        finally:
            localkafka.stop(Path(data_dir))
    write_json(args.output, results)
    tables = markdown(results)
    print(tables)
    if args.readme:
        args.readme.write_text(with_tables(args.readme.read_text(), tables))
    print(f"\nfigures written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
