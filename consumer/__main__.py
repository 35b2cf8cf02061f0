"""``python -m consumer``: wires settings, the Kafka clients, the handler and the poll loop."""

import contextlib
import sys
from collections.abc import Callable

from common import runner
from common.clients import Consumer, ConsumerClient, Producer, ProducerClient, connect
from common.config import (
    ConfigError,
    ConsumerPlan,
    ConsumerSettings,
    ProducerArgs,
    env_names,
    resolve,
)
from common.failure import ServiceFailed
from common.health import Health
from common.logging import Redactor
from common.runner import EXIT_CONFIG
from common.shutdown import Shutdown
from common.tracing import Tracing
from consumer import replay
from consumer.dead_letter import DeadLetters
from consumer.event_loop import EventLoop
from consumer.handler import Handler, HandlerInvalid, check_fits, opened
from consumer.outputs import Outputs
from consumer.service import ConsumerService

DESCRIPTION = (
    "Consume a Kafka topic or an Azure Event Hub as a member of a consumer group. "
    "`python -m consumer replay --help`: put dead letters back on the topic they came from."
)


def run(plan: ConsumerPlan, health: Health, shutdown: Shutdown, tracing: Tracing) -> None:
    with contextlib.ExitStack() as stack:
        # Closed last: an async handler's context manager exits on it.
        loop = EventLoop()
        stack.callback(loop.close)
        handler = _open_handler(plan, stack, loop)
        dead_letters = _dead_letters(plan, health, shutdown, tracing)
        if dead_letters is not None:
            stack.callback(dead_letters.close)
            dead_letters.start()
        outputs = _outputs(plan, health, shutdown)
        if outputs is not None:
            stack.callback(outputs.close)
            outputs.start()
        client: ConsumerClient | None = connect(
            lambda: Consumer(**plan.kafka),
            shutdown,
            health,
            "consumer",
            plan.connection.bootstrap_servers,
        )
        if client is not None:
            ConsumerService(
                plan,
                client,
                health,
                shutdown,
                handler=handler,
                dead_letters=dead_letters,
                outputs=outputs,
                tracing=tracing,
                loop=loop,
            ).run()


def _open_handler(plan: ConsumerPlan, stack: contextlib.ExitStack, loop: EventLoop) -> Handler:
    """The handler, opened for the consumer's life; one line if opening it fails."""
    settings = plan.settings
    try:
        handler = stack.enter_context(
            opened(plan.handler, settings.log_message_every, plan.group_id, loop.run)
        )
        names = env_names(ConsumerSettings)
        batch_settings = [
            names[field][0]
            for field in ("batch_max_records", "batch_max_wait_ms")
            if field in settings.model_fields_set
        ]
        check_fits(
            handler,
            ordering=settings.ordering,
            batch_settings=batch_settings,
            exactly_once=settings.processing_guarantee == "exactly_once",
        )
    except HandlerInvalid as exc:
        # Called wrong, like a misspelt name: exit 2, a restart cannot help.
        raise ServiceFailed("handler_invalid", str(exc), exit_status=EXIT_CONFIG) from None
    except ConfigError as exc:
        # The handler's own settings, read with common.config (a secret's file, say).
        raise ServiceFailed(
            "handler_settings_invalid", "; ".join(exc.problems), exit_status=EXIT_CONFIG
        ) from None
    except Exception as exc:  # noqa: BLE001  (the user's code: any error is theirs)
        raise ServiceFailed(
            "handler_unavailable",
            f"CONSUMER_HANDLER={plan.settings.handler} could not be opened: "
            f"{type(exc).__name__}: {exc}",
            cause=exc,
        ) from None
    return handler


def _producer(
    plan: ConsumerPlan, kafka: ProducerArgs, health: Health, shutdown: Shutdown, name: str
) -> Callable[[], ProducerClient | None]:
    """Connects a producer of *kafka*'s arguments when called (again after one is dropped);
    None if the consumer stops first."""

    def client() -> ProducerClient | None:
        made: ProducerClient | None = connect(
            lambda: Producer(**kafka), shutdown, health, name, plan.connection.bootstrap_servers
        )
        return made

    return client


def _dead_letters(
    plan: ConsumerPlan, health: Health, shutdown: Shutdown, tracing: Tracing
) -> DeadLetters | None:
    topic, kafka = plan.settings.dead_letter_topic, plan.dead_letter_kafka
    if topic is None or kafka is None:
        return None

    return DeadLetters(
        topic,
        plan.group_id,
        _producer(plan, kafka, health, shutdown, "dead_letters"),
        kafka["delivery_timeout_ms"] / 1000,
        tracing=tracing if tracing.enabled else None,
        client_id=plan.connection.client_id,
        redact=Redactor(plan.secrets).text,
    )


def _outputs(plan: ConsumerPlan, health: Health, shutdown: Shutdown) -> Outputs | None:
    """What publishes the records the user's handler returns; none for the default one."""
    kafka = plan.output_kafka
    transactional = plan.settings.processing_guarantee == "exactly_once"
    if kafka is None or (plan.handler is None and not transactional):
        return None

    return Outputs(
        plan.settings.output_topic,
        _producer(plan, kafka, health, shutdown, "outputs"),
        timeout_s=kafka["delivery_timeout_ms"] / 1000,
        transactional=transactional,
    )


def main() -> int:
    if sys.argv[1:2] == ["replay"]:
        return replay.main(sys.argv[2:])
    return runner.main("consumer", ConsumerSettings, resolve, DESCRIPTION, run)


if __name__ == "__main__":
    sys.exit(main())
