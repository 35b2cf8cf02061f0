"""The producer's message: a JSON envelope with a per-producer sequence number.

The sequence number lets any consumer tell a gap (lost message) from a
duplicate (re-delivery); the timestamp gives end-to-end latency.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime


class InvalidMessage(ValueError):
    """A value this service cannot process; ``reason`` is a short metric label."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Envelope:
    producer: str
    seq: int
    sent_at: datetime


def encode(producer: str, seq: int, sent_at: datetime, size: int) -> tuple[bytes, bytes]:
    """Key and value for message *seq*; the value is padded to *size* bytes when it can be.

    Like the walkthrough, key and value carry the timestamp.
    """
    stamp = sent_at.isoformat(timespec="microseconds").replace("+00:00", "Z")
    body = {"producer": producer, "seq": seq, "ts": stamp, "value": f"value-{stamp}"}
    value = json.dumps(body, separators=(",", ":")).encode()
    if len(value) < size:
        body["pad"] = "x" * max(0, size - len(value) - len(',"pad":""'))
        value = json.dumps(body, separators=(",", ":")).encode()
    return f"key-{stamp}".encode(), value


def decode(value: bytes | None) -> Envelope:
    """The envelope in *value*, or InvalidMessage saying why there is none."""
    if value is None:
        raise InvalidMessage("tombstone")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidMessage("not_utf8") from None
    try:
        body = json.loads(text)
    except ValueError:
        raise InvalidMessage("not_json") from None
    if not isinstance(body, dict):
        raise InvalidMessage("not_envelope")
    producer, seq, stamp = body.get("producer"), body.get("seq"), body.get("ts")
    if not isinstance(producer, str) or type(seq) is not int or not isinstance(stamp, str):
        raise InvalidMessage("not_envelope")
    try:
        sent_at = datetime.fromisoformat(stamp)
    except ValueError:
        raise InvalidMessage("not_envelope") from None
    if sent_at.tzinfo is None:
        sent_at = sent_at.replace(tzinfo=UTC)
    return Envelope(producer=producer, seq=seq, sent_at=sent_at)
