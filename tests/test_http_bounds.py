"""No client can hold the metrics port: a request that does not arrive in time is
dropped, and only so many connections are served at once, however many wait
half-open; the probes answer again once those are gone."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from common.health import Health
from common.http import HttpServer

BOUND = 8
TIMEOUT_S = 0.5
HALF_OPEN = 200


def _server(timeout_s: float) -> HttpServer:
    return HttpServer(
        "127.0.0.1",
        0,
        Health(),
        CollectorRegistry(),
        max_connections=BOUND,
        request_timeout_s=timeout_s,
    )


@pytest.fixture
def server() -> Iterator[HttpServer]:
    server = _server(TIMEOUT_S)
    yield server
    server.close()


@pytest.fixture
def patient_server() -> Iterator[HttpServer]:
    """One whose served connections outlast the test, so the bound stays full."""
    server = _server(60.0)
    yield server
    server.close()


def _half_open(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    return conn


def _closed_by_server(conn: socket.socket) -> bool:
    """Waits until the server closes *conn* (up to its socket timeout)."""
    try:
        return conn.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_half_open_connections_hold_no_more_threads_than_the_bound(
    patient_server: HttpServer,
) -> None:
    before = threading.active_count()
    conns = [_half_open(patient_server.port) for _ in range(HALF_OPEN)]
    try:
        # Those beyond the bound are closed as soon as they are accepted.
        assert all(_closed_by_server(c) for c in conns[BOUND:])
        assert threading.active_count() == before + BOUND
    finally:
        for conn in conns:
            conn.close()


def test_a_request_that_does_not_arrive_in_time_is_dropped(server: HttpServer) -> None:
    conn = _half_open(server.port)
    started = time.monotonic()
    try:
        assert _closed_by_server(conn)
    finally:
        conn.close()
    # Dropped by the server's timeout, well before the client's own 10 s.
    assert time.monotonic() - started < 10 - TIMEOUT_S


def test_the_probes_answer_again_once_the_half_open_connections_time_out(
    server: HttpServer,
) -> None:
    conns = [_half_open(server.port) for _ in range(BOUND)]
    try:
        for conn in conns:
            assert _closed_by_server(conn)
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=5) as r:
            assert r.status == 200
    finally:
        for conn in conns:
            conn.close()
