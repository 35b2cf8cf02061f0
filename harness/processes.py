"""Run the producer and consumer as real processes and await events in their JSON logs.

The tests, ``make demo`` and the benchmarks drive the services the way an
operator would: as processes with environment variables, signals and logs.
Every stdout line is parsed as it arrives and a shared condition is
notified, so callers wait for log events instead of sleeping.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client.parser import text_string_to_metric_families

ASSIGNMENT_EVENTS = ("partitions.assigned", "partitions.revoked", "partitions.lost")

T = TypeVar("T")


class ServiceProcess:
    """One ``python -m producer`` or ``python -m consumer`` (or another client of Kafka's
    the tests run beside them), its output lines collected."""

    def __init__(
        self,
        command: Sequence[str],
        name: str,
        env: Mapping[str, str],
        condition: threading.Condition,
        *,
        cwd: Path | None = None,
        echo: Callable[[ServiceProcess, dict[str, Any]], None] | None = None,
    ) -> None:
        self.module = name
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.stderr = ""
        #: Every body ``get`` received, for checks on what the endpoint revealed.
        self.responses: list[str] = []
        self._condition = condition
        self._echo = echo
        self.process = subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Other clients may print raw bytes; keep them readable, never fail on them.
            errors="backslashreplace",
            # Our own process group: a Ctrl+C in the terminal reaches only the
            # driver, which then stops each service in order.
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                parsed = json.loads(line)
            except ValueError:
                parsed = {"event": "<not json>", "line": line}
            with self._condition:
                self.raw.append(line)
                self.lines.append(parsed)
                self._condition.notify_all()
            if self._echo is not None:
                self._echo(self, parsed)
        with self._condition:
            self._condition.notify_all()

    @property
    def pid(self) -> int:
        return self.process.pid

    def events(self, name: str) -> list[dict[str, Any]]:
        with self._condition:
            return [line for line in self.lines if line.get("event") == name]

    def seqs(self, event: str) -> list[int]:
        """Sequence numbers in this service's *event* lines, in log order."""
        return [line["seq"] for line in self.events(event) if "seq" in line]

    def assignment(self) -> dict[str, list[int]] | None:
        """This consumer's partitions as its latest assignment event says."""
        with self._condition:
            changes = [x["assignment"] for x in self.lines if x.get("event") in ASSIGNMENT_EVENTS]
        return changes[-1] if changes else None

    def owned(self, topic: str) -> list[int]:
        return (self.assignment() or {}).get(topic, [])

    @property
    def metrics_port(self) -> int:
        started = self.events("service.started")
        if not started:
            raise RuntimeError(f"{self.module} has not logged service.started yet")
        return int(started[0]["metrics_port"])

    def get(self, path: str, host: str = "127.0.0.1") -> tuple[int, str]:
        """GET *path* from the service's HTTP endpoint at *host*: (status, body)."""
        address = f"[{host}]" if ":" in host else host
        url = f"http://{address}:{self.metrics_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                status, body = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read().decode()
        self.responses.append(body)
        return status, body

    def metric(self, name: str, **labels: str) -> float:
        """The sum of *name*'s samples (as scraped: ``..._total``) with *labels*; 0 if none."""
        _, body = self.get("/metrics")
        return sum(
            sample.value
            for family in text_string_to_metric_families(body)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def metrics(self, *names: str) -> dict[str, float]:
        """The sum of each of *names*' samples, from one scrape: figures of one moment."""
        _, body = self.get("/metrics")
        found = dict.fromkeys(names, 0.0)
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name in found:
                    found[sample.name] += sample.value
        return found

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Signal the service and wait for it; returns its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        self.collect()
        return code

    def collect(self) -> None:
        """Once the process has ended: the rest of stdout, and all of stderr."""
        self._reader.join(timeout=5)
        assert self.process.stderr is not None
        if not self.process.stderr.closed:
            self.stderr = self.process.stderr.read()
            self.process.stderr.close()

    def output(self) -> str:
        with self._condition:
            return "".join(self.raw) + self.stderr


def _process_basics() -> dict[str, str]:
    # What any process needs to start, whatever its settings.
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}  # noqa: S108


class ServiceGroup:
    """Services started against one broker, and waiting on conditions across them."""

    def __init__(
        self,
        base_env: Mapping[str, str],
        cwd: Path | None = None,
        echo: Callable[[ServiceProcess, dict[str, Any]], None] | None = None,
    ) -> None:
        self.base_env = {**_process_basics(), **base_env}
        self.cwd = cwd
        self.condition = threading.Condition()
        self.started: list[ServiceProcess] = []
        self._echo = echo

    def start(self, module: str, *, clean_env: bool = False, **settings: str) -> ServiceProcess:
        """Start *module*; *settings* add to the base environment (or replace it)."""
        env = {**_process_basics(), **settings} if clean_env else {**self.base_env, **settings}
        command = [sys.executable, "-m", module]
        service = ServiceProcess(
            command, module, env, self.condition, cwd=self.cwd, echo=self._echo
        )
        self.started.append(service)
        return service

    def start_command(
        self, name: str, command: Sequence[str], env: Mapping[str, str] | None = None
    ) -> ServiceProcess:
        """Start another program (a foreign client) whose output lines are awaited alike."""
        full_env = {**_process_basics(), **(env or {})}
        process = ServiceProcess(
            command, name, full_env, self.condition, cwd=self.cwd, echo=self._echo
        )
        self.started.append(process)
        return process

    def wait_until(self, check: Callable[[], T], timeout: float = 30, what: str = "") -> T:
        """Wait for *check* to return something truthy, re-checking on every log line."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while not (result := check()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"timed out waiting for {what or check}\n{self.tails()}")
                # A log line or an exit wakes us; the bound re-checks what no line announces.
                self.condition.wait(min(remaining, 1.0))
        return result

    def tails(self, lines: int = 15) -> str:
        """The last lines of each service; for one that has exited, its status and stderr too."""
        parts = []
        for s in self.started:
            part = f"--- {s.module} (pid {s.pid}):\n" + "".join(s.raw[-lines:])
            if (code := s.process.poll()) is not None:
                s.collect()
                part += f"--- exited with {code}; stderr:\n{s.stderr[-3000:]}\n"
            parts.append(part)
        return "\n".join(parts)

    def kill_all(self, services: Iterable[ServiceProcess] | None = None) -> None:
        for service in self.started if services is None else services:
            if service.process.poll() is None:
                service.process.kill()
                service.process.wait()
            service.collect()
