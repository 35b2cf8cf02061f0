"""``python -m consumer``: wires settings, the Kafka client and the poll loop."""

import sys

from kafka import KafkaConsumer

from common.client import connect, consumer_args
from common.config import ConsumerSettings
from common.http import Health
from common.runner import main
from common.shutdown import Shutdown
from consumer.service import ConsumerService


def run(settings: ConsumerSettings, health: Health, shutdown: Shutdown) -> None:
    client = connect(lambda: KafkaConsumer(**consumer_args(settings)), shutdown.event, "consumer")
    if client is not None:
        ConsumerService(settings, client, health, shutdown).run()


sys.exit(
    main(
        "consumer",
        ConsumerSettings,
        "Consume a Kafka topic or an Azure Event Hub as a member of a consumer group.",
        run,
    )
)
