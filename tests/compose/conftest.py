"""A Docker engine and the compose file's images for the run; a Compose project per test."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.compose import engine, images
from tests.compose.project import REPO, Project

ENGINE_ROOT = REPO / "build" / "docker"


@pytest.fixture(scope="session")
def docker_env() -> Iterator[dict[str, str]]:
    """The environment that points ``docker`` at a running engine with every image in it."""
    try:
        with engine.running(ENGINE_ROOT) as env:
            yield env
    except engine.Unavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def compose_services(
    docker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> list[str]:
    """Every service of `docker compose up` whose image could be had: pulled, present
    or stood in for; the images of the profiles' services are made ready too.

    Grafana's cannot be had here; its service is left out of the runs.
    """
    env_file = tmp_path_factory.mktemp("probe") / ".env"
    env_file.write_text("")
    probe = Project("ehk-probe", docker_env, env_file, [])
    profiles = ("--profile", "postgres", "--profile", "tracing")
    config = json.loads(probe.compose(*profiles, "config", "--format", "json"))
    named = {s["image"] for s in config["services"].values() if "build" not in s}
    named |= images.dockerfile_bases(REPO / "Dockerfile")
    try:
        report = images.ensure(docker_env, named)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    print(f"images: {report}")
    # Our own images from this checkout, once: `up` and `run` use an image of that
    # name as they find it, which may be one built from older code.
    probe.compose(*profiles, "build", timeout=1800)
    return [
        name
        for name, service in config["services"].items()
        if not service.get("profiles")
        and ("build" in service or report[service["image"]] != "missing")
    ]


@pytest.fixture
def project(
    docker_env: dict[str, str], compose_services: list[str], tmp_path: Path
) -> Iterator[Callable[..., Project]]:
    """Start the compose file's services under a fresh project name; all removed afterwards.

    Called with ``.env`` lines (default: none, as on a fresh clone).
    """
    made: list[Project] = []

    def make(env_lines: str = "") -> Project:
        env_file = tmp_path / f"{len(made)}.env"
        env_file.write_text(env_lines)
        made.append(Project(f"ehk-{uuid.uuid4().hex[:8]}", docker_env, env_file, compose_services))
        return made[-1]

    try:
        yield make
    finally:
        for each in made:
            each.compose("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)
