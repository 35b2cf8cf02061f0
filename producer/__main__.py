"""``python -m producer``: wires settings, the source, the Kafka client and the send loop."""

import sys
from collections.abc import Iterable

from common import runner
from common.clients import Producer, ProducerClient, connect
from common.config import ProducerPlan, ProducerSettings, resolve
from common.failure import ServiceFailed
from common.health import Health
from common.runner import EXIT_CONFIG
from common.shutdown import Shutdown
from common.tracing import Tracing
from producer import stdin
from producer.feed import Feed
from producer.service import ProducerService

DESCRIPTION = (
    "Send numbered messages to a Kafka topic or an Azure Event Hub until stopped, "
    "or the records of a source until it ends."
)


def run(plan: ProducerPlan, health: Health, shutdown: Shutdown, tracing: Tracing) -> None:
    def new_client() -> ProducerClient | None:
        return connect(
            lambda: Producer(**plan.kafka),
            shutdown,
            health,
            "producer",
            plan.connection.bootstrap_servers,
        )

    source = _source(plan)
    feed = None if source is None else Feed(source)
    ProducerService(plan, new_client, health, shutdown, feed=feed, tracing=tracing).run()


def _source(plan: ProducerPlan) -> Iterable[object] | None:
    """What PRODUCER_SOURCE names, ready to read; one line if it cannot be."""
    named = plan.source
    if named is None:
        return None
    if named == "stdin-json":
        return stdin.json_lines(stdin.read_lines(sys.stdin.fileno()))
    if named == "stdin-text":
        return stdin.text_lines(stdin.read_lines(sys.stdin.fileno()))
    if not callable(named):
        assert not isinstance(named, str)
        return named
    try:
        made = named()
    except Exception as exc:  # noqa: BLE001  (the user's code: any error is theirs)
        raise ServiceFailed(
            "source_unavailable",
            f"PRODUCER_SOURCE={plan.settings.source} could not be opened: "
            f"{type(exc).__name__}: {exc}",
            cause=exc,
        ) from None
    if not isinstance(made, Iterable) or isinstance(made, str | bytes):
        raise ServiceFailed(
            "source_invalid",
            f"PRODUCER_SOURCE={plan.settings.source} gave {type(made).__name__}, "
            "not an iterable of records",
            exit_status=EXIT_CONFIG,
        )
    return made


def main() -> int:
    return runner.main("producer", ProducerSettings, resolve, DESCRIPTION, run)


if __name__ == "__main__":
    sys.exit(main())
