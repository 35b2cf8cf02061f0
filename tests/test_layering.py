"""docs/layout.md: the house is built from the bottom up, and kafka-python is met in one place.

``common/`` is below both services and imports neither; the workarounds of
``common/clients/_compat.py`` are applied by the clients' adapters alone, so
no service calls one.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _modules(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (ROOT / package).rglob("*.py"))


def test_common_imports_neither_service() -> None:
    above = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in _modules("common")
        for name in _imports(path)
        if name.split(".")[0] in {"consumer", "producer"}
    }
    assert not above


def test_only_the_adapters_apply_kafka_pythons_workarounds() -> None:
    callers = {
        str(path.relative_to(ROOT))
        for path in _modules("common", "consumer", "producer")
        if any(name.startswith("common.clients._compat") for name in _imports(path))
    }
    assert callers <= {"common/clients/_kafka.py", "common/clients/__init__.py"}


def test_every_producer_the_services_make_is_the_adapter() -> None:
    """A bare ``KafkaProducer`` or ``KafkaConsumer`` would skip the workarounds."""
    bare = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in _modules("common", "consumer", "producer")
        if path.name != "_kafka.py"
        for name in _imports(path)
        if name in {"kafka.KafkaProducer", "kafka.KafkaConsumer"}
    }
    assert not bare


def test_a_service_that_does_not_sign_in_with_entra_id_loads_no_azure_sdk() -> None:
    """azure-identity and azure-core are for Entra ID alone: others do not pay their memory."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, consumer.__main__, producer.__main__; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'azure'))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"
