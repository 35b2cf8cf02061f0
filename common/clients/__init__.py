"""kafka-python, as the services meet it: typed, connected with care, worked around once.

- the Protocols of the clients the services use (``ProducerClient``,
  ``ConsumerClient`` and what they hand over), so mypy checks our side of an
  untyped library, and a test can stand in a client (``common.clients.testing``);
- :class:`Producer` and :class:`Consumer`: kafka-python's own classes with
  every workaround of ``_compat.py`` applied inside them, and nowhere else;
- :func:`connect`: a client built with backoff while no broker answers, and
  a refusal (credentials, certificate) told apart from an outage.
"""

from __future__ import annotations

from common.clients._compat import install as install_workarounds
from common.clients._connect import BrokerRefused, BrokerUnavailable, classify, connect
from common.clients._kafka import Consumer, Producer
from common.clients._protocols import (
    CommitCallback,
    ConsumerClient,
    ConsumerRecord,
    GroupMetadata,
    Offsets,
    Outcome,
    ProducerClient,
    RecordMetadata,
    SendFuture,
    TopicPartition,
)

__all__ = [
    "BrokerRefused",
    "BrokerUnavailable",
    "CommitCallback",
    "Consumer",
    "ConsumerClient",
    "ConsumerRecord",
    "GroupMetadata",
    "Offsets",
    "Outcome",
    "Producer",
    "ProducerClient",
    "RecordMetadata",
    "SendFuture",
    "TopicPartition",
    "classify",
    "connect",
    "install_workarounds",
]
