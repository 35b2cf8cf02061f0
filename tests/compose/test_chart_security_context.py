"""The image runs as the Helm chart's pods run it: the rendered Deployments' security
contexts, environment, arguments and scratch volume turned into `docker run` flags
(user 10001, read-only root filesystem, every capability dropped, no new
privileges, /tmp alone writable). Both services start, pass the rendered probes,
move messages through compose's Kafka, and stop cleanly within the grace period; so
does the PostgreSQL sink, writing the producer's records into compose's PostgreSQL."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from tests import kube
from tests.compose.project import Project, wait_until

pytestmark = pytest.mark.compose

#: What compose builds: the image the chart runs, as a registry would serve it.
IMAGE = ("eventhubs-kafka-python", "local")


def docker_run_flags(
    deployment: dict[str, Any], secrets: Mapping[tuple[str, str], str] | None = None
) -> list[str]:
    """`docker run` flags for what the pod spec asks of its container; a field this
    does not know fails the test rather than being left out. *secrets* holds the
    values of the Secrets' keys the environment names, by (name, key), as the kubelet
    would read them."""
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    pod_context, context = dict(pod["securityContext"]), dict(container["securityContext"])
    flags = ["--user", f"{pod_context.pop('runAsUser')}:{pod_context.pop('runAsGroup')}"]
    flags += ["--group-add", str(pod_context.pop("fsGroup"))]
    # Enforced by the kubelet, which refuses a root user: the user above is not root.
    assert pod_context.pop("runAsNonRoot") is True
    # Docker's default seccomp profile is the runtime's default.
    assert pod_context.pop("seccompProfile") == {"type": "RuntimeDefault"}
    if context.pop("readOnlyRootFilesystem"):
        flags.append("--read-only")
    flags += [f"--cap-drop={cap}" for cap in context.pop("capabilities")["drop"]]
    if context.pop("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    assert not pod_context, f"not carried to docker run: {pod_context}"
    assert not context, f"not carried to docker run: {context}"
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    for mount in container["volumeMounts"]:
        size = volumes[mount["name"]]["emptyDir"]["sizeLimit"]
        flags += ["--tmpfs", f"{mount['mountPath']}:size={size.removesuffix('i').lower()}"]
    for item in container["env"]:
        if "valueFrom" in item:
            ref = item["valueFrom"]["secretKeyRef"]
            value = (secrets or {})[ref["name"], ref["key"]]
        else:
            value = item["value"]
        flags += ["--env", f"{item['name']}={value}"]
    return [*flags, container["image"], *container["args"]]


def probe(address: str, container: dict[str, Any], name: str) -> int:
    """The HTTP status a kubelet would get from the rendered probe."""
    get = container[name]["httpGet"]
    [port] = [p["containerPort"] for p in container["ports"] if p["name"] == get["port"]]
    try:
        with urllib.request.urlopen(f"http://{address}:{port}{get['path']}", timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)
    except OSError:
        return 0


@pytest.fixture
def pods(project: Callable[..., Project]) -> Iterator[tuple[Project, list[str]]]:
    """Compose's Kafka and topic, and a list the test adds its containers to
    (removed afterwards, before compose takes its network down)."""
    compose = project()
    compose.compose("up", "--detach", "--wait", "kafka", "topic")
    started: list[str] = []
    try:
        yield compose, started
    finally:
        for container in started:
            compose.docker("rm", "--force", container)


def test_the_image_runs_as_the_chart_runs_it(pods: tuple[Project, list[str]]) -> None:
    compose, started = pods
    rendered = kube.render(
        [kube.CHART / "ci" / "kafka-values.yaml"],
        {
            "image.repository": IMAGE[0],
            "image.tag": IMAGE[1],
            "kafka.bootstrapServers": "kafka:19092",
            "producer.env": {"PRODUCER_RATE": 50},
        },
    )
    network = f"{compose.name}_default"
    containers: dict[str, str] = {}
    began = time.monotonic()
    for component in ("consumer", "producer"):
        deployment = rendered.one("Deployment", component)
        flags = docker_run_flags(deployment)
        containers[component] = compose.docker(
            "run", "--detach", "--network", network, *flags
        ).strip()
        started.append(containers[component])

    specs = {c: rendered.one("Deployment", c)["spec"]["template"]["spec"] for c in containers}
    addresses = {
        c: compose.inspect(cid)["NetworkSettings"]["Networks"][network]["IPAddress"]
        for c, cid in containers.items()
    }
    for component, container_id in containers.items():
        [container] = specs[component]["containers"]
        wait_until(
            lambda a=addresses[component], c=container: probe(a, c, "readinessProbe") == 200,
            90,
            f"the {component}'s readiness probe",
        )
        assert probe(addresses[component], container, "livenessProbe") == 200
        ready_s = time.monotonic() - began
        # What the runtime applied, seen from inside.
        status = compose.docker("exec", container_id, "cat", "/proc/1/status")
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        assert fields["Uid"].split()[0] == "10001"
        assert int(fields["CapEff"], 16) == 0
        assert fields["NoNewPrivs"].strip() == "1"
        refused = exit_status(compose, container_id, "touch", "/opt/venv/written")
        assert refused != 0, "the root filesystem took a write"
        assert exit_status(compose, container_id, "touch", "/tmp/written") == 0
        print(f"{component}: ready in {ready_s:.1f} s, uid 10001, CapEff 0, NoNewPrivs 1")

    def moved() -> set[int]:
        sent = {line["seq"] for line in compose.events(containers["producer"], "message.sent")}
        received = compose.events(containers["consumer"], "message.received")
        both = sent & {line["seq"] for line in received}
        return both if len(both) >= 50 else set()

    through = wait_until(moved, 60, "50 messages from the producer at the consumer")
    assert compose.owned(containers["consumer"], "testhub") == list(range(10))

    for component, container_id in containers.items():
        grace = specs[component]["terminationGracePeriodSeconds"]
        stopping = time.monotonic()
        compose.docker("stop", "--time", str(grace), container_id)
        took = time.monotonic() - stopping
        state = compose.inspect(container_id)["State"]
        print(f"{component}: stopped in {took:.1f} s, exit {state['ExitCode']}")
        assert state["ExitCode"] == 0
        assert took < grace
        assert compose.events(container_id)[-1]["event"] == "service.stopped"
    print(f"moved {len(through)} messages")


def test_the_sink_runs_as_the_chart_runs_it(project: Callable[..., Project]) -> None:
    compose = project()
    compose.compose(
        "--profile", "postgres", "up", "--detach", "--wait", "kafka", "topic", "postgres"
    )
    rendered = kube.render(
        [kube.CHART / "ci" / "kafka-sink-values.yaml"],
        {
            "image.repository": IMAGE[0],
            "image.tag": IMAGE[1],
            # What compose builds of the Dockerfile's postgres-sink target.
            "sink.image.tag": "postgres-sink",
            "sink.mode": "upsert",
            "kafka.bootstrapServers": "kafka:19092",
            "producer.env": {"PRODUCER_RATE": 50},
        },
    )
    secrets = {("sink-database", "database-url"): "postgresql://sink:sink@postgres:5432/sink"}
    network = f"{compose.name}_default"
    started: list[str] = []
    try:
        for component in ("sink", "producer"):
            flags = docker_run_flags(rendered.one("Deployment", component), secrets)
            started.append(compose.docker("run", "--detach", "--network", network, *flags).strip())
        sink, _ = started
        [container] = rendered.one("Deployment", "sink")["spec"]["template"]["spec"]["containers"]
        address = compose.inspect(sink)["NetworkSettings"]["Networks"][network]["IPAddress"]
        wait_until(lambda: probe(address, container, "readinessProbe") == 200, 90, "the sink ready")

        def keys() -> int:
            try:
                return int(compose.psql("SELECT count(*) FROM kafka_latest")[0][0])
            except AssertionError:
                return 0  # the sink creates its table as it starts

        wait_until(lambda: keys() >= 30, 90, "30 keys written by the sink")
        assert compose.owned(sink, "testhub") == list(range(10))
        assert compose.events(sink, "partitions.assigned")[-1]["group_id"] == "postgres-sink"
        grace = rendered.one("Deployment", "sink")["spec"]["template"]["spec"][
            "terminationGracePeriodSeconds"
        ]
        compose.docker("stop", "--time", str(grace), sink)
        assert compose.inspect(sink)["State"]["ExitCode"] == 0
        assert compose.events(sink)[-1]["event"] == "service.stopped"
        assert not compose.events(sink, "handler.failed")
        print(f"the sink wrote {keys()} keys")
    finally:
        for container_id in started:
            compose.docker("rm", "--force", container_id)


def exit_status(compose: Project, container: str, *command: str) -> int:
    """The exit status of *command* run in *container* as its user."""
    try:
        compose.docker("exec", container, *command)
    except AssertionError:
        return 1
    return 0
