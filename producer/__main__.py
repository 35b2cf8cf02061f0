"""``python -m producer``: wires settings, the Kafka client and the send loop."""

import sys

from kafka import KafkaProducer

from common.client import connect, producer_args
from common.config import ProducerSettings
from common.http import Health
from common.runner import main
from common.shutdown import Shutdown
from producer.service import ProducerService


def run(settings: ProducerSettings, health: Health, shutdown: Shutdown) -> None:
    client = connect(lambda: KafkaProducer(**producer_args(settings)), shutdown.event, "producer")
    if client is not None:
        ProducerService(settings, client, health, shutdown).run()


sys.exit(
    main(
        "producer",
        ProducerSettings,
        "Send numbered messages to a Kafka topic or an Azure Event Hub until stopped.",
        run,
    )
)
