"""A Docker engine for the compose tests: the one running, or one of our own.

Our own is Debian's ``docker.io`` (dockerd, containerd, runc, overlay2), started
as root with its data under ``build/docker``, so that it touches nothing of the
machine's, and stopped afterwards, also when a test fails.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

_PR_SET_PDEATHSIG = 1
# containerd's sockets live under the exec root, whose path must stay short.
_EXEC_ROOT = Path("/run/ehk-compose-docker")


class Unavailable(Exception):
    """No Docker engine can be had; the message says what is needed."""


def _answers(env: dict[str, str]) -> bool:
    try:
        result = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            env=env,
            capture_output=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _install() -> None:
    if shutil.which("dockerd") and shutil.which("debootstrap"):
        return
    if os.geteuid() != 0 or not Path("/etc/debian_version").exists():
        raise Unavailable(
            "compose tests need a Docker engine: start one (or set DOCKER_HOST), or run "
            "as root on Debian so that they install docker.io and start their own"
        )
    subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "docker.io", "debootstrap"],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        check=True,
        capture_output=True,
    )


def _die_with_parent() -> None:
    # A killed test run takes its engine with it.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@contextlib.contextmanager
def running(root: Path, timeout: float = 60) -> Iterator[dict[str, str]]:
    """Yield the environment that points ``docker`` at an engine that answers."""
    env = dict(os.environ)
    if _answers(env):
        yield env
        return
    if os.environ.get("DOCKER_HOST"):
        raise Unavailable(f"DOCKER_HOST={os.environ['DOCKER_HOST']} does not answer")
    _install()
    root.mkdir(parents=True, exist_ok=True)
    socket = root / "docker.sock"
    env["DOCKER_HOST"] = f"unix://{socket}"
    log = (root / "dockerd.log").open("ab")
    dockerd = subprocess.Popen(
        [
            "dockerd",
            f"--data-root={root / 'data'}",
            f"--exec-root={_EXEC_ROOT}",
            f"--pidfile={root / 'dockerd.pid'}",
            f"--host=unix://{socket}",
            "--storage-driver=overlay2",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,  # noqa: PLW1509
    )
    try:
        deadline = time.monotonic() + timeout
        # dockerd says nothing we could await; ask it until it answers.
        while not _answers(env):
            if dockerd.poll() is not None or time.monotonic() > deadline:
                tail = (root / "dockerd.log").read_text(errors="replace")[-2000:]
                raise Unavailable(f"dockerd did not start:\n{tail}")
            time.sleep(0.5)
        yield env
    finally:
        dockerd.terminate()
        try:
            dockerd.wait(60)
        except subprocess.TimeoutExpired:
            dockerd.kill()
            dockerd.wait()
        log.close()
        shutil.rmtree(_EXEC_ROOT, ignore_errors=True)
