"""``python -m consumer``: wires settings, the Kafka client and the poll loop."""

import sys

from kafka import KafkaConsumer

from common import runner
from common.client import connect, consumer_args
from common.config import ConsumerSettings
from common.http import Health
from common.shutdown import Shutdown
from consumer.service import ConsumerService

DESCRIPTION = "Consume a Kafka topic or an Azure Event Hub as a member of a consumer group."


def run(settings: ConsumerSettings, health: Health, shutdown: Shutdown) -> None:
    client = connect(lambda: KafkaConsumer(**consumer_args(settings)), shutdown.event, "consumer")
    if client is not None:
        ConsumerService(settings, client, health, shutdown).run()


def main() -> int:
    return runner.main("consumer", ConsumerSettings, DESCRIPTION, run)


if __name__ == "__main__":
    sys.exit(main())
