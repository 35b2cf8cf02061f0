"""``python -m consumer``: wires settings, the Kafka client and the poll loop."""

import sys

from kafka import KafkaConsumer

from common import runner
from common.client import connect
from common.config import ConsumerPlan, ConsumerSettings, resolve
from common.health import Health
from common.shutdown import Shutdown
from consumer.client import ConsumerClient
from consumer.service import ConsumerService

DESCRIPTION = "Consume a Kafka topic or an Azure Event Hub as a member of a consumer group."


def run(plan: ConsumerPlan, health: Health, shutdown: Shutdown) -> None:
    client: ConsumerClient | None = connect(
        lambda: KafkaConsumer(**plan.kafka), shutdown, health, "consumer"
    )
    if client is not None:
        ConsumerService(plan, client, health, shutdown).run()


def main() -> int:
    return runner.main("consumer", ConsumerSettings, resolve, DESCRIPTION, run)


if __name__ == "__main__":
    sys.exit(main())
