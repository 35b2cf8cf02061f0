"""A real PostgreSQL server for the sink's tests and benchmark: Debian's ``postgresql``
package, a cluster of its own in a temporary directory, listening on loopback only.

PostgreSQL refuses to run as root; as root (as ``make test`` runs here) the
cluster belongs to the package's ``postgres`` user and is run as it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import psycopg

import localkafka

#: Where Debian's postgresql package puts each major version's programs.
LIB = Path("/usr/lib/postgresql")


def _bin() -> Path:
    versions = sorted(LIB.glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise RuntimeError(
            "PostgreSQL's server is missing: apt-get install postgresql (make test installs it)"
        )
    return versions[-1].parent


class PostgresServer:
    """A cluster started for the tests; ``conninfo`` reaches its ``postgres`` database."""

    def __init__(self) -> None:
        self._bin = _bin()
        self.root = Path(tempfile.mkdtemp(prefix="sink-pg-"))
        self.data = self.root / "data"
        self.port = localkafka.free_ports(1)[0]
        self.conninfo = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def start(self) -> None:
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w",
            "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}",
            "start",
        )  # fmt: skip

    def stop(self) -> None:
        """A clean, fast stop: clients are disconnected, nothing is lost."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def execute(self, sql: str) -> None:
        """Run a statement that returns no rows (DDL, a TRUNCATE)."""
        with psycopg.connect(self.conninfo, autocommit=True) as connection:
            connection.execute(sql.encode())

    def query(self, sql: str) -> list[tuple[object, ...]]:
        with psycopg.connect(self.conninfo, autocommit=True) as connection:
            return connection.execute(sql.encode()).fetchall()

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text() if path.exists() else ""

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            if (self.data / "postmaster.pid").exists():
                self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *arguments: str) -> None:
        command: Sequence[str] = [str(self._bin / program), *arguments]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60, cwd=self.root)
