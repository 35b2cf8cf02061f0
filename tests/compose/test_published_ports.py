"""`docker compose up` publishes every port on the host's loopback only, scaled consumers
too, unless PUBLISH_ADDRESS in .env says otherwise: what the engine bound, and the sockets
it listens on."""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Callable

import pytest

from tests.compose.project import Project

pytestmark = pytest.mark.compose


def _published(compose: Project) -> dict[str, set[tuple[str, int]]]:
    """Per service: (host address, host port) of each port the engine published for it."""
    found: dict[str, set[tuple[str, int]]] = {}
    for container in compose.compose("ps", "--quiet").split():
        state = compose.inspect(container)
        service = state["Config"]["Labels"]["com.docker.compose.service"]
        for bindings in (state["NetworkSettings"]["Ports"] or {}).values():
            for binding in bindings or []:
                found.setdefault(service, set()).add((binding["HostIp"], int(binding["HostPort"])))
    return found


def _listening(port: int) -> set[str]:
    """The local addresses the host has a TCP socket listening on *port* at."""
    lines = subprocess.run(
        ["ss", "--listening", "--tcp", "--numeric", "--no-header", f"sport = :{port}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return {line.split()[3].rsplit(":", 1)[0] for line in lines}


def test_every_port_is_published_on_loopback_by_default(project: Callable[..., Project]) -> None:
    compose = project()
    compose.up("--scale", "consumer=2")

    published = _published(compose)
    assert {"kafka", "producer", "consumer", "prometheus"} <= set(published)
    assert len(published["consumer"]) == 2  # one port per replica, both on loopback
    for service, bindings in published.items():
        for address, port in bindings:
            assert address == "127.0.0.1", f"{service} published on {address}:{port}"
            assert _listening(port) == {"127.0.0.1"}, f"{service}'s port {port}"
    # What the README promises still answers from the host.
    with urllib.request.urlopen("http://127.0.0.1:8000/metrics", timeout=10) as response:
        assert response.status == 200
    print(f"published by default: {sorted((s, b) for s, bs in published.items() for b in bs)}")


def test_publish_address_opens_them(project: Callable[..., Project]) -> None:
    compose = project("PUBLISH_ADDRESS=0.0.0.0\n")
    compose.up()

    published = _published(compose)
    assert {"kafka", "producer", "consumer", "prometheus"} <= set(published)
    for service, bindings in published.items():
        for address, port in bindings:
            assert address == "0.0.0.0", f"{service} published on {address}:{port}"
            assert "0.0.0.0" in _listening(port), f"{service}'s port {port}"
    print(f"published with PUBLISH_ADDRESS=0.0.0.0: {sorted(published.items())}")
