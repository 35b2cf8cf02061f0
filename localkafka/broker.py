"""Run one real Apache Kafka broker (KRaft, broker and controller in one JVM) on loopback.

The broker keeps everything in one data directory: its settings, TLS files,
KRaft storage, logs and a small ``localkafka.json`` that remembers the ports
and the connection string, so a restart on the same directory comes back at
the same addresses with the same data, as a real broker restart would.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from localkafka import certs
from localkafka.errors import LocalKafkaError
from localkafka.jars import KAFKA_VERSION, ensure_jars, java_executable

HOST = "127.0.0.1"
#: The SASL user name Azure Event Hubs expects; the password is a connection string.
EVENTHUBS_USERNAME = "$ConnectionString"
_STATE = "localkafka.json"
#: The namespace of the connection string and of the OAUTHBEARER audience.
NAMESPACE = "localkafka"
#: What Microsoft Entra ID puts in an Event Hubs token: the namespace as audience,
#: and the tenant's token service as issuer (a made-up tenant).
OAUTH_AUDIENCE = f"https://{NAMESPACE}.servicebus.windows.net"
OAUTH_ISSUER = "https://sts.windows.net/00000000-0000-4000-8000-00000000cafe/"
OAUTH_KEY_ID = "localkafka-1"
_MAIN_CLASS = "kafka.Kafka"
_HEAP = ("-Xms256m", "-Xmx512m")
_PR_SET_PDEATHSIG = 1
#: The ports a broker keeps across restarts; ``sasl_ssl`` is the Event Hubs front's.
_PORTS = ("plaintext", "sasl_ssl", "eventhubs_inner", "oauth", "controller")
_FRONT_MODULE = "localkafka.front"


@dataclass(frozen=True)
class Broker:
    """How to reach a running broker: what the CLI prints and the fixtures use."""

    plaintext: str
    sasl_ssl: str
    ca_file: Path
    connection_string: str
    pid: int
    data_dir: Path
    log_file: Path
    #: SASL_SSL with OAUTHBEARER: RS256 tokens for OAUTH_AUDIENCE from OAUTH_ISSUER,
    #: checked by Kafka's own validator against the JWKS of *jwt_signing_key*.
    oauth: str = ""
    jwt_signing_key: Path | None = None
    kafka_version: str = KAFKA_VERSION

    def as_dict(self) -> dict[str, str | int]:
        return {
            "plaintext": self.plaintext,
            "sasl_ssl": self.sasl_ssl,
            "oauth": self.oauth,
            "oauth_audience": OAUTH_AUDIENCE,
            "oauth_issuer": OAUTH_ISSUER,
            "jwt_signing_key": str(self.jwt_signing_key),
            "ca_file": str(self.ca_file),
            "connection_string": self.connection_string,
            "sasl_username": EVENTHUBS_USERNAME,
            "pid": self.pid,
            "data_dir": str(self.data_dir),
            "log_file": str(self.log_file),
            "kafka_version": self.kafka_version,
        }


@dataclass(frozen=True)
class _Layout:
    root: Path

    @property
    def state(self) -> Path:
        return self.root / _STATE

    @property
    def properties(self) -> Path:
        return self.root / "server.properties"

    @property
    def log4j(self) -> Path:
        return self.root / "log4j2.properties"

    @property
    def tls(self) -> Path:
        return self.root / "tls"

    @property
    def oauth(self) -> Path:
        return self.root / "oauth"

    @property
    def jwks(self) -> Path:
        return self.oauth / "jwks.json"

    @property
    def storage(self) -> Path:
        return self.root / "kraft"

    @property
    def log_file(self) -> Path:
        return self.root / "broker.log"

    @property
    def stdout_file(self) -> Path:
        return self.root / "stdout.log"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "localkafka"


def new_connection_string(namespace: str = NAMESPACE) -> str:
    """An Event Hubs style namespace connection string with a fresh random key."""
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    return (
        f"Endpoint=sb://{namespace}.servicebus.windows.net/;"
        f"SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={key}"
    )


def free_ports(count: int) -> list[int]:
    """*count* distinct free TCP ports on loopback, for servers a test starts."""
    # Hold every socket until all are picked so the kernel hands out distinct ports.
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in socks]


def _cluster_id() -> str:
    # Kafka cluster ids are UUIDs in unpadded URL-safe base64.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def _load_state(layout: _Layout) -> dict[str, object]:
    try:
        data = json.loads(layout.state.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise LocalKafkaError(f"{layout.state} is unreadable: {exc}") from exc
    return data if isinstance(data, dict) else {}


def _save_state(layout: _Layout, state: dict[str, object]) -> None:
    tmp = layout.state.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.chmod(0o600)
    tmp.replace(layout.state)


def _server_properties(
    layout: _Layout,
    ports: dict[str, int],
    connection_string: str,
    *,
    reauth_ms: int | None,
    auto_create_topics: bool,
) -> str:
    server_pem = layout.tls / "server.pem"
    jaas = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'user_{EVENTHUBS_USERNAME}="{connection_string}";'
    )
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{HOST}:{ports['controller']}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        # EVENTHUBS is SASL without TLS on loopback, reached only through the
        # Event Hubs front, which holds the TLS and is advertised in its place:
        # every connection a client opens from metadata passes the front too.
        "listeners": (
            f"PLAINTEXT://{HOST}:{ports['plaintext']},"
            f"EVENTHUBS://{HOST}:{ports['eventhubs_inner']},"
            f"OAUTH://{HOST}:{ports['oauth']},"
            f"CONTROLLER://{HOST}:{ports['controller']}"
        ),
        "advertised.listeners": (
            f"PLAINTEXT://{HOST}:{ports['plaintext']},EVENTHUBS://{HOST}:{ports['sasl_ssl']},"
            f"OAUTH://{HOST}:{ports['oauth']}"
        ),
        "listener.security.protocol.map": (
            "PLAINTEXT:PLAINTEXT,EVENTHUBS:SASL_PLAINTEXT,OAUTH:SASL_SSL,CONTROLLER:PLAINTEXT"
        ),
        "log.dirs": str(layout.storage),
        # Like Event Hubs for most identities: a topic that does not exist is an
        # error, not a surprise. (Event Hubs does create one for an identity with
        # Manage rights: auto_create_topics=True stands in for that.)
        "auto.create.topics.enable": str(auto_create_topics).lower(),
        # Tests form groups constantly; the 3 s default only delays each one.
        "group.initial.rebalance.delay.ms": "0",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.eventhubs.plain.sasl.jaas.config": jaas,
        # OAUTHBEARER as Event Hubs takes it from Microsoft Entra ID, validated by
        # Kafka's own JWT validator: signature (JWKS), audience, issuer, expiry.
        "listener.name.oauth.sasl.enabled.mechanisms": "OAUTHBEARER",
        "listener.name.oauth.oauthbearer.sasl.jaas.config": (
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;"
        ),
        "listener.name.oauth.oauthbearer.sasl.server.callback.handler.class": (
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
        ),
        "sasl.oauthbearer.jwks.endpoint.url": layout.jwks.as_uri(),
        # Kafka 4.1's default, DefaultJwtValidator, built by the handler without
        # a key resolver, falls back to ClientJwtValidator: no signature check,
        # no audience or issuer. BrokerJwtValidator builds its own from the JWKS.
        "sasl.oauthbearer.jwt.validator.class": (
            "org.apache.kafka.common.security.oauthbearer.BrokerJwtValidator"
        ),
        "sasl.oauthbearer.expected.audience": OAUTH_AUDIENCE,
        "sasl.oauthbearer.expected.issuer": OAUTH_ISSUER,
        "listener.name.oauth.ssl.keystore.type": "PEM",
        "listener.name.oauth.ssl.keystore.location": str(server_pem),
    }
    if reauth_ms is not None:
        # A session ends this long after authentication unless the client
        # re-authenticates with a fresh token (KIP-368); 0 turns it off.
        settings["listener.name.oauth.oauthbearer.connections.max.reauth.ms"] = str(reauth_ms)
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _log4j_properties(layout: _Layout) -> str:
    return (
        "status = warn\n"
        "appender.file.type = File\n"
        "appender.file.name = file\n"
        f"appender.file.fileName = {layout.log_file}\n"
        "appender.file.layout.type = PatternLayout\n"
        "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = INFO\n"
        "rootLogger.appenderRef.file.ref = file\n"
    )


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # A zombie has exited; only its parent has not reaped it yet.
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _running_pid(layout: _Layout) -> int | None:
    """The broker's pid, if the process recorded in the state is still our broker."""
    pid = _load_state(layout).get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        return None
    # Guard against a recycled pid: it must be a broker of this very directory.
    cmd = _cmdline(pid)
    if _MAIN_CLASS in cmd and str(layout.properties) in cmd:
        return pid
    return None


def _tail(layout: _Layout, lines: int = 15) -> str:
    """The log lines that explain a failed start: the first errors, then the end.

    A dying broker logs its shutdown after the cause, so the tail alone would
    show only the aftermath.
    """
    parts = []
    for path in (layout.stdout_file, layout.log_file):
        with contextlib.suppress(OSError):
            text = path.read_text(errors="replace").strip()
            if not text:
                continue
            all_lines = text.splitlines()
            errors = []
            for number, line in enumerate(all_lines):
                if "] ERROR " in line or "] FATAL " in line:
                    errors.append(line)
                    # The exception's message stands on the line after the record.
                    following = all_lines[number + 1 : number + 2]
                    errors.extend(x for x in following if not x.startswith("["))
            if errors:
                parts.append(f"--- first errors in {path}\n" + "\n".join(errors[:8]) + "\n")
            parts.append(f"--- last {lines} lines of {path}\n")
            parts.append("\n".join(all_lines[-lines:]) + "\n")
    return "".join(parts) or "(the broker wrote no log)"


def _broker(layout: _Layout, state: dict[str, object], pid: int) -> Broker:
    ports = state["ports"]
    assert isinstance(ports, dict)
    return Broker(
        plaintext=f"{HOST}:{ports['plaintext']}",
        sasl_ssl=f"{HOST}:{ports['sasl_ssl']}",
        oauth=f"{HOST}:{ports['oauth']}" if "oauth" in ports else "",
        jwt_signing_key=layout.oauth / "jwt-signing-key.pem",
        ca_file=layout.tls / "ca.pem",
        connection_string=str(state["connection_string"]),
        pid=pid,
        data_dir=layout.root,
        log_file=layout.log_file,
    )


def status(data_dir: Path) -> Broker | None:
    """The running broker of *data_dir*, or None when none runs."""
    layout = _Layout(data_dir.resolve())
    pid = _running_pid(layout)
    return None if pid is None else _broker(layout, _load_state(layout), pid)


def _accepts(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    return True


def _answers(address: str) -> bool:
    """Whether the broker completes a Kafka request, not merely accepts TCP."""
    if not _accepts(address):
        return False
    try:
        admin = KafkaAdminClient(bootstrap_servers=address, bootstrap_timeout_ms=2000)
    except Exception:  # noqa: BLE001  (any failure means "not yet")
        return False
    try:
        admin.describe_cluster()
        return True
    except Exception:  # noqa: BLE001
        return False
    finally:
        admin.close()


def create_topic(broker: Broker, name: str, partitions: int) -> bool:
    """Create topic *name* unless it exists; returns whether it was created."""
    admin = KafkaAdminClient(bootstrap_servers=broker.plaintext)
    try:
        if name in admin.list_topics():
            return False
        admin.create_topics([NewTopic(name, partitions, 1)])
        return True
    finally:
        admin.close()


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: the kernel sends SIGTERM when the
    # parent dies, so a killed test run leaves no broker behind.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _prepare(
    layout: _Layout,
    ports: dict[str, int | None],
    java: str,
    lib: Path,
    *,
    reauth_ms: int | None,
    auto_create_topics: bool,
) -> dict[str, object]:
    """Write settings, certificates and formatted storage; reuse what exists."""
    layout.root.mkdir(parents=True, exist_ok=True)
    state = _load_state(layout)
    saved = state.get("ports") if isinstance(state.get("ports"), dict) else {}
    assert isinstance(saved, dict)
    fresh = iter(free_ports(len(_PORTS)))
    chosen = {name: ports.get(name) or saved.get(name) or next(fresh) for name in _PORTS}
    state["ports"] = chosen
    state.setdefault("connection_string", new_connection_string())
    state.setdefault("cluster_id", _cluster_id())
    state["pid"] = None
    _save_state(layout, state)

    if not (layout.tls / "server.pem").exists():
        certs.issue(layout.tls)
    if not layout.jwks.exists():
        certs.issue_signing_key(layout.oauth, OAUTH_KEY_ID)
    layout.properties.write_text(
        _server_properties(
            layout,
            chosen,
            str(state["connection_string"]),
            reauth_ms=reauth_ms,
            auto_create_topics=auto_create_topics,
        )
    )
    layout.properties.chmod(0o600)
    layout.log4j.write_text(_log4j_properties(layout))

    if not (layout.storage / "meta.properties").exists():
        result = subprocess.run(
            [
                java,
                f"-Dlog4j2.configurationFile={layout.log4j}",
                "-cp",
                f"{lib}/*",
                "kafka.tools.StorageTool",
                "format",
                "--config",
                str(layout.properties),
                # One argument: a base64 id may start with "-", which argparse
                # would take for an option.
                f"--cluster-id={state['cluster_id']}",
                "--standalone",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise LocalKafkaError(
                f"formatting KRaft storage failed:\n{(result.stdout + result.stderr).strip()}"
            )
    return state


def start(
    data_dir: Path,
    *,
    plaintext_port: int | None = None,
    sasl_ssl_port: int | None = None,
    reauth_ms: int | None = None,
    auto_create_topics: bool = False,
    timeout: float = 60.0,
    bind_to_parent: bool = False,
) -> Broker:
    """Start the broker of *data_dir* and return once it answers Kafka requests.

    Ports are picked free unless given, and reused on a restart of the same
    directory. *reauth_ms* is how long an OAUTHBEARER session lasts before the
    client must re-authenticate (default: as long as its token is valid).
    *auto_create_topics* makes a Metadata request create a missing topic, as
    Event Hubs does for an identity with Manage rights.
    With *bind_to_parent* the broker dies with the calling process.
    Raises LocalKafkaError, with the broker's log tail, when it cannot start.
    """
    layout = _Layout(data_dir.resolve())
    if (pid := _running_pid(layout)) is not None:
        raise LocalKafkaError(f"a broker already runs in {layout.root} (pid {pid})")
    java = java_executable()
    lib = ensure_jars()
    requested = {
        "plaintext": plaintext_port,
        "sasl_ssl": sasl_ssl_port,
        "oauth": None,
        "controller": None,
    }
    state = _prepare(
        layout, requested, java, lib, reauth_ms=reauth_ms, auto_create_topics=auto_create_topics
    )

    preexec: Callable[[], None] | None = _die_with_parent if bind_to_parent else None
    with layout.stdout_file.open("ab") as out:
        proc = subprocess.Popen(
            [
                java,
                *_HEAP,
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={layout.log4j}",
                # Kafka 4 fetches a JWKS only from URLs it is told to trust.
                f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={layout.jwks.as_uri()}",
                "-cp",
                f"{lib}/*",
                _MAIN_CLASS,
                str(layout.properties),
            ],
            cwd=layout.root,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec,  # noqa: PLW1509  (prctl only; no locks taken)
        )
    state["pid"] = proc.pid
    state["front_pid"] = _start_front(layout, state, preexec)
    _save_state(layout, state)
    broker = _broker(layout, state, proc.pid)

    deadline = time.monotonic() + timeout
    # No event tells us the broker is ready, so ask it until it answers.
    while not (_answers(broker.plaintext) and _accepts(broker.sasl_ssl)):
        if (code := proc.poll()) is not None:
            _stop_front(layout)
            raise LocalKafkaError(f"the broker exited with status {code}:\n{_tail(layout)}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            _stop_front(layout)
            raise LocalKafkaError(
                f"the broker did not answer within {timeout:.0f} s:\n{_tail(layout)}"
            )
        time.sleep(0.1)
    _CHILDREN[proc.pid] = proc
    return broker


# Brokers this process started: these must be reaped with wait(), or they
# linger as zombies that still look alive to a pid check.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _front_pid(layout: _Layout) -> int | None:
    """The pid of the Event Hubs front of *layout*, if it still runs."""
    pid = _load_state(layout).get("front_pid")
    if not isinstance(pid, int) or not _alive(pid):
        return None
    cmd = _cmdline(pid)
    return pid if _FRONT_MODULE in cmd and str(layout.root) in cmd else None


def _start_front(
    layout: _Layout, state: dict[str, object], preexec: Callable[[], None] | None
) -> int:
    """Start the Event Hubs front before the broker's EVENTHUBS listener.

    A process of its own, so that it outlives ``python -m localkafka start``
    as the broker does.
    """
    _stop_front(layout)
    ports = state["ports"]
    assert isinstance(ports, dict)
    package_root = str(Path(__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            x for x in (package_root, os.environ.get("PYTHONPATH", "")) if x
        ),
    }
    with (layout.root / "front.stderr").open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                _FRONT_MODULE,
                str(layout.root),
                str(ports["sasl_ssl"]),
                str(ports["eventhubs_inner"]),
                "--host",
                HOST,
            ],
            cwd=layout.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec,  # noqa: PLW1509  (prctl only; no locks taken)
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def _stop_front(layout: _Layout) -> None:
    pid = _front_pid(layout)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.wait(10)
        return
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def stop(data_dir: Path, timeout: float = 30.0) -> bool:
    """Stop the broker of *data_dir* cleanly (SIGTERM, then SIGKILL after *timeout*).

    Returns whether a broker was running. Data and settings stay for a restart.
    """
    layout = _Layout(data_dir.resolve())
    _stop_front(layout)
    pid = _running_pid(layout)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    child = _CHILDREN.pop(pid, None)
    deadline = time.monotonic() + timeout
    if child is not None:
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    else:
        # Not our child: nothing to wait() on, so watch /proc until it is gone.
        killed = False
        while _alive(pid):
            if time.monotonic() > deadline:
                if killed:
                    raise LocalKafkaError(f"the broker (pid {pid}) survived SIGKILL")
                os.kill(pid, signal.SIGKILL)
                killed = True
                deadline = time.monotonic() + 10
            time.sleep(0.05)
    state = _load_state(layout)
    state["pid"] = None
    _save_state(layout, state)
    return True
