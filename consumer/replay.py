"""``python -m consumer replay``: dead letters back to the topic they came from, once fixed.

An operator fixes the handler (or the data it needed), then replays: the
dead-letter topic is read from its start (or ``--from-offset``) to the end
it had when the replay began, each dead letter that matches the filters is
written to its original topic (``dlt.original.topic``) with its key, value
and own headers, acknowledged by the broker (acks=all), and counted. The
consumer handles it again like any record; one that fails again is
dead-lettered again, with fresh headers.

Nothing is committed in the dead-letter topic: a replay is a deliberate
act, run again with a narrower filter when needed, so it is at least once:
a replay stopped half way and run again writes the first half twice. The
last line, ``replay.finished``, counts every dead letter read: replayed,
skipped by the filters, or failed; the exit status is 0 only when none
failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import structlog
from kafka import TopicPartition
from kafka.errors import KafkaError

from common import events
from common.clients import Consumer, ConsumerRecord, Producer, ProducerClient
from common.config import (
    ConfigError,
    ConsumerPlan,
    ConsumerSettings,
    EventHubsEntra,
    load,
    resolve,
)
from common.entra import TOKEN_PATTERN
from common.failure import ServiceFailed
from common.logging import configure
from common.runner import EXIT_CONFIG, EXIT_REFUSED
from consumer import dead_letter

#: Longest one send may wait for its acknowledgement.
SEND_TIMEOUT_S = 60.0
#: How long a poll may find nothing before the end offsets are checked again.
POLL_TIMEOUT_MS = 1_000


@dataclass(frozen=True)
class Filters:
    """Which dead letters to replay; None matches any."""

    partition: int | None = None
    from_offset: int | None = None
    to_offset: int | None = None
    exception: str | None = None

    def match(self, headers: Mapping[str, str]) -> bool:
        try:
            partition = int(headers[dead_letter.ORIGINAL_PARTITION])
            offset = int(headers[dead_letter.ORIGINAL_OFFSET])
        except (KeyError, ValueError):
            return False
        kind = headers.get(dead_letter.EXCEPTION_TYPE, "")
        return (
            (self.partition is None or partition == self.partition)
            and (self.from_offset is None or offset >= self.from_offset)
            and (self.to_offset is None or offset <= self.to_offset)
            and (self.exception is None or self.exception in (kind, kind.rsplit(".", 1)[-1]))
        )


@dataclass
class Tally:
    read: int = 0
    replayed: int = 0
    skipped: int = 0
    failed: int = 0


def _text(headers: Sequence[tuple[str, bytes | None]]) -> dict[str, str]:
    return {
        name: (value or b"").decode(errors="replace")
        for name, value in headers
        if name in dead_letter.OURS
    }


def replay_one(
    record: ConsumerRecord, filters: Filters, producer: ProducerClient, tally: Tally
) -> None:
    """Write one dead letter back, if it matches; count what became of it."""
    log = structlog.get_logger()
    tally.read += 1
    ours = _text(record.headers)
    if not filters.match(ours):
        tally.skipped += 1
        return
    original = ours[dead_letter.ORIGINAL_TOPIC]
    kept = [(n, v or b"") for n, v in record.headers if n not in dead_letter.OURS]
    try:
        written = producer.send(original, value=record.value, key=record.key, headers=kept).get(
            timeout=SEND_TIMEOUT_S
        )
    except KafkaError as exc:
        tally.failed += 1
        log.error(
            events.RECORD_REPLAY_FAILED,
            dead_letter_partition=record.partition,
            dead_letter_offset=record.offset,
            topic=original,
            error=f"{type(exc).__name__}: {exc}",
        )
        return
    tally.replayed += 1
    log.info(
        events.RECORD_REPLAYED,
        dead_letter_partition=record.partition,
        dead_letter_offset=record.offset,
        topic=original,
        original_partition=int(ours[dead_letter.ORIGINAL_PARTITION]),
        original_offset=int(ours[dead_letter.ORIGINAL_OFFSET]),
        partition=written.partition,
        offset=written.offset,
    )


def replay(plan: ConsumerPlan, filters: Filters) -> Tally:
    """Replay the dead letters of *plan*'s dead-letter topic that match *filters*."""
    topic = plan.settings.dead_letter_topic
    assert topic is not None
    assert plan.dead_letter_kafka is not None
    reader = Consumer(**plan.kafka)
    producer = Producer(**plan.dead_letter_kafka)
    tally = Tally()
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            raise ConfigError([f"CONSUMER_DEAD_LETTER_TOPIC={topic} does not exist"])
        reader.assign(partitions)
        ends: dict[TopicPartition, int] = reader.end_offsets(partitions)
        # The filters name original offsets; the dead-letter topic is read whole.
        reader.seek_to_beginning(*partitions)
        structlog.get_logger().info(
            events.REPLAY_STARTED,
            dead_letter_topic=topic,
            dead_letters=sum(ends.values()),
        )
        while any(reader.position(tp) < ends[tp] for tp in partitions):
            for tp, records in reader.poll(timeout_ms=POLL_TIMEOUT_MS).items():
                for record in records:
                    if record.offset < ends[tp]:
                        replay_one(record, filters, producer, tally)
    finally:
        producer.close(timeout=SEND_TIMEOUT_S)
        reader.close(autocommit=False)
    return tally


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(
        prog="python -m consumer replay",
        description="Write the dead letters of CONSUMER_DEAD_LETTER_TOPIC back to the topics "
        "they came from. The connection is the consumer's: the same variables.",
    )
    made.add_argument("--partition", type=int, help="only dead letters from this partition")
    made.add_argument("--from-offset", type=int, help="only those from this original offset on")
    made.add_argument("--to-offset", type=int, help="only those up to this original offset")
    made.add_argument(
        "--exception", help="only those whose handler raised this type (ValueError, or in full)"
    )
    return made


def main(argv: Sequence[str]) -> int:
    arguments = parser().parse_args(argv)
    filters = Filters(
        arguments.partition, arguments.from_offset, arguments.to_offset, arguments.exception
    )
    try:
        plan = resolve(load(ConsumerSettings))
        if plan.settings.dead_letter_topic is None:
            raise ConfigError(["CONSUMER_DEAD_LETTER_TOPIC is missing: it names what to replay"])
    except ConfigError as exc:
        print(f"consumer replay: {exc.report()}", file=sys.stderr, end="")
        return EXIT_CONFIG
    settings = plan.settings
    security = plan.connection.security
    entra = isinstance(security, EventHubsEntra)
    configure(
        "consumer",
        settings.log_level,
        settings.log_format,
        secrets=plan.secrets,
        secret_patterns=[TOKEN_PATTERN] if entra else [],
    )
    started = time.monotonic()
    log = structlog.get_logger()
    try:
        if isinstance(security, EventHubsEntra):
            security.tokens.start()
        tally = replay(plan, filters)
    except ServiceFailed as exc:
        log.error(events.SERVICE_FAILED, reason=exc.reason, error=exc.detail)
        return EXIT_REFUSED
    except ConfigError as exc:
        print(f"consumer replay: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KafkaError as exc:
        log.error(events.SERVICE_FAILED, reason="broker_unavailable", error=str(exc))
        return EXIT_REFUSED
    log.info(
        events.REPLAY_FINISHED,
        read=tally.read,
        replayed=tally.replayed,
        skipped=tally.skipped,
        failed=tally.failed,
        took_s=round(time.monotonic() - started, 3),
    )
    return 0 if tally.failed == 0 else EXIT_REFUSED
