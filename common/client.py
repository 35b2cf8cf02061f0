"""kafka-python client arguments, built in one place, and connecting with retries.

Both services, the tests and the benchmarks take their client arguments from
here, so a setting changed once is changed everywhere.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import structlog
import tenacity
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
from kafka.errors import (
    AuthorizationError,
    KafkaConfigurationError,
    KafkaError,
    KafkaTimeoutError,
    SaslAuthenticationFailedError,
)

from common import eventhubs
from common.config import ConsumerSettings, KafkaSettings, ProducerSettings

#: How long one connection attempt may take; short, so SIGTERM is never kept waiting.
BOOTSTRAP_TIMEOUT_MS = 5_000
#: Longest wait between two reconnects to a broker (the Java client's default).
RECONNECT_BACKOFF_MAX_MS = 1_000

_ASSIGNORS: dict[str, type] = {
    "cooperative-sticky": CooperativeStickyAssignor,
    "sticky": StickyPartitionAssignor,
    "range": RangePartitionAssignor,
    "roundrobin": RoundRobinPartitionAssignor,
}


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext:
    """A TLS context that verifies the broker unless verification was turned off."""
    context = ssl.create_default_context(
        cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None
    )
    if not settings.ssl_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def client_args(settings: KafkaSettings, service: str) -> dict[str, Any]:
    """Arguments every kafka-python client of ours takes."""
    args: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "client_id": settings.client_id_for(service),
        "security_protocol": settings.security_protocol,
        "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
        # kafka-python backs off reconnects up to 30 s, the Java client up to 1 s.
        # After a broker restart 30 s is long enough for the group to evict a
        # consumer (session timeout) and re-deliver what it had processed.
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
    }
    if settings.uses_tls:
        args["ssl_context"] = ssl_context(settings)
    if settings.security_protocol.startswith("SASL_"):
        assert settings.sasl_password is not None  # guaranteed by validation
        args["sasl_mechanism"] = settings.sasl_mechanism
        args["sasl_plain_username"] = settings.sasl_username
        args["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    if settings.is_eventhubs:
        args.update(eventhubs.RECOMMENDED_CLIENT_SETTINGS)
    return args


def producer_args(settings: ProducerSettings) -> dict[str, Any]:
    """KafkaProducer arguments: idempotent, acks from all in-sync replicas."""
    args = client_args(settings, "producer")
    args.update(
        acks="all",
        enable_idempotence=True,
        compression_type=None if settings.compression_type == "none" else settings.compression_type,
        linger_ms=settings.linger_ms,
        delivery_timeout_ms=settings.delivery_timeout_ms,
        # send() and partitions_for() wait this long for metadata or buffer
        # space before failing; short, so a SIGTERM is never kept waiting.
        max_block_ms=3_000,
    )
    if settings.is_eventhubs:
        args.update(eventhubs.RECOMMENDED_PRODUCER_SETTINGS)
    args["request_timeout_ms"] = settings.effective_request_timeout_ms
    return args


def consumer_args(settings: ConsumerSettings) -> dict[str, Any]:
    """KafkaConsumer arguments: group member, manual commits after processing."""
    args = client_args(settings, "consumer")
    args.update(
        group_id=settings.group_id,
        # Offsets are committed by the service once a message is processed,
        # never by a timer that does not know what was processed.
        enable_auto_commit=False,
        auto_offset_reset=settings.auto_offset_reset,
        partition_assignment_strategy=(_ASSIGNORS[settings.assignment_strategy],),
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        max_poll_records=settings.max_poll_records,
        max_poll_interval_ms=settings.max_poll_interval_ms,
    )
    return args


class BrokerRefused(Exception):
    """The broker answered but will not have us: retrying cannot help."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class BrokerUnavailable(Exception):
    """No broker could be reached this time; a later attempt may succeed."""


class _BootstrapWitness(logging.Handler):
    """Takes kafka-python's log records while a client bootstraps, and keeps their cause.

    kafka-python retries a refused bootstrap until its timeout, logging each
    try, and then raises a plain timeout; the cause survives only as the
    exception object in its records' arguments. Kept here instead of printed,
    those records become one line of ours: ``service.failed`` for a refusal,
    ``broker.unavailable`` with the last cause for anything else.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.refusal: BrokerRefused | None = None
        self.last_error: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            # The closing timeout says only that the tries ran out; keep their cause.
            if isinstance(arg, BaseException) and not isinstance(arg, KafkaTimeoutError):
                text, kind = str(arg), type(arg).__name__
                # kafka-python's errors name their class already; others do not.
                self.last_error = text if text.startswith(kind) else f"{kind}: {text}"
                if (refusal := classify(arg)) is not None:
                    self.refusal = refusal


def classify(exc: BaseException) -> BrokerRefused | None:
    """A refusal that no retry will fix, or None for a failure worth retrying."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for error in chain:
        if isinstance(error, SaslAuthenticationFailedError):
            return BrokerRefused(
                "authentication_failed",
                "the broker rejected the SASL credentials (check the connection string "
                "or KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD)",
            )
        if isinstance(error, AuthorizationError):
            return BrokerRefused("authorization_failed", type(error).__name__)
        if isinstance(error, ssl.SSLCertVerificationError):
            return BrokerRefused(
                "tls_verification_failed",
                f"the broker's certificate is not trusted ({error.verify_message}); "
                "set KAFKA_SSL_CAFILE to the CA that issued it",
            )
    return None


@contextmanager
def _witness() -> Iterator[_BootstrapWitness]:
    witness = _BootstrapWitness()
    logger = logging.getLogger("kafka")
    logger.addHandler(witness)
    logger.propagate = False
    try:
        yield witness
    finally:
        logger.propagate = True
        logger.removeHandler(witness)


Client = TypeVar("Client")


def connect(factory: Callable[[], Client], stop: threading.Event, what: str) -> Client | None:
    """Build a kafka-python client, retrying with backoff while no broker answers.

    Returns None when *stop* is set while waiting. Raises BrokerRefused when
    the broker rejects our credentials or we reject its certificate.
    """
    log = structlog.get_logger()

    def attempt() -> Client:
        with _witness() as witness:
            try:
                return factory()
            except KafkaConfigurationError:
                raise  # settings kafka-python refuses: no retry can help
            except KafkaError as exc:
                if witness.refusal is not None:
                    raise witness.refusal from None
                if (refusal := classify(exc)) is not None:
                    raise refusal from None
                raise BrokerUnavailable(witness.last_error or str(exc)) from None

    def before_sleep(state: tenacity.RetryCallState) -> None:
        log.warning(
            "broker.unavailable",
            client=what,
            attempt=state.attempt_number,
            retry_in_s=round(state.upcoming_sleep, 2),
            error=str(state.outcome.exception()) if state.outcome else None,
        )

    def sleep(seconds: float) -> None:
        # Waiting on the stop event instead of time.sleep lets SIGTERM end a backoff at once.
        stop.wait(seconds)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(BrokerUnavailable),
        wait=tenacity.wait_exponential_jitter(initial=0.5, max=30),
        stop=lambda _state: stop.is_set(),
        sleep=sleep,
        before_sleep=before_sleep,
        retry_error_callback=lambda _state: None,
        reraise=True,
    )
    result: Client | None = retrying(attempt)
    return result
