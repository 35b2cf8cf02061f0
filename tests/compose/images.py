"""The images the compose file names: pulled, or stood in for by local ones of the same name.

No registry may be reachable. A stand-in is built from a Debian bookworm root
made with ``debootstrap`` and imported with ``docker import``, and tagged with
the very name the compose file or the Dockerfile uses, so that both run
unchanged. Grafana has no stand-in: it is left out of the runs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import localkafka

HERE = Path(__file__).resolve().parent
JAEGER = HERE.parent.parent / "build" / "bin" / "jaeger"
STANDINS = HERE / "standins"
BASE = "localbase/debian:bookworm"
#: The host's own additions to its CA store (an intercepting proxy's, say).
HOST_CAS = Path("/usr/local/share/ca-certificates")
#: Image name (without tag) -> stand-in directory.
STANDIN_FOR = {
    "python": "python",
    "apache/kafka": "kafka",
    "prom/prometheus": "prometheus",
    "postgres": "postgres",
    "jaegertracing/jaeger": "jaeger",
}
#: Images nothing here can stand in for; their services are left out.
WITHOUT_STANDIN = {"grafana/grafana"}


def _docker(
    env: dict[str, str], *args: str, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def present(env: dict[str, str], image: str) -> bool:
    return _docker(env, "image", "inspect", image).returncode == 0


def _pulled(env: dict[str, str], image: str) -> bool:
    try:
        return _docker(env, "pull", image, timeout=60).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _base(env: dict[str, str], work: Path) -> None:
    if present(env, BASE):
        return
    if shutil.which("debootstrap") is None:
        raise RuntimeError(
            f"no registry serves these images, and {BASE} is made with debootstrap: "
            "apt-get install debootstrap"
        )
    rootfs = work / "rootfs"
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            "bookworm",
            str(rootfs),
            "http://deb.debian.org/debian",
        ],
        check=True,
        capture_output=True,
    )
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(
        ["docker", "import", "-", BASE], env=env, stdin=tar.stdout, check=True, capture_output=True
    )
    tar.wait()
    shutil.rmtree(rootfs)


def _build(env: dict[str, str], image: str, standin: str, work: Path) -> None:
    context = work / standin
    shutil.copytree(STANDINS / standin, context)
    if standin == "python":
        (context / "ca-certificates").mkdir()
        for ca in HOST_CAS.glob("*.crt"):
            shutil.copy(ca, context / "ca-certificates")
    if standin == "kafka":
        shutil.copytree(localkafka.ensure_jars(), context / "libs")
    if standin == "jaeger":
        # The binary the tracing tests run (make jaeger), from the same Go module.
        shutil.copy(JAEGER, context / "jaeger-linux")
    result = _docker(env, "build", "--quiet", "--tag", image, str(context))
    if result.returncode != 0:
        raise RuntimeError(f"building the stand-in for {image} failed:\n{result.stderr[-3000:]}")


def dockerfile_bases(dockerfile: Path) -> set[str]:
    """The images a Dockerfile builds FROM (not its own stages)."""
    stages = set()
    bases = set()
    for match in re.finditer(
        r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", dockerfile.read_text(), re.M | re.I
    ):
        image, stage = match.group(1), match.group(2)
        if image not in stages:
            bases.add(image)
        if stage:
            stages.add(stage)
    return bases


def ensure(env: dict[str, str], images: set[str]) -> dict[str, str]:
    """Make each of *images* available; returns how: pulled, present, stand-in or missing."""
    how: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="standins-") as tmp:
        work = Path(tmp)
        for image in sorted(images):
            name = image.rsplit(":", 1)[0]
            if present(env, image):
                how[image] = "present"
            elif name in WITHOUT_STANDIN:
                how[image] = "missing"
            elif _pulled(env, image):
                how[image] = "pulled"
            elif name in STANDIN_FOR:
                _base(env, work)
                _build(env, image, STANDIN_FOR[name], work)
                how[image] = "stand-in"
            else:
                raise RuntimeError(f"{image} can be neither pulled nor stood in for")
    return how
