"""Configuration: environment → settings → one resolved plan → kafka-python arguments.

``load`` reads and checks each setting alone; ``resolve`` decides everything
that follows from settings together, including the exact client arguments.
"""

from common.config._cli import argument_parser, parse_overrides
from common.config._env import env_names, env_variables
from common.config._errors import ConfigError, load
from common.config._files import file_variables, secret
from common.config._kafka_args import ClientArgs, ConsumerArgs, ProducerArgs, TransactionalArgs
from common.config._named import BATCH_MARK, takes_a_record, takes_batches
from common.config._plan import (
    BOOTSTRAP_TIMEOUT_MS,
    Connection,
    ConsumerPlan,
    ProducerPlan,
    resolve,
)
from common.config._security import EventHubsEntra, EventHubsKey, Plaintext, Sasl, Security, Tls
from common.config._settings import ConsumerSettings, KafkaSettings, ProducerSettings
from common.config._unread import unread_variables

__all__ = [
    "BATCH_MARK",
    "BOOTSTRAP_TIMEOUT_MS",
    "ClientArgs",
    "ConfigError",
    "Connection",
    "ConsumerArgs",
    "ConsumerPlan",
    "ConsumerSettings",
    "EventHubsEntra",
    "EventHubsKey",
    "KafkaSettings",
    "Plaintext",
    "ProducerArgs",
    "ProducerPlan",
    "ProducerSettings",
    "Sasl",
    "Security",
    "Tls",
    "TransactionalArgs",
    "argument_parser",
    "env_names",
    "env_variables",
    "file_variables",
    "load",
    "parse_overrides",
    "resolve",
    "secret",
    "takes_a_record",
    "takes_batches",
    "unread_variables",
]
