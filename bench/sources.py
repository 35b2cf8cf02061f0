"""Case 7: the producer's sources side by side: its numbered envelopes, and a file of
records through standard input (``stdin-json`` and ``stdin-text``), all at full speed.

Each run is ``python -m producer`` as a user runs it; its rate comes from its own
sampled ``message.sent`` lines after a warm-up, as for the other cases. The file's
values are the size of the envelope's, so the rates compare the sources, not sizes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.runs import fresh_topic, rate_from_samples
from bench.stats import alternate, summary
from bench.throughput import LOG_EVERY, WARMUP_FRACTION, envelope_size

SOURCES = ("envelopes", "stdin-json", "stdin-text")
#: Records per run: long enough that start-up does not count.
RECORDS = 200_000
REPO = Path(__file__).resolve().parent.parent


def _files(directory: Path, count: int, value_size: int) -> dict[str, Path]:
    json_path, text_path = directory / "records.jsonl", directory / "records.txt"
    pad = "x" * max(0, value_size - len('{"n":"000000","pad":""}'))
    with json_path.open("w") as jsonl, text_path.open("w") as text:
        for n in range(count):
            value = f'{{"n":"{n:06d}","pad":"{pad}"}}'
            jsonl.write(f'{{"value":{value},"key":"k{n % 1000}"}}\n')
            text.write(value + "\n")
    return {"stdin-json": json_path, "stdin-text": text_path}


def _run(bootstrap: str, topic: str, source: str, count: int, files: dict[str, Path]) -> float:
    env = {
        "PATH": os.environ["PATH"],
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC": topic,
        "PRODUCER_RATE": "0",
        "METRICS_PORT": "0",
        "LOG_MESSAGE_EVERY": str(LOG_EVERY),
    }
    if source != "envelopes":
        env["PRODUCER_SOURCE"] = source
    with tempfile.TemporaryFile() as empty:
        stdin = files[source].open("rb") if source in files else empty
        process = subprocess.Popen(
            [sys.executable, "-m", "producer"],
            env=env,
            cwd=REPO,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdout is not None
        lines = []
        for raw in process.stdout:
            line = json.loads(raw)
            if line["event"] == "message.sent":
                lines.append(line)
                if len(lines) >= count // LOG_EVERY and source == "envelopes":
                    process.terminate()  # the envelopes never end by themselves
        process.wait(timeout=120)
        stdin.close()
    done, seconds = rate_from_samples(
        lines[: count // LOG_EVERY], LOG_EVERY, int(count * WARMUP_FRACTION) // LOG_EVERY
    )
    return done / seconds


def sources_case(bootstrap: str, rounds: int, scale: float = 1.0) -> dict[str, Any]:
    """Messages/s of each source, alternated round by round."""
    count = max(10 * LOG_EVERY, int(RECORDS * scale))
    _, value_size = envelope_size(100)
    runs: dict[str, list[float]] = {source: [] for source in SOURCES}
    with tempfile.TemporaryDirectory(prefix="bench-sources-") as tmp:
        files = _files(Path(tmp), count, value_size)
        for _, source in alternate(SOURCES, rounds):
            with fresh_topic(bootstrap, f"source-{source}") as topic:
                runs[source].append(_run(bootstrap, topic, source, count, files))
    return {source: {"messages_per_s": summary(values)} for source, values in runs.items()} | {
        "records": count,
        "value_bytes": value_size,
    }
