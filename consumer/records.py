"""What the consumer makes of any record: our envelope when it is one, else the record as it is.

Any producer's records are processed: the walkthrough's plain text, kcat's
lines, another service's JSON, binary values, tombstones. The envelope adds
a sequence number and a send time; it is never a condition.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

#: How a record is counted: our producer's envelope, any other value, or no value at all.
Kind = Literal["envelope", "other", "tombstone"]
#: Characters of a value, key or header that go into a log line.
SHOWN_CHARS = 200
#: Control characters that make a valid UTF-8 value binary for display purposes
#: (tab, newline and carriage return are text).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: The most bytes one character takes in UTF-8.
_UTF8_MAX = 4


#: What starts a value shown in base64.
_PREFIX = "base64:"


def shown(data: bytes | None, limit: int = SHOWN_CHARS) -> str | None:
    """*data* as a log field: its first *limit* characters as text, else ``base64:`` and
    its first *limit* bytes in base64 (binary, text with control characters, or text that
    itself begins with ``base64:``).

    None stays None (a tombstone's value, a record without a key).
    """
    if data is None:
        return None
    head = data[: limit * _UTF8_MAX]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        # The cut may split a character; anything else is not UTF-8.
        split = len(head) < len(data) and error.start >= len(head) - _UTF8_MAX + 1
        if not split or error.reason != "unexpected end of data":
            return _binary(data, limit)
        text = head[: error.start].decode("utf-8")
    text = text[:limit]
    # Text that begins as our base64 prefix does is shown in base64 too: never ambiguous.
    return _binary(data, limit) if _CONTROL.search(text) or text.startswith(_PREFIX) else text


def _binary(data: bytes, limit: int) -> str:
    return _PREFIX + base64.b64encode(data[:limit]).decode("ascii")


def shown_headers(headers: Sequence[tuple[str, bytes | None]]) -> list[list[str | None]]:
    """``[[name, value], ...]``, each value shown as ``shown`` shows it; order and repeats kept."""
    return [[name, shown(value)] for name, value in headers]


def shown_timestamp(milliseconds: int) -> str | None:
    """A record's timestamp (ms since the epoch) in ISO 8601 UTC; None when it has none (-1)."""
    if milliseconds < 0:
        return None
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC).isoformat(timespec="milliseconds")
