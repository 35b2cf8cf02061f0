"""Jaeger v2, the trace backend the tracing tests and benchmark send to: built from its Go module
(``tests/jaeger``, ``make jaeger``) and started on loopback with
``tests/jaeger/config.yaml``, every listener on 127.0.0.1 at ports picked here.

Spans go in by OTLP (gRPC or HTTP) and are read back through Jaeger's HTTP
query API, ``/api/services`` and ``/api/traces``, as its UI reads them.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import localkafka

REPO = Path(__file__).resolve().parent.parent
BINARY = REPO / "build/bin/jaeger"
CONFIG = REPO / "tests/jaeger/config.yaml"
#: Jaeger starts in about a second; its health check says when.
START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Span:
    """One span as Jaeger's query API shows it."""

    trace_id: str
    span_id: str
    name: str
    service: str
    kind: str
    #: The span it is a child of, if any: (trace id, span id).
    parent: tuple[str, str] | None
    #: Spans it links to (FOLLOWS_FROM in Jaeger's model): (trace id, span id).
    links: tuple[tuple[str, str], ...]
    tags: dict[str, Any]
    #: Each event (Jaeger calls them logs): its fields, with ``event`` its name.
    events: tuple[dict[str, Any], ...]


def _spans_of(trace: dict[str, Any]) -> list[Span]:
    processes = trace.get("processes", {})
    spans = []
    for raw in trace.get("spans", []):
        tags = {t["key"]: t["value"] for t in raw.get("tags", [])}
        refs = raw.get("references") or []
        parent = next(
            ((r["traceID"], r["spanID"]) for r in refs if r["refType"] == "CHILD_OF"), None
        )
        links = tuple((r["traceID"], r["spanID"]) for r in refs if r["refType"] == "FOLLOWS_FROM")
        events = tuple(
            {f["key"]: f["value"] for f in log.get("fields", [])} for log in raw.get("logs") or []
        )
        spans.append(
            Span(
                trace_id=raw["traceID"],
                span_id=raw["spanID"],
                name=raw["operationName"],
                service=processes.get(raw["processID"], {}).get("serviceName", ""),
                kind=str(tags.get("span.kind", "")),
                parent=parent,
                links=links,
                tags=tags,
                events=events,
            )
        )
    return spans


class JaegerApi:
    """Jaeger's HTTP query API at *query_port* on loopback, as its UI reads it."""

    def __init__(self, query_port: int) -> None:
        self.query_port = query_port

    def _get(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.query_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def services(self) -> list[str]:
        return list(self._get("/api/services")["data"] or [])

    def trace(self, trace_id: str) -> list[Span]:
        """Every span of the trace *trace_id* (32 hex digits); [] when Jaeger has none."""
        found = self._get(f"/api/traces/{trace_id}")
        if not found or not found.get("data"):
            return []
        return [span for trace in found["data"] for span in _spans_of(trace)]

    def spans(self, service: str, operation: str | None = None, limit: int = 1000) -> list[Span]:
        """The spans of *service*'s traces (every span of each trace, whatever its service)."""
        query = f"/api/traces?service={service}&limit={limit}&lookback=1h"
        if operation is not None:
            query += f"&operation={urllib.parse.quote(operation)}"
        found = self._get(query)
        return [span for trace in (found or {}).get("data") or [] for span in _spans_of(trace)]


class Jaeger(JaegerApi):
    """A Jaeger process of the test's own; ``env()`` points a service at it."""

    def __init__(self, workdir: Path) -> None:
        if not BINARY.exists():
            raise RuntimeError(f"{BINARY} is missing: make jaeger builds it (about 5 minutes)")
        self.health_port, query_port, query_grpc, self.grpc_port, self.http_port = (
            localkafka.free_ports(5)
        )
        super().__init__(query_port)
        self._env = {
            **os.environ,
            "JAEGER_HEALTH_PORT": str(self.health_port),
            "JAEGER_QUERY_PORT": str(query_port),
            "JAEGER_QUERY_GRPC_PORT": str(query_grpc),
            "JAEGER_OTLP_GRPC_PORT": str(self.grpc_port),
            "JAEGER_OTLP_HTTP_PORT": str(self.http_port),
            # Jaeger would trace its own queries to localhost:4317.
            "OTEL_TRACES_SAMPLER": "always_off",
        }
        self.log = workdir / "jaeger.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(
                [str(BINARY), "--config", str(CONFIG)],
                env=self._env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._healthy():
            if self._process.poll() is not None:
                raise RuntimeError(f"jaeger exited {self._process.returncode}: see {self.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"jaeger not healthy after {START_TIMEOUT_S:.0f} s")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: a backend gone at once, no goodbye."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
            self._process = None

    def env(self, protocol: str = "http/protobuf", **more: str) -> dict[str, str]:
        """The OTEL_* variables that send a service's spans here, promptly."""
        port = self.grpc_port if protocol == "grpc" else self.http_port
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            # Spans sent every 100 ms instead of 5 s: the tests read them soon after.
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            **more,
        }

    def _healthy(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.health_port}/status"
            with urllib.request.urlopen(url, timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False
