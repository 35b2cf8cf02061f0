"""The Helm chart under test, and the real tools that judge it.

helm and kubeconform are built from the Go module proxy (tests/kubetools);
kubeconform reads Kubernetes' own JSON schemas from the PyPI package
kubernetes-validate and the CRDs of KEDA and the Prometheus Operator from
their Go modules, turned into schemas by kubeconform's own
scripts/openapi2jsonschema.py. KEDA's Kafka scaler runs as build/bin/kedalag
(tests/kedascaler). ``python -m tests.kube`` prepares the schemas once, for
`make test`; the tests only read them.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "deploy" / "helm" / "eventhubs-kafka-python"
BIN = REPO / "build" / "bin"
SCHEMAS = REPO / "build" / "kube-schemas"
#: The Kubernetes release the manifests are validated for (AKS's newest GA line).
KUBERNETES_VERSION = "1.34.0"
#: The CRDs' modules: KEDA's is the one tests/kedascaler/go.mod pins.
PROMETHEUS_OPERATOR = "github.com/prometheus-operator/prometheus-operator@v0.94.0"
KEDA_MODULE = "github.com/kedacore/keda/v2"
#: kubeconform's module, for its CRD converter script.
KUBECONFORM_MODULE = "github.com/yannh/kubeconform"

#: One release name for every render: object names in assertions depend on it.
RELEASE = "demo"


def ci_values() -> list[Path]:
    """The render matrix: one values file per case, as chart-testing expects."""
    return sorted((CHART / "ci").glob("*-values.yaml"))


def _tool(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: `make test` builds it (make kube-tools)", pytrace=False)
    return path


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the project's helm; it may only print its symlink notice on stderr."""
    result = subprocess.run(
        [str(_tool("helm")), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if check and result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{result.stderr}", pytrace=False)
    return result


def _value_args(values_files: Iterable[Path], values: Mapping[str, Any] | None) -> list[str]:
    args: list[str] = []
    for path in values_files:
        args += ["--values", str(path)]
    for key, value in (values or {}).items():
        args += ["--set-json", f"{key}={json.dumps(value)}"]
    return args


def template(
    values_files: Iterable[Path] = (), values: Mapping[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    """``helm template`` of the chart, as text (its exit status unchecked)."""
    return helm(
        "template",
        RELEASE,
        str(CHART),
        "--kube-version",
        KUBERNETES_VERSION,
        *_value_args(values_files, values),
        check=False,
    )


@dataclass(frozen=True)
class Rendered:
    """One render of the chart: its text, and its objects by kind."""

    text: str
    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str, component: str | None = None) -> dict[str, Any]:
        found = [
            obj
            for obj in self.of_kind(kind)
            if component is None
            or obj["metadata"]["labels"].get("app.kubernetes.io/component") == component
        ]
        assert len(found) == 1, f"expected one {kind} {component or ''}, got {len(found)}"
        return found[0]

    def kinds(self) -> list[str]:
        return sorted(obj["kind"] for obj in self.objects)


def render(values_files: Iterable[Path] = (), values: Mapping[str, Any] | None = None) -> Rendered:
    """The chart rendered; a refusal fails the test with helm's message."""
    result = template(values_files, values)
    if result.returncode != 0:
        pytest.fail(f"helm template failed:\n{result.stderr}", pytrace=False)
    objects = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return Rendered(result.stdout, objects)


def keda_trigger(
    rendered: Rendered, secrets: Mapping[str, Mapping[str, str]] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """The ScaledObject's kafka trigger metadata, and the auth parameters KEDA
    resolves from its TriggerAuthentication: from the rendered ConfigMaps and
    Secrets, or from *secrets* (name → key → value) for one the user creates."""
    trigger = rendered.one("ScaledObject")["spec"]["triggers"][0]
    assert trigger["type"] == "kafka"
    metadata: dict[str, str] = dict(trigger["metadata"])
    auth: dict[str, str] = {}
    if "authenticationRef" not in trigger:
        return metadata, auth
    name = trigger["authenticationRef"]["name"]
    [spec] = [
        a["spec"]
        for a in rendered.of_kind("TriggerAuthentication")
        if a["metadata"]["name"] == name
    ]
    config_maps = {c["metadata"]["name"]: c["data"] for c in rendered.of_kind("ConfigMap")}
    stored = {
        s["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in s["data"].items()}
        for s in rendered.of_kind("Secret")
    }
    stored.update({k: dict(v) for k, v in (secrets or {}).items()})
    for ref in spec.get("configMapTargetRef", []):
        auth[ref["parameter"]] = config_maps[ref["name"]][ref["key"]]
    for ref in spec.get("secretTargetRef", []):
        auth[ref["parameter"]] = stored[ref["name"]][ref["key"]]
    return metadata, auth


def refusal(values_files: Iterable[Path] = (), values: Mapping[str, Any] | None = None) -> str:
    """helm's message when the chart refuses these values; fails if it renders."""
    result = template(values_files, values)
    assert result.returncode != 0, "the chart rendered values it should refuse"
    return result.stderr


def kubeconform(manifests: str) -> dict[str, Any]:
    """kubeconform's JSON report for *manifests*: strict, Kubernetes' schemas,
    then the CRDs'; a kind with no schema is an error, not a skip."""
    if not (SCHEMAS / ".complete").exists():
        pytest.fail(f"{SCHEMAS} is missing: `make test` prepares it (make kube-schemas)")
    result = subprocess.run(
        [
            str(_tool("kubeconform")),
            "-strict",
            "-summary",
            "-output",
            "json",
            "-kubernetes-version",
            KUBERNETES_VERSION,
            "-schema-location",
            str(SCHEMAS)
            + "/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}"
            + "/{{ .ResourceKind }}{{ .KindSuffix }}.json",
            "-schema-location",
            str(SCHEMAS) + "/crds/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json",
        ],
        input=manifests,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def kedalag_result(
    metadata: Mapping[str, str],
    auth_params: Mapping[str, str],
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run build/bin/kedalag on one trigger; its exit status unchecked."""
    return subprocess.run(
        [str(_tool("kedalag"))],
        input=json.dumps({"metadata": dict(metadata), "authParams": dict(auth_params)}),
        capture_output=True,
        text=True,
        check=False,
        timeout=90,
        env={**os.environ, **(env or {})},
    )


def kedalag(
    metadata: Mapping[str, str],
    auth_params: Mapping[str, str],
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """What KEDA's own Kafka scaler reports for this trigger, as build/bin/kedalag
    prints it: metricName, metric (the lag it gives the HPA), target, active."""
    result = kedalag_result(metadata, auth_params, env)
    try:
        answer: dict[str, Any] = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"kedalag printed no JSON:\n{result.stdout}\n{result.stderr}", pytrace=False)
    if result.returncode != 0:
        pytest.fail(f"KEDA's scaler failed: {answer.get('error')}", pytrace=False)
    return answer


def _module_dir(module: str, cwd: Path) -> Path:
    """Where the Go module cache holds *module*; downloaded and checked against
    go.sum (or the checksum database) the first time."""
    out = subprocess.run(
        ["go", "mod", "download", "-json", module],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    return Path(json.loads(out)["Dir"])


def _kubernetes_schemas(target: Path) -> None:
    """kubernetes-validate's schemas of KUBERNETES_VERSION, in kubeconform's layout.

    The package names its shared definitions by an absolute $id, which its own
    loader maps; kubeconform loads files, so each schema's $id goes and its
    references point at the sibling _definitions.json. Nothing else changes.
    """
    import kubernetes_validate  # noqa: PLC0415 - only the preparation needs it

    source = (
        Path(kubernetes_validate.__file__).parent
        / "kubernetes-json-schema"
        / f"v{KUBERNETES_VERSION}-local-strict"
    )
    out = target / f"v{KUBERNETES_VERSION}-standalone-strict"
    out.mkdir(parents=True)
    for path in source.iterdir():
        text = path.read_text().replace('"/api/_definitions.json#', '"_definitions.json#')
        schema = json.loads(text)
        schema.pop("$id", None)
        (out / path.name).write_text(json.dumps(schema))


def _crd_schemas(target: Path) -> None:
    """KEDA's and the Prometheus Operator's CRDs, through kubeconform's converter."""
    kubetools = REPO / "tests" / "kubetools"
    converter = _module_dir(KUBECONFORM_MODULE, kubetools) / "scripts" / "openapi2jsonschema.py"
    keda = _module_dir(KEDA_MODULE, REPO / "tests" / "kedascaler") / "config" / "crd" / "bases"
    operator = _module_dir(PROMETHEUS_OPERATOR, kubetools) / "example" / "prometheus-operator-crd"
    crds = [
        keda / "keda.sh_scaledobjects.yaml",
        keda / "keda.sh_triggerauthentications.yaml",
        operator / "monitoring.coreos.com_podmonitors.yaml",
        operator / "monitoring.coreos.com_prometheusrules.yaml",
    ]
    out = target / "crds"
    out.mkdir(parents=True)
    subprocess.run(
        [sys.executable, str(converter), *map(str, crds)],
        cwd=out,
        env={**os.environ, "DENY_ROOT_ADDITIONAL_PROPERTIES": "1"},
        capture_output=True,
        check=True,
        timeout=120,
    )


def prepare_schemas() -> None:
    """Write SCHEMAS anew, whole or not at all."""
    partial = SCHEMAS.with_name(SCHEMAS.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    _kubernetes_schemas(partial)
    _crd_schemas(partial)
    (partial / ".complete").write_text(f"{KUBERNETES_VERSION} {PROMETHEUS_OPERATOR}\n")
    shutil.rmtree(SCHEMAS, ignore_errors=True)
    partial.rename(SCHEMAS)


if __name__ == "__main__":
    prepare_schemas()
    print("kube schemas:", SCHEMAS)
