"""Connecting a kafka-python client, and telling a refusal from a broker that is not there yet.

A refused login or certificate will not get better by retrying: it ends the
service with one clear line. Anything else is retried with the shared
backoff, for as long as it takes, while the service stays alive and says
it is not ready.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import structlog
from kafka.errors import (
    AuthorizationError,
    KafkaConfigurationError,
    KafkaError,
    KafkaTimeoutError,
    SaslAuthenticationFailedError,
)

from common import events
from common.backoff import Backoff
from common.config import BOOTSTRAP_TIMEOUT_MS
from common.failure import ServiceFailed
from common.health import Health
from common.shutdown import Shutdown


class BrokerRefused(ServiceFailed):
    """The broker answered but will not have us: retrying cannot help."""


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
        if isinstance(error, SaslAuthenticationFailedError) and "invalid_token" in str(error):
            return BrokerRefused(
                "authentication_failed",
                "the broker refused the Microsoft Entra ID token (invalid_token): check that "
                "EVENTHUBS_NAMESPACE is the namespace the token is for, and that the "
                "identity's token is current",
            )
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


def connect(
    factory: Callable[[], Client],
    shutdown: Shutdown,
    health: Health,
    what: str,
    servers: Sequence[str],
) -> Client | None:
    """Build a kafka-python client, retrying with backoff while no broker answers.

    Returns None when a stop is requested while waiting. Raises BrokerRefused
    when the broker rejects our credentials or we reject its certificate.
    """
    log = structlog.get_logger()
    backoff = Backoff()
    while not shutdown.requested:
        # One try blocks for up to the bootstrap timeout: alive all the while.
        health.expect(BOOTSTRAP_TIMEOUT_MS / 1000)
        try:
            return _attempt(factory)
        except BrokerUnavailable as exc:
            delay = backoff.next()
            health.set_ready(False, f"no broker reachable yet; retrying: {exc}")
            log.warning(
                events.BROKER_UNAVAILABLE,
                client=what,
                bootstrap_servers=",".join(servers),
                attempt=backoff.attempt,
                retry_in_s=round(delay, 2),
                error=str(exc),
            )
            health.expect(delay)
            shutdown.wait(delay)
    return None


def _attempt(factory: Callable[[], Client]) -> Client:
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
