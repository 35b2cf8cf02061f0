"""kafka-python's clients with our workarounds applied: what the services connect.

Each is kafka-python's own class, so every setting and method it has works
as documented; what ``_compat.py`` works around is applied here, at
construction and in the methods it concerns, and nowhere in the services.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

from kafka import KafkaConsumer, KafkaProducer

from common.clients import _compat
from common.clients._protocols import ConsumerRecord, TopicPartition


# kafka-python ships no type hints, so its classes are Any to mypy.
class Producer(KafkaProducer):  # type: ignore[misc]
    """``KafkaProducer``, meeting :class:`~common.clients.ProducerClient`."""

    def __init__(self, **configs: Any) -> None:
        _compat.install()
        super().__init__(**configs)
        _compat.honour_auto_creation_setting(self)

    def failed_for_good(self) -> bool:
        return _compat.in_fatal_state(self)

    def force_close(self) -> None:
        _compat.force_close(self)

    def heard_topic_missing(self, topic: str, since: float) -> bool:
        return _compat.unknown_since(topic, since)


class Consumer(KafkaConsumer):  # type: ignore[misc]
    """``KafkaConsumer``, meeting :class:`~common.clients.ConsumerClient`."""

    def __init__(self, **configs: Any) -> None:
        _compat.install()
        super().__init__(**configs)
        _compat.honour_auto_creation_setting(self)

    def poll(
        self, timeout_ms: int = 0, max_records: int | None = None, update_offsets: bool = True
    ) -> Mapping[TopicPartition, Sequence[ConsumerRecord]]:
        _compat.unblock_parked_fetches(self)
        polled: Mapping[TopicPartition, Sequence[ConsumerRecord]] = super().poll(
            timeout_ms=timeout_ms, max_records=max_records, update_offsets=update_offsets
        )
        return polled

    def last_heartbeat_answer(self) -> float | None:
        return _compat.last_heartbeat_answer(self)

    def io_sleep(self, seconds: float) -> Awaitable[object]:
        return _compat.io_sleep(self, seconds)
