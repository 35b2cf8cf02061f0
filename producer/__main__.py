"""``python -m producer``: wires settings, the Kafka client and the send loop."""

import sys

from kafka import KafkaProducer

from common import runner
from common.client import connect
from common.config import ProducerPlan, ProducerSettings, resolve
from common.health import Health
from common.shutdown import Shutdown
from producer.client import ProducerClient
from producer.service import ProducerService

DESCRIPTION = "Send numbered messages to a Kafka topic or an Azure Event Hub until stopped."


def run(plan: ProducerPlan, health: Health, shutdown: Shutdown) -> None:
    def new_client() -> ProducerClient | None:
        return connect(lambda: KafkaProducer(**plan.kafka), shutdown, health, "producer")

    ProducerService(plan, new_client, health, shutdown).run()


def main() -> int:
    return runner.main("producer", ProducerSettings, resolve, DESCRIPTION, run)


if __name__ == "__main__":
    sys.exit(main())
