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
import secrets
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import localkafka

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
    """Run the project's helm (build/bin/helm); a failure fails the test unless *check* is off."""
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

    def components(self) -> list[str]:
        """The services the rendered Deployments run: producer, consumer, sink."""
        labels = [d["metadata"]["labels"] for d in self.of_kind("Deployment")]
        return [label["app.kubernetes.io/component"] for label in labels]

    def pod(self, component: str) -> dict[str, Any]:
        """The pod spec of *component*'s Deployment."""
        return pod_spec(self.one("Deployment", component))

    def container(self, component: str) -> dict[str, Any]:
        """The one container of *component*'s pods."""
        (container,) = self.pod(component)["containers"]
        found: dict[str, Any] = container
        return found

    def env(self, component: str) -> dict[str, Any]:
        """*component*'s environment: each variable's value, or its ``valueFrom``."""
        return env_of(self.one("Deployment", component))


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def env_of(deployment: dict[str, Any]) -> dict[str, Any]:
    """A Deployment's environment: each variable's value, or its ``valueFrom``."""
    [container] = pod_spec(deployment)["containers"]
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


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


def _crd_files() -> list[Path]:
    """The CRD files of the kinds the chart renders beyond Kubernetes' own."""
    kubetools = REPO / "tests" / "kubetools"
    keda = _module_dir(KEDA_MODULE, REPO / "tests" / "kedascaler") / "config" / "crd" / "bases"
    operator = _module_dir(PROMETHEUS_OPERATOR, kubetools) / "example" / "prometheus-operator-crd"
    return [
        keda / "keda.sh_scaledobjects.yaml",
        keda / "keda.sh_triggerauthentications.yaml",
        operator / "monitoring.coreos.com_podmonitors.yaml",
        operator / "monitoring.coreos.com_prometheusrules.yaml",
    ]


def crds() -> list[dict[str, Any]]:
    """Those CRDs, as objects to apply."""
    return [yaml.safe_load(path.read_text()) for path in _crd_files()]


def _crd_schemas(target: Path) -> None:
    """KEDA's and the Prometheus Operator's CRDs, through kubeconform's converter."""
    kubetools = REPO / "tests" / "kubetools"
    converter = _module_dir(KUBECONFORM_MODULE, kubetools) / "scripts" / "openapi2jsonschema.py"
    out = target / "crds"
    out.mkdir(parents=True)
    subprocess.run(
        [sys.executable, str(converter), *map(str, _crd_files())],
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


class ApiServer:
    """build/bin/kubeapi on loopback: a real kube-apiserver 1.34 (k8s.io/kubernetes)
    on an embedded etcd, with one admin token (tests/kubeapi). Nothing acts on the
    objects it stores: no controller, scheduler or kubelet runs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port, self._etcd_client_port, self._etcd_peer_port = localkafka.free_ports(3)
        self.token = secrets.token_urlsafe(24)
        self._process: subprocess.Popen[bytes] | None = None
        self._kinds: dict[tuple[str, str], tuple[str, bool]] = {}

    def start(self, timeout: float = 120) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (self.root / "sa.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (self.root / "sa.pub").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        (self.root / "tokens.csv").write_text(f"{self.token},admin,admin,system:masters\n")
        command = [
            str(_tool("kubeapi")),
            "-data-dir", str(self.root),
            "-etcd-client-port", str(self._etcd_client_port),
            "-etcd-peer-port", str(self._etcd_peer_port),
            "--",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--cert-dir={self.root / 'certs'}",
            f"--token-auth-file={self.root / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={self.root / 'sa.pub'}",
            f"--service-account-signing-key-file={self.root / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/24",
        ]  # fmt: skip
        with (self.root / "kubeapi.log").open("wb") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        # The server announces nothing to await: ask /readyz until it says yes.
        while self._ready() is not True:
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = (self.root / "kubeapi.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"kube-apiserver did not become ready:\n{tail}", pytrace=False)
            time.sleep(0.5)

    def _ready(self) -> bool:
        try:
            return self.request("GET", "/readyz")[0] == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        content_type: str = "application/json",
        **query: str,
    ) -> tuple[int, Any, list[str]]:
        """(status, decoded body, Warning headers) of one API call."""
        context = ssl.create_default_context(cafile=str(self.root / "certs" / "apiserver.crt"))
        url = f"https://127.0.0.1:{self.port}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, context=context, timeout=30) as answer:
                status, raw, headers = answer.status, answer.read(), answer.headers
        except urllib.error.HTTPError as refused:
            status, raw, headers = refused.code, refused.read(), refused.headers
        try:
            decoded = json.loads(raw)
        except ValueError:
            decoded = raw.decode(errors="replace")
        return status, decoded, headers.get_all("Warning") or []

    def resource(self, obj: Mapping[str, Any]) -> str:
        """The path of *obj*'s collection, from the server's own discovery."""
        api_version, kind = obj["apiVersion"], obj["kind"]
        if (api_version, kind) not in self._kinds:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            status, listing, _ = self.request("GET", base)
            assert status == 200, listing
            for entry in listing["resources"]:
                if "/" not in entry["name"]:
                    self._kinds[(api_version, entry["kind"])] = (
                        f"{base}/{entry['name']}",
                        entry["namespaced"],
                    )
        path, namespaced = self._kinds[(api_version, kind)]
        if namespaced:
            prefix, _, plural = path.rpartition("/")
            namespace = obj["metadata"].get("namespace", "default")
            return f"{prefix}/namespaces/{namespace}/{plural}"
        return path

    def apply(self, obj: Mapping[str, Any], *, dry_run: bool) -> tuple[int, Any, list[str]]:
        """Server-side apply, as `kubectl apply --server-side [--dry-run=server]` does."""
        path = f"{self.resource(obj)}/{obj['metadata']['name']}"
        query = {"fieldManager": "eventhubs-kafka-python-tests", "force": "true"}
        if dry_run:
            query["dryRun"] = "All"
        return self.request("PATCH", path, obj, "application/apply-patch+yaml", **query)
