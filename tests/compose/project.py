"""The project's own docker-compose.yml, run by Compose as a user would, and looked at."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / ".venv" / "bin" / "docker-compose"
T = TypeVar("T")


class Project:
    """One Compose project of the repository's compose file, with its own name and .env."""

    def __init__(self, name: str, env: dict[str, str], env_file: Path, services: list[str]) -> None:
        self.name = name
        self.env = env
        self.env_file = env_file
        #: The services to run: all whose image could be had.
        self.services = services

    def up(self, *args: str) -> None:
        """``docker compose up --detach --wait``: returns once every service is healthy."""
        self.compose("up", "--detach", "--wait", *args, *self.services)

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        result = subprocess.run(
            [
                str(COMPOSE),
                "--project-name",
                self.name,
                "--project-directory",
                str(REPO),
                "--env-file",
                str(self.env_file),
                *args,
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"docker compose {' '.join(args)} failed:\n{result.stderr[-4000:]}"
            )
        return result.stdout

    def docker(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(
            ["docker", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed:\n{result.stderr[-2000:]}")
        return result.stdout

    def containers(self, service: str, *, all_states: bool = False) -> list[str]:
        args = ["ps", "--quiet", *(["--all"] if all_states else []), service]
        return self.compose(*args).split()

    def inspect(self, container: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = json.loads(self.docker("inspect", container))
        return found[0]

    def environment(self, container: str) -> dict[str, str]:
        pairs = self.inspect(container)["Config"]["Env"]
        return dict(pair.split("=", 1) for pair in pairs)

    def events(self, container: str, event: str = "") -> list[dict[str, Any]]:
        """The JSON lines a container of ours wrote, or those of one *event*."""
        lines = []
        for line in self.docker("logs", container).splitlines():
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            if isinstance(parsed, dict) and (not event or parsed.get("event") == event):
                lines.append(parsed)
        return lines

    def owned(self, container: str, topic: str) -> list[int]:
        changes = [
            line["assignment"]
            for line in self.events(container)
            if line.get("event") in ("partitions.assigned", "partitions.revoked", "partitions.lost")
        ]
        return changes[-1].get(topic, []) if changes else []

    def kafka_tool(self, tool: str, *args: str) -> str:
        """One of Kafka's own tools, inside the kafka container."""
        (kafka,) = self.containers("kafka")
        return self.docker(
            "exec", kafka, f"/opt/kafka/bin/{tool}", "--bootstrap-server", "kafka:19092", *args
        )

    def psql(self, sql: str) -> list[list[str]]:
        """The rows *sql* returns in the `postgres` profile's database, as words."""
        (postgres,) = self.containers("postgres")
        out = self.docker(
            "exec", postgres, "psql", "--username", "sink", "--dbname", "sink",
            "--no-align", "--tuples-only", "--field-separator", " ", "--command", sql,
        )  # fmt: skip
        return [line.split() for line in out.splitlines() if line.strip()]

    def prometheus(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        url = f"http://127.0.0.1:9090/api/v1/{path}" + (f"?{query}" if query else "")
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)["data"]


def wait_until(check: Callable[[], T], timeout: float = 120, what: str = "") -> T:
    """Poll *check* until it returns something truthy (containers announce nothing to await)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(1)
