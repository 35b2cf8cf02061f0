"""Confluent's Parallel Consumer, built once under ``build/`` and run as the peer of ours.

Its jars come from Maven Central by ``parallel_consumer/pom.xml``; the small
program beside it is compiled with ``javac``. A digest of both names the
build, so an edit builds afresh; ``make parallel-consumer`` builds it ahead.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from localkafka.jars import java_executable

SOURCES = Path(__file__).parent / "parallel_consumer"
BUILD = Path(__file__).resolve().parents[1] / "build" / "parallel-consumer"
PROGRAM = "ParallelBench"


def built() -> Path:
    """The build's directory (``lib/`` and ``classes/``), built if it is not yet."""
    pom = (SOURCES / "pom.xml").read_bytes()
    program = (SOURCES / f"{PROGRAM}.java").read_bytes()
    home = BUILD / hashlib.sha256(pom + program).hexdigest()[:12]
    if (home / ".complete").exists():
        return home
    shutil.rmtree(home, ignore_errors=True)
    (home / "classes").mkdir(parents=True)
    shutil.copy(SOURCES / "pom.xml", home / "pom.xml")
    _run(["mvn", "-q", "-B", "dependency:copy-dependencies", "-DoutputDirectory=lib"], home)
    javac = str(Path(java_executable()).with_name("javac"))
    _run([javac, "-d", "classes", "-cp", "lib/*", str(SOURCES / f"{PROGRAM}.java")], home)
    (home / ".complete").touch()
    return home


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} exited {result.returncode}: {result.stdout[-2000:]}")


def consume(
    bootstrap: str, topic: str, group: str, total: int, *, in_flight: int, wait_ms: int
) -> dict[str, Any]:
    """Parallel Consumer in KEY order over *total* records; its records and seconds."""
    home = built()
    result = subprocess.run(
        [
            java_executable(),
            "-Xmx512m",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-cp",
            f"{home / 'classes'}:{home / 'lib'}/*",
            PROGRAM,
            bootstrap,
            topic,
            group,
            str(total),
            str(in_flight),
            str(wait_ms),
            "KEY",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{PROGRAM} exited {result.returncode}: {result.stderr[-2000:]}")
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer
