"""``python -m producer``: wires settings, the Kafka client and the send loop."""

import sys

from kafka import KafkaProducer

from common import runner
from common.client import connect, producer_args
from common.config import ProducerSettings
from common.http import Health
from common.shutdown import Shutdown
from producer.service import ProducerService

DESCRIPTION = "Send numbered messages to a Kafka topic or an Azure Event Hub until stopped."


def run(settings: ProducerSettings, health: Health, shutdown: Shutdown) -> None:
    def new_client() -> KafkaProducer | None:
        return connect(lambda: KafkaProducer(**producer_args(settings)), shutdown.event, "producer")

    ProducerService(settings, new_client, health, shutdown).run()


def main() -> int:
    return runner.main("producer", ProducerSettings, DESCRIPTION, run)


if __name__ == "__main__":
    sys.exit(main())
