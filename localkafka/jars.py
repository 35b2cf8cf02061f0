"""Resolve the broker's jars from Maven Central once, then reuse them offline."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

from localkafka.errors import LocalKafkaError

KAFKA_VERSION = "4.1.1"
_MIN_JAVA = 17


def cache_root() -> Path:
    """Where resolved jars live: outside the repo, shared by every checkout."""
    if explicit := os.environ.get("LOCALKAFKA_CACHE"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "localkafka"


def _pom() -> bytes:
    return resources.files("localkafka").joinpath("pom.xml").read_bytes()


def java_executable() -> str:
    """The `java` to run the broker with, checked to be new enough."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise LocalKafkaError(
            f"Java {_MIN_JAVA}+ is needed to run the Kafka broker and was not found"
        )
    # `java -version` writes to stderr, e.g. 'openjdk version "17.0.15" 2025-04-15'.
    probe = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)', probe.stderr)
    if not match or int(match.group(1)) < _MIN_JAVA:
        raise LocalKafkaError(
            f"Java {_MIN_JAVA}+ is needed to run Kafka {KAFKA_VERSION}; "
            f"{java} says: {probe.stderr.strip().splitlines()[:1]}"
        )
    return java


def ensure_jars() -> Path:
    """Return the directory holding every jar the broker needs.

    The first call runs Maven; later calls find the completed directory and
    need neither Maven nor the network. A digest of pom.xml names the directory,
    so editing the pom resolves afresh instead of mixing versions.
    """
    pom = _pom()
    digest = hashlib.sha256(pom).hexdigest()[:12]
    lib = cache_root() / f"kafka-{KAFKA_VERSION}-{digest}"
    done = lib / ".complete"
    if done.exists():
        return lib

    mvn = shutil.which("mvn")
    if not mvn:
        raise LocalKafkaError(
            "Maven (mvn) is needed once to fetch the Kafka broker jars and was not found"
        )
    lib.parent.mkdir(parents=True, exist_ok=True)
    # Two processes resolving at once would interleave half-copied jars.
    with open(lib.parent / f".{lib.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return lib
        staging = lib.with_name(lib.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        (staging / "pom.xml").write_bytes(pom)
        result = subprocess.run(
            [
                mvn,
                "--batch-mode",
                "--quiet",
                "-f",
                str(staging / "pom.xml"),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}",
                "-DincludeScope=runtime",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise LocalKafkaError(f"Maven could not resolve the Kafka jars:\n{tail}")
        shutil.rmtree(lib, ignore_errors=True)
        staging.rename(lib)
        done.write_text(KAFKA_VERSION + "\n")
    return lib
