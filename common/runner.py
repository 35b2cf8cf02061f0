"""The life of a service process, the same for producer and consumer.

Settings are read and resolved into a plan before anything else happens;
then logging, the HTTP endpoint and signal handling are set up, and the
service's ``run`` is called with the plan.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import structlog
from kafka.errors import KafkaConfigurationError

from common import events
from common.config import (
    ConfigError,
    ConsumerPlan,
    EventHubsEntra,
    KafkaSettings,
    ProducerPlan,
    argument_parser,
    load,
    parse_overrides,
    unread_variables,
)
from common.entra import TOKEN_PATTERN
from common.failure import ServiceFailed
from common.health import Health
from common.http import HttpServer
from common.logging import configure
from common.shutdown import Shutdown
from common.tracing import Tracing, TracingSettings, read_settings

#: Exit status for settings that cannot work (as argparse uses for bad usage).
EXIT_CONFIG = 2
#: Exit status when the broker refuses us, the metrics port cannot be bound, or
#: the service meets what it cannot handle (a codec it lacks).
EXIT_REFUSED = 1
#: Allocations between two collections of Python's youngest generation (700 by
#: default): kafka-python's futures form reference cycles that live for the
#: milliseconds a send is in flight, and should die young, not be promoted.
YOUNG_COLLECTION_THRESHOLD = 50_000
S = TypeVar("S", bound=KafkaSettings)
P = TypeVar("P", ProducerPlan, ConsumerPlan)


def main(
    service: str,
    model: type[S],
    resolve: Callable[[S], P],
    description: str,
    run: Callable[[P, Health, Shutdown, Tracing], None],
    *,
    argv: Sequence[str] | None = None,
) -> int:
    """Run *service*; returns the process exit status."""
    parser = argument_parser(model, prog=f"python -m {service}", description=description)
    overrides = parse_overrides(parser, argv)
    try:
        plan, tracing_settings = _settled(service, model, resolve, overrides)
    except ConfigError as exc:
        print(f"{service}: {exc.report()}", file=sys.stderr, end="")
        return EXIT_CONFIG

    settings = plan.settings
    security = plan.connection.security
    entra = isinstance(security, EventHubsEntra)
    configure(
        service,
        settings.log_level,
        settings.log_format,
        secrets=plan.secrets + tracing_settings.secrets,
        secret_patterns=[TOKEN_PATTERN] if entra else [],
        trace_ids=tracing_settings.enabled,
    )
    log = structlog.get_logger()
    for variable, meant in unread_variables(os.environ):
        log.warning(events.SETTING_UNREAD, variable=variable, did_you_mean=meant)
    if not security.verifies_tls:
        log.warning(events.TLS_VERIFICATION_DISABLED, setting="KAFKA_SSL_VERIFY=false")

    tracing = Tracing.start(tracing_settings)
    _tune_garbage_collector()
    shutdown = Shutdown()
    shutdown.install()
    health = Health()
    try:
        server = HttpServer(settings.metrics_host, settings.metrics_port, health)
    except OSError as exc:
        log.error(
            events.SERVICE_FAILED,
            reason="metrics_port_unavailable",
            metrics_host=settings.metrics_host,
            metrics_port=settings.metrics_port,
            error=f"{exc.strerror}: set METRICS_PORT to a free port (METRICS_PORT=0 picks one)",
        )
        tracing.stop()
        return EXIT_REFUSED
    log.info(
        events.SERVICE_STARTED,
        metrics_port=server.port,
        topic=plan.topic,
        bootstrap_servers=",".join(plan.connection.bootstrap_servers),
        security_protocol=security.security_protocol,
        sasl_mechanism=plan.kafka.get("sasl_mechanism"),
    )
    try:
        if isinstance(security, EventHubsEntra):
            # The first token now: a credential that cannot sign in is one clear line.
            security.tokens.start()
        run(plan, health, shutdown, tracing)
    except ServiceFailed as exc:
        log.error(events.SERVICE_FAILED, reason=exc.reason, error=exc.detail, exc_info=exc.cause)
        return exc.exit_status
    except KafkaConfigurationError as exc:
        # Our validation should have caught it; if not, it is still the user's settings.
        log.error(events.SERVICE_FAILED, reason="invalid_client_settings", error=str(exc))
        return EXIT_CONFIG
    finally:
        tracing.stop()
        server.close()
    log.info(events.SERVICE_STOPPED, signal=shutdown.signal_name)
    return 0


def _settled(
    service: str,
    model: type[S],
    resolve: Callable[[S], P],
    overrides: Mapping[str, object],
) -> tuple[P, TracingSettings]:
    """The plan and OTEL_*'s tracing settings; one ConfigError naming every problem of both."""
    problems: list[str] = []
    errors: list[BaseException] = []
    plan = tracing = None
    try:
        plan = resolve(load(model, overrides))
    except ConfigError as exc:
        problems += exc.problems
        errors += exc.errors
    try:
        tracing = read_settings(os.environ, service)
    except ConfigError as exc:
        problems += exc.problems
    if plan is None or tracing is None:
        raise ConfigError(problems, errors)
    return plan, tracing


def _tune_garbage_collector() -> None:
    """Keep Python's cyclic garbage collector off the objects the imports and setup made,
    and let the short-lived ones of the hot loops die young.

    At full speed thousands of sends are in flight, each a few objects that
    live for milliseconds; they pushed the collector into a full collection
    every second or so, each scanning every object the imports had made;
    frozen, they are never scanned. A young generation of
    YOUNG_COLLECTION_THRESHOLD allocations lets most of them be freed before
    they are promoted and scanned again (figures: docs/performance.md).
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)
