"""A real Kubernetes 1.34 API server admits the chart: in every case of its matrix,
each object, applied server-side with a dry run (as `kubectl apply --server-side
--dry-run=server` does), in a namespace that enforces the `restricted` Pod Security
Standard; and a pod made from each Deployment's template passes that standard, which
the same namespace shows it enforces by refusing a pod that may run as root.

The server is kube-apiserver from k8s.io/kubernetes on an embedded etcd
(build/bin/kubeapi, tests/kubeapi), with KEDA's and the Prometheus Operator's CRDs.
No controller or kubelet runs: admitted is as far as the objects go.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from tests import kube

CASES = kube.ci_values()
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "v1.34",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/warn-version": "v1.34",
}


def case_id(path: Path) -> str:
    return path.name.removesuffix("-values.yaml")


def namespace(api: kube.ApiServer, name: str) -> str:
    """A namespace enforcing the restricted standard, created for real."""
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": RESTRICTED},
    }
    status, answer, _ = api.apply(body, dry_run=False)
    assert status in (200, 201), answer
    return name


def in_namespace(obj: dict[str, Any], name: str) -> dict[str, Any]:
    placed = copy.deepcopy(obj)
    placed["metadata"]["namespace"] = name
    return placed


def pod_of(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    """The pod a ReplicaSet of *deployment* would create, in namespace *name*."""
    template = copy.deepcopy(deployment["spec"]["template"])
    metadata = {**template["metadata"], "name": "pod", "namespace": name}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


@pytest.mark.parametrize("values", CASES, ids=case_id)
def test_the_api_server_admits_every_object_and_pod(kube_api: kube.ApiServer, values: Path) -> None:
    rendered = kube.render([values])
    name = namespace(kube_api, re.sub(r"[^a-z0-9-]", "-", case_id(values)))
    for obj in rendered.objects:
        status, answer, warnings = kube_api.apply(in_namespace(obj, name), dry_run=True)
        assert status in (200, 201), f"{obj['kind']} {obj['metadata']['name']}: {answer}"
        # A Deployment whose template breaks the standard is admitted with a warning.
        assert warnings == [], f"{obj['kind']}: {warnings}"
    # Pods need their service account to exist: those alone are created for real.
    for account in rendered.of_kind("ServiceAccount"):
        status, answer, _ = kube_api.apply(in_namespace(account, name), dry_run=False)
        assert status in (200, 201), answer
    for deployment in rendered.of_kind("Deployment"):
        pod = pod_of(deployment, name)
        status, answer, _ = kube_api.request(
            "POST", f"/api/v1/namespaces/{name}/pods", pod, dryRun="All"
        )
        assert status == 201, f"{deployment['metadata']['name']}: {answer}"


def test_the_namespace_enforces_the_restricted_standard(kube_api: kube.ApiServer) -> None:
    """The admission above could have refused: a pod the standard forbids is."""
    rendered = kube.render([kube.CHART / "ci" / "kafka-values.yaml"])
    name = namespace(kube_api, "negative")
    for account in rendered.of_kind("ServiceAccount"):
        kube_api.apply(in_namespace(account, name), dry_run=False)
    deployment = in_namespace(rendered.one("Deployment", "consumer"), name)
    del deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]
    del deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    # A Deployment is admitted all the same, with the warning the test above looks for;
    status, _, warnings = kube_api.apply(deployment, dry_run=True)
    assert status in (200, 201)
    assert any("runAsNonRoot" in warning for warning in warnings), warnings
    # its pod is refused.
    pod = pod_of(deployment, name)
    status, answer, _ = kube_api.request(
        "POST", f"/api/v1/namespaces/{name}/pods", pod, dryRun="All"
    )
    assert status == 403
    assert 'violates PodSecurity "restricted:v1.34"' in answer["message"]
    assert "runAsNonRoot" in answer["message"]
