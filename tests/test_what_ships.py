"""What ships is the services alone: the wheel, and so `pip install .` and the
image, hold common, producer and consumer and nothing else of the checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from tests.conftest import REPO

SHIPPED = {"common", "producer", "consumer"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The project's wheel, built once: what `pip install .` and the image install."""
    out = tmp_path_factory.mktemp("wheel")
    # No build isolation: the pinned setuptools of the test extra builds it, offline.
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(REPO)],
        check=True, capture_output=True, text=True, cwd=out,
    )  # fmt: skip
    (built,) = out.glob("*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_holds_the_three_service_packages_and_nothing_else(
    wheel: zipfile.ZipFile,
) -> None:
    names = wheel.namelist()
    top_level = {name.split("/", 1)[0] for name in names if ".dist-info/" not in name}
    assert top_level == SHIPPED


def test_every_module_of_the_services_is_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    modules = {
        path.relative_to(REPO).as_posix()
        for package in SHIPPED
        for path in (REPO / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert modules - names == set()


def test_the_image_installs_its_dependencies_before_it_copies_any_code() -> None:
    """So that a code change reinstalls no dependency: the layer order of the Dockerfile."""
    lines = (REPO / "Dockerfile").read_text().splitlines()
    install_deps = next(i for i, line in enumerate(lines) if "--requirement" in line)
    first_code = next(i for i, line in enumerate(lines) if line.startswith("COPY . "))
    assert install_deps < first_code
    # Before the dependencies, only the two files that name them are copied in.
    copied_before = [line for line in lines[:install_deps] if line.startswith("COPY ")]
    assert copied_before == ["COPY pyproject.toml constraints.txt ./"]
