"""Your own records in: what ``PRODUCER_SOURCE`` names, and what it may yield.

Without ``PRODUCER_SOURCE`` the producer sends its numbered envelopes (the
walkthrough's loop). With it, the producer sends what a source yields, paced
by ``PRODUCER_RATE`` (``0``: as fast as it yields), and when the source ends
it flushes, logs ``producer.finished`` and exits: 0 when every record was
delivered, 1 otherwise. Two sources are built in (``producer/stdin.py``):
``stdin-json`` and ``stdin-text``. ``PRODUCER_SOURCE=package.module:name``
names your own: an iterable, or a callable of no arguments that returns one
(a generator function, say). docs/sources.md has an example.

A source yields, for each record, either its value alone or an
:class:`Outgoing` with a key and headers too. A value may be bytes, text
(sent as UTF-8), None (a tombstone) or anything ``msgspec.json`` can write
(sent as compact JSON). For input it cannot make a record of, a source
yields :class:`Skipped`: counted, logged with where and why, never sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import msgspec

#: A header's value as a source may give it.
HeaderValue = bytes | str | None


class Outgoing(NamedTuple):
    """One record to send, with its key and headers."""

    #: bytes, text, None (a tombstone), or anything msgspec.json can write.
    value: object
    key: bytes | str | None = None
    #: A mapping of name to value, or ``(name, value)`` pairs, which may repeat a name.
    headers: Mapping[str, HeaderValue] | Sequence[tuple[str, HeaderValue]] = ()


class Skipped(NamedTuple):
    """Input a source could not make a record of: counted, logged, never sent."""

    #: Where in the input, as a reader would look for it ("line 12").
    where: str
    #: Why, in a few words.
    reason: str


#: What a source is: an iterable of values, Outgoing records and Skipped input.
Source = Iterable[object]


class Prepared(NamedTuple):
    """A record as kafka-python takes it."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


_encode_json = msgspec.json.Encoder().encode


def prepared(item: object, where: str) -> Prepared | Skipped:
    """*item* as kafka-python takes it, or Skipped saying why it cannot be sent."""
    if isinstance(item, Skipped):
        return item
    if isinstance(item, Outgoing):
        value, key, headers = item
    else:
        value, key, headers = item, None, ()
    try:
        return Prepared(_key_bytes(key), _value_bytes(value), _header_list(headers))
    except (TypeError, ValueError, msgspec.EncodeError) as exc:
        return Skipped(where, str(exc))


def _value_bytes(value: object) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    try:
        return _encode_json(value)
    except (TypeError, msgspec.EncodeError) as exc:
        raise ValueError(
            f"a value of type {type(value).__name__} is not bytes, text or JSON ({exc})"
        ) from None


def _key_bytes(key: object) -> bytes | None:
    if key is None or isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode()
    raise TypeError(f"a key must be bytes, text or None, not {type(key).__name__}")


def _header_list(headers: object) -> list[tuple[str, bytes]]:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    if not isinstance(pairs, Iterable) or isinstance(pairs, str | bytes):
        raise TypeError(f"headers must be a mapping or (name, value) pairs, not {pairs!r:.40}")
    listed: list[tuple[str, bytes]] = []
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(pair) != 2 or not isinstance(pair[0], str):
            raise TypeError(f"a header must be a (name, value) pair with a text name: {pair!r:.60}")
        name, value = pair
        if value is None:
            # kafka-python refuses None: an empty value is what Kafka readers see as none.
            listed.append((name, b""))
        elif isinstance(value, bytes):
            listed.append((name, value))
        elif isinstance(value, str):
            listed.append((name, value.encode()))
        else:
            raise TypeError(
                f"header {name!r} must be bytes, text or None, not {type(value).__name__}"
            )
    return listed


__all__ = ["HeaderValue", "Outgoing", "Prepared", "Skipped", "Source", "prepared"]
