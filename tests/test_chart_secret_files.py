"""With `secret.asFile`, the chart mounts its Secret's one key as a file and names it with
the service's ``*_FILE`` variable: no container's environment holds the secret or a
reference to it, and KEDA still reads the Secret itself. (kubeconform and the API
server's dry run judge these cases with the rest of ci/.)"""

from __future__ import annotations

import pytest

from tests import kube

pytestmark = pytest.mark.tools

CASES = {
    "eventhubs-secret-file-keda": ("EVENTHUBS_CONNECTION_STRING", "eventhubs", "connection-string"),
    "kafka-sasl-secret-file": ("KAFKA_SASL_PASSWORD", "kafka-credentials", "sasl-password"),
}


@pytest.mark.parametrize("case", CASES)
def test_the_secret_is_a_file_and_not_in_the_environment(case: str) -> None:
    variable, secret, key = CASES[case]
    rendered = kube.render([kube.CHART / "ci" / f"{case}-values.yaml"])
    for component in rendered.components():
        pod = rendered.pod(component)
        (container,) = pod["containers"]
        env = {item["name"]: item for item in container["env"]}
        assert variable not in env
        assert not [item for item in env.values() if "valueFrom" in item]
        path = env[f"{variable}_FILE"]["value"]
        (mount,) = [m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
        assert mount["readOnly"] is True
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["secret"]["secretName"] == secret
        assert volume["secret"]["items"] == [{"key": key, "path": path.rsplit("/", 1)[1]}]
        # Readable by the pod's group (fsGroup), as the image's user; no one else.
        assert volume["secret"]["defaultMode"] == 0o440
        assert pod["securityContext"]["fsGroup"] == container["securityContext"].get(
            "runAsGroup", pod["securityContext"]["runAsGroup"]
        )


def test_keda_still_reads_the_secret() -> None:
    rendered = kube.render([kube.CHART / "ci" / "eventhubs-secret-file-keda-values.yaml"])
    (auth,) = rendered.of_kind("TriggerAuthentication")
    refs = {(r["parameter"], r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]}
    assert ("password", "eventhubs", "connection-string") in refs


def test_without_it_the_secret_comes_by_reference_as_before() -> None:
    rendered = kube.render([kube.CHART / "ci" / "eventhubs-values.yaml"])
    container = rendered.container("consumer")
    env = {item["name"]: item for item in container["env"]}
    assert env["EVENTHUBS_CONNECTION_STRING"]["valueFrom"]["secretKeyRef"] == {
        "name": "eventhubs",
        "key": "connection-string",
    }
    assert "EVENTHUBS_CONNECTION_STRING_FILE" not in env
    assert [v["name"] for v in rendered.pod("consumer")["volumes"]] == ["tmp"]
