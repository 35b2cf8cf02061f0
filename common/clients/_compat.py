"""Where kafka-python falls short of what the services need, worked around in one place.

Every workaround here leans on kafka-python's private parts or on the text
of its log messages, so each one is for the version it was reviewed against,
:data:`REVIEWED_FOR`, which is also the version pyproject.toml pins.
``tests/test_kafka_compat.py`` fails when the installed kafka-python is any
other: upgrading it is a deliberate step, in which each function below is
checked again, against its reason and its upstream reference, and dropped
once kafka-python no longer needs it.

Only the adapters of ``_kafka.py`` call these: :func:`install` puts the
process-wide ones in place when the first client is made, and the others
are applied in the client methods they concern.
"""

from __future__ import annotations

import functools
import logging
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import kafka
import structlog
from kafka.errors import (
    InconsistentGroupProtocolError,
    KafkaConnectionError,
    KafkaTimeoutError,
    RequestTimedOutError,
)
from kafka.net.connection import KafkaConnection
from kafka.protocol.broker_version_data import BrokerVersionData
from kafka.protocol.metadata import ApiVersionsRequest

from common import events
from common.logging import REPEAT_INTERVAL_S

#: The kafka-python version every workaround below was written and reviewed for.
REVIEWED_FOR = "3.0.12"

_lock = threading.Lock()
_installed = False


def install() -> None:
    """Put the process-wide workarounds in place; calling it again does nothing."""
    global _installed  # noqa: PLW0603  (one process, one set of patches)
    with _lock:
        if _installed:
            return
        _installed = True
    lower_api_versions_after_a_reset()
    logging.getLogger("kafka.net.selector").addFilter(drop_slow_task_warning)
    logging.getLogger("kafka.net.connection").addFilter(drop_per_answer_throttle_warning)
    logging.getLogger("kafka.coordinator").addFilter(drop_assignor_mismatch_line)
    logging.getLogger("kafka.cluster").addFilter(note_unknown_topic)
    watch = CoordinatorWatch()
    logging.getLogger("kafka.net.connection").addFilter(watch.remember_connection_loss)
    logging.getLogger("kafka.coordinator").addFilter(watch.say_coordinator_unavailable)


def installed_version() -> str:
    """The kafka-python this process runs."""
    version: str = kafka.__version__
    return version


# --- ApiVersions ------------------------------------------------------------

_ceiling: int | None = None
_Method = Callable[..., Awaitable[Any]]


def lower_api_versions_after_a_reset() -> None:
    """After a connection is reset during ApiVersions, later ones ask one version lower.

    For: kafka-python 3.0.12, which opens every connection with ApiVersions v4
    and, after a reset, asks v4 again, for ever. Without it: kafka-python
    never connects to an endpoint that resets v4, as Event Hubs did from April
    to September 2025 (``KafkaTimeoutError: Unable to bootstrap``). Upstream:
    dpkp/kafka-python#2602, fixed in 2.x by #2603 ("Always try
    ApiVersionsRequest v0, even on broker disconnect") and lost in 3.x; also
    franz-go#1022. How: wraps the private ``KafkaConnection._get_api_versions``;
    each step down is logged once (``connection.api_versions_lowered``). A
    broker that merely restarted costs at most a version nobody needs: v0 to
    v3 return the same list of APIs.
    """
    original = KafkaConnection._get_api_versions
    KafkaConnection._get_api_versions = _capping(original)


def _lower(tried: int) -> None:
    global _ceiling  # noqa: PLW0603  (one process-wide fact about the endpoint)
    with _lock:
        if tried == 0 or (_ceiling is not None and _ceiling < tried):
            return
        _ceiling = tried - 1
    # Info, not a warning: the client adapted, and nothing is wrong with the settings.
    structlog.get_logger().info(
        events.API_VERSIONS_LOWERED,
        refused_version=tried,
        next_version=tried - 1,
        reason="the broker closed the connection on ApiVersions",
    )


def _capped(known: BrokerVersionData, top: int) -> BrokerVersionData:
    # A connection to a broker the client already knows takes its ApiVersions
    # version from what that broker listed, not from _api_versions_idx.
    versions = dict(known.api_versions or {})
    low, high = versions.get(ApiVersionsRequest.API_KEY, (0, top))
    versions[ApiVersionsRequest.API_KEY] = (low, min(high, top))
    return BrokerVersionData(api_versions=versions)


def _capping(original: _Method) -> _Method:
    @functools.wraps(original)
    async def get_api_versions(self: Any, *args: Any, **kwargs: Any) -> Any:
        if (top := _ceiling) is not None:
            self._api_versions_idx = min(self._api_versions_idx, top)
            if self.broker_version_data is not None:
                self.broker_version_data = _capped(self.broker_version_data, top)
        known = self.broker_version_data
        tried = (
            self._api_versions_idx
            if known is None
            else known.api_version(ApiVersionsRequest, max_version=self._api_versions_idx)
        )
        try:
            return await original(self, *args, **kwargs)
        except KafkaConnectionError:
            _lower(tried)
            raise

    return get_api_versions


# --- Topic auto-creation ------------------------------------------------------


def honour_auto_creation_setting(client: object) -> None:
    """Make a new client obey its own ``allow_auto_create_topics``.

    For: kafka-python 3.0.12, whose network client builds the cluster
    metadata without that setting, so every Metadata request asks the broker
    to create a missing topic. Without it: Event Hubs creates an event hub
    for any misspelt topic when the identity has Manage rights, as the
    walkthrough's ``RootManageSharedAccessKey`` has. Upstream: none filed
    that we found (dpkp/kafka-python#2083 is the setting's introduction).
    How: copies the setting into the private ``_cluster`` (KafkaConsumer) or
    ``_metadata`` (KafkaProducer) config. tests/test_missing_topic.py fails
    if this stops working.
    """
    config = getattr(client, "config", None)
    for name in ("_cluster", "_metadata"):  # KafkaConsumer, KafkaProducer
        cluster_config = getattr(getattr(client, name, None), "config", None)
        if isinstance(config, dict) and isinstance(cluster_config, dict):
            cluster_config["allow_auto_create_topics"] = config["allow_auto_create_topics"]


# --- The idempotent producer ----------------------------------------------------


def in_fatal_state(producer: object) -> bool:
    """Whether a producer's idempotence has given up for good, failing every later send.

    For: kafka-python 3.0.12, which takes any non-retriable error on a batch
    (PolicyViolation from a throttled Event Hubs, a record the broker
    refuses) as fatal for an idempotent producer without transactions,
    against its own comment that it "just fails the batch"; the Java client
    bumps the producer epoch instead. Without it: after one such error every
    later send fails at once, for as long as the process runs. Upstream: none
    filed that we found. How: reads the private ``_transaction_manager``;
    the service then replaces the client (``producer.client_failed``).
    """
    manager = getattr(producer, "_transaction_manager", None)
    has_fatal_error = getattr(manager, "has_fatal_error", None)
    return bool(callable(has_fatal_error) and has_fatal_error())


def force_close(producer: object) -> None:
    """Stop a producer's IO thread after ``close()`` gave up, failing what it still holds.

    For: kafka-python 3.0.12, whose ``close(timeout)`` flushes first and,
    on a timeout, raises before it stops the IO thread. Without it: the old
    client's thread goes on retrying beside its replacement, and its
    unanswered sends are never answered. Upstream: none filed that we found.
    How: calls the private ``_sender.force_close``.
    """
    sender: object = getattr(producer, "_sender", None)
    stop = getattr(sender, "force_close", None)
    if callable(stop):
        stop()


# --- The group's heartbeat -------------------------------------------------------------


def last_heartbeat_answer(consumer: object) -> float | None:
    """When the group last answered this member's heartbeat (``time.monotonic``); None
    for a client that does not say.

    For: kafka-python 3.0.12, which after a network cut longer than the
    session timeout finds the coordinator again, resets its own session
    timer, and hands out the records it fetched meanwhile before its next
    heartbeat learns that the group expelled the member
    (``UnknownMemberIdError``). Without it: after a 20 s cut at 50 records/s,
    1,390 records handled as an expelled member and again by the member that
    took over (tests/test_network_cut.py). Upstream: none filed that we found;
    the Java client's heartbeat thread rejoins before handing records out.
    How: reads the private ``_coordinator.heartbeat.last_receive``.
    """
    heartbeat = getattr(getattr(consumer, "_coordinator", None), "heartbeat", None)
    answered = getattr(heartbeat, "last_receive", None)
    return answered if isinstance(answered, float) else None


# --- Waiting inside a rebalance listener -----------------------------------------


def io_sleep(consumer: object, seconds: float) -> Awaitable[object]:
    """An awaitable that lets *seconds* pass on the consumer's IO thread without blocking it.

    For: kafka-python 3.0.12, which awaits an ``AsyncConsumerRebalanceListener``
    on its own IO loop (not asyncio's), where the heartbeat runs too: a listener
    that waits for records still being handled must yield to that loop, or the
    group stops hearing from the member. Upstream: the loop's ``sleep`` is not
    public. How: ``_coordinator._net.sleep``.
    """
    made: Awaitable[object] = consumer._coordinator._net.sleep(seconds)  # type: ignore[attr-defined]
    return made


# --- Paused partitions ------------------------------------------------------------


def unblock_parked_fetches(consumer: object) -> None:
    """Let a resumed partition's parked records come back, so it is fetched again.

    For: kafka-python 3.0.12, whose fetcher parks what it fetched for a
    paused partition (KAFKA-7548) and brings it back on resume only while
    no other partition's records are next in line (``_next_partition_records
    is None``); but a next-in-line that was read to its end is left in place,
    empty, not None. Without it: after a partition was paused and resumed
    (a handler's retry), once a rebalance had passed, the consumer never
    fetched it again, nor any other parked partition: polls returned nothing
    for ever with records waiting. Upstream: none filed that we found;
    dpkp/kafka-python#2981 brought the parking. How: sets the private
    ``_fetcher._next_partition_records`` to None when it is empty; called
    before each poll. tests/test_dead_letters.py's rebalance test stalls
    without it.
    """
    fetcher = getattr(consumer, "_fetcher", None)
    next_in_line = getattr(fetcher, "_next_partition_records", None)
    if next_in_line is not None and not next_in_line:
        fetcher._next_partition_records = None  # type: ignore[union-attr]


# --- Log lines kafka-python writes and we say better, or not at all ---------------

#: kafka-python's per-answer warning while throttled; common/throttle.py says it once.
_THROTTLED = "throttled by broker"


def drop_slow_task_warning(record: logging.LogRecord) -> bool:
    """False for kafka-python's "Task ... ran for ... threshold" warning.

    For: kafka-python 3.0.12's IO loop, which warns when one of its steps
    takes over 0.1 s of wall time. At full speed our loops hold the GIL for
    Python's whole switch interval (5 ms) at a time, so a step needing the
    GIL a few dozen times passes that threshold while waiting, not spinning.
    Without it: a warning every few seconds that asks for nothing to be done.
    Upstream: none; the threshold is kafka-python's design. How: matches the
    message text; tests/test_kafka_compat.py makes kafka-python raise the real
    warning and fails if the text changes.
    """
    message = str(record.msg)
    return not (message.startswith("Task ") and "threshold). It is blocking" in message)


def drop_per_answer_throttle_warning(record: logging.LogRecord) -> bool:
    """False for kafka-python's warning per throttled answer.

    For: kafka-python 3.0.12, which warns on every answer with a
    ``throttle_time_ms``: hundreds a minute under sustained throttling.
    ``common/throttle.py`` exports the figure and logs ``broker.throttled``
    once per interval instead. Upstream: none. How: matches the message text.
    """
    return _THROTTLED not in str(record.msg)


def drop_assignor_mismatch_line(record: logging.LogRecord) -> bool:
    """False for kafka-python's own line about a group's mismatched assignors.

    For: kafka-python 3.0.12, which logs the bare error name; the consumer's
    ``group.protocol_mismatch`` names the setting that fixes it. Without it:
    two lines for one problem. Upstream: none. How: matches the record's
    arguments, and only strings (some of them cannot be compared with one).
    """
    args = record.args if isinstance(record.args, tuple) else ()
    name = InconsistentGroupProtocolError.__name__
    return not any(isinstance(arg, str) and arg == name for arg in args)


#: kafka-python's line on every metadata answer that lacks a topic it tracks.
_UNKNOWN_TOPIC = "Topic %s not found in cluster metadata"
#: Per topic, when the broker last said it has no such topic (the monotonic clock).
_unknown_topics: dict[str, float] = {}


def note_unknown_topic(record: logging.LogRecord) -> bool:
    """False for kafka-python's "Topic ... not found in cluster metadata", whose topic is
    remembered: the broker answered, and has no such topic.

    For: kafka-python 3.0.12, whose producer waits for a missing topic until
    ``max_block_ms`` and then raises the same KafkaTimeoutError as when no
    broker answers, logging this at ERROR on each metadata answer meanwhile.
    Its record is the only evidence that the topic, not the broker, is missing.
    The services say it once per interval (``topic.missing``, common/topics.py).
    Upstream: none. How: matches the message template; tests/test_missing_topic.py
    meets it from a real broker.
    """
    if record.msg != _UNKNOWN_TOPIC or not isinstance(record.args, tuple) or not record.args:
        return True
    _unknown_topics[str(record.args[0])] = time.monotonic()
    return False


def unknown_since(topic: str, since: float) -> bool:
    """Whether a broker has said, since *since* (the monotonic clock), that *topic* does not
    exist."""
    return _unknown_topics.get(topic, -1.0) >= since


# --- The group coordinator, said once with its cause ------------------------------

#: kafka-python's line when a request to the coordinator, or the search for it, fails.
_REQUEST_FAILED = "Error sending %s to node %s [%s]"
#: kafka-python's line when it gives up on the coordinator it knew.
_COORDINATOR_DEAD = "Marking the coordinator dead (node %s) for group %s: %s."
#: kafka-python's line for a connection that failed or dropped; its args are (connection, error).
_CONNECTION_LOST = "%s: Connection lost: %s"
#: kafka-python's node id for a group coordinator's own connection.
_COORDINATOR_NODE = "coordinator-"
#: How long a connection's failure explains the next "coordinator dead" line.
_CAUSE_FRESH_S = 30.0

Reason = str  # "tls" | "refused" | "timed_out" | "unresolved" | "disconnected" | an error's name


def reason_of(error: object) -> Reason:
    """Why a connection failed, in one word an operator can act on.

    ``tls``: a handshake that failed (a certificate from another CA, a port
    that does not speak TLS); ``refused``: nothing listens there (a broker
    down or restarting); ``timed_out``: no answer at all (a firewall that
    drops packets, a blackhole); ``unresolved``: the name does not resolve;
    ``disconnected``: kafka-python's "Node Disconnected" with no cause known;
    otherwise the error's type name (``NotCoordinatorError``: the
    coordinator moved to another broker, which is routine).
    """
    if isinstance(error, str):
        return "disconnected" if error == "Node Disconnected" else error
    chain: list[BaseException] = []
    current = error if isinstance(error, BaseException) else None
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    text = " ".join(str(e) for e in chain)
    if any(isinstance(e, ssl.SSLError) for e in chain) or "[SSL" in text:
        return "tls"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "ECONNREFUSED" in text:
        return "refused"
    timeouts = (TimeoutError, KafkaTimeoutError, RequestTimedOutError)
    if any(isinstance(e, timeouts) for e in chain) or "timed out" in text:
        return "timed_out"
    if "DNS" in text:
        return "unresolved"
    return type(error).__name__


class CoordinatorWatch:
    """kafka-python's lines about an unreachable group coordinator, as ours with the cause.

    Used by :func:`install`, as two log filters; see :meth:`say_coordinator_unavailable`.
    """

    def __init__(
        self, interval_s: float = REPEAT_INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        #: Per coordinator node: its connection's last failure, and when.
        self._causes: dict[str, tuple[BaseException, float]] = {}
        #: Per reason: when it was last said, and how many were held back since.
        self._said: dict[Reason, tuple[float, int]] = {}

    def remember_connection_loss(self, record: logging.LogRecord) -> bool:
        """Keep a coordinator connection's failure as the cause of the next "dead" line.

        Always True: kafka-python's own line goes on to the repeat limiter.
        """
        args = record.args if isinstance(record.args, tuple) else ()
        if record.msg == _CONNECTION_LOST and len(args) == 2:
            node = str(getattr(args[0], "node_id", ""))
            if node.startswith(_COORDINATOR_NODE) and isinstance(args[1], BaseException):
                with self._lock:
                    self._causes[node] = (args[1], self._clock())
        return True

    def say_coordinator_unavailable(self, record: logging.LogRecord) -> bool:
        """False for kafka-python's lines about a coordinator it cannot reach; ours instead.

        For: kafka-python 3.0.12, which writes "Error sending ... to node"
        and "Marking the coordinator dead" on every try while the group
        coordinator cannot be reached or found, the latter with "Node
        Disconnected" as its reason and the cause (a certificate, a refused
        port, a timeout) only in an earlier line of the connection's.
        Without it: 57,210 lines in 75 s from a consumer whose coordinator's
        certificate came from another CA, and none that said so. Upstream:
        none filed that we found. How: matches the message text, and reads
        the connection's node id from the "Connection lost" record's
        arguments; ``coordinator.unavailable`` is written at once, then at
        most once per interval for the same reason, with a count of the
        tries in between.
        """
        args = record.args if isinstance(record.args, tuple) else ()
        if record.msg == _REQUEST_FAILED and len(args) == 3:
            node, error = str(args[1]), args[2]
        elif record.msg == _COORDINATOR_DEAD and len(args) == 3:
            node, error = str(args[0]), args[2]
        else:
            return True
        now = self._clock()
        with self._lock:
            cause, seen_at = self._causes.pop(node, (None, 0.0))
            if cause is not None and now - seen_at < _CAUSE_FRESH_S:
                error = cause
            reason = reason_of(error)
            said_at, held = self._said.get(reason, (now - self._interval_s, 0))
            if now - said_at < self._interval_s:
                self._said[reason] = (said_at, held + 1)
                return False
            self._said[reason] = (now, 0)
        structlog.get_logger().warning(
            events.COORDINATOR_UNAVAILABLE,
            node=node,
            reason=reason,
            error=_one_line(error),
            repeated=held,
        )
        return False


def _one_line(error: object) -> str:
    if isinstance(error, BaseException):
        text, kind = str(error), type(error).__name__
        return text if text.startswith(kind) else f"{kind}: {text}"
    return str(error)
