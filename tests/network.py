"""Network faults for tests: a broker's port blackholed on loopback with iptables.

Only loopback traffic to and from one port of a broker the test started is
dropped, both ways, so that the clients hear nothing (no reset, no refusal),
as when a firewall or a cable drops packets; the rule is removed however the
test ends.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator

import pytest


def _rules(port: int) -> list[list[str]]:
    return [
        ["INPUT", "-i", "lo", "-p", "tcp", "--dport", str(port), "-j", "DROP"],
        ["INPUT", "-i", "lo", "-p", "tcp", "--sport", str(port), "-j", "DROP"],
    ]


def _iptables() -> str:
    found = shutil.which("iptables")
    if found is None:
        pytest.fail(
            "iptables is missing: apt-get install iptables (make test installs it as root)",
            pytrace=False,
        )
    return found


@contextlib.contextmanager
def blackholed(port: int) -> Iterator[None]:
    """Every packet to and from *port* on loopback dropped, until the block ends."""
    iptables = _iptables()
    added: list[list[str]] = []
    try:
        for rule in _rules(port):
            subprocess.run([iptables, "-I", *rule], check=True, capture_output=True)
            added.append(rule)
        yield
    finally:
        for rule in added:
            subprocess.run([iptables, "-D", *rule], check=False, capture_output=True)
