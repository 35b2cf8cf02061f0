"""Our services run as a user runs them, `python -m producer` or `consumer` with a few
variables, against no broker (a closed port): for what they say at start, and how they end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: Enough for either service to start: a broker address nothing listens on.
NO_BROKER = {
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
    "KAFKA_TOPIC": "t",
    "KAFKA_GROUP_ID": "g",
    "METRICS_PORT": "0",
}


def run(*command: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m COMMAND...` to its end, with NO_BROKER and *env* as its only settings."""
    return subprocess.run(
        [sys.executable, "-m", *command],
        env={"PATH": os.environ["PATH"], **NO_BROKER, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def lines(result: subprocess.CompletedProcess[str], event: str) -> list[dict[str, Any]]:
    """The JSON lines of *event* the run wrote."""
    found = [json.loads(line) for line in result.stdout.splitlines()]
    return [line for line in found if line["event"] == event]


def one_line(result: subprocess.CompletedProcess[str], event: str) -> dict[str, Any]:
    """The one *event* line the run wrote."""
    (line,) = lines(result, event)
    return line
