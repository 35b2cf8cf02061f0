"""The built-in sources: standard input, one record a line (``PRODUCER_SOURCE=stdin-json``
or ``stdin-text``), as kcat's ``-P`` reads it.

``stdin-json``: each line is one JSON object, ``{"value": ..., "key": ...,
"headers": ...}``. ``value`` is required: a JSON string is sent as its text
(UTF-8), ``null`` as a tombstone, anything else as the JSON written on the
line. ``key`` is a string or null; ``headers`` an object of name to string
(or null), or a list of ``[name, value]`` pairs when a name repeats. A line
that is not such an object is skipped with its line number and why; the
lines after it are still sent. Blank lines are no records.

``stdin-text``: each line is one record's value, as its bytes, without the
line's end; no key, no headers. Every line is a record, a blank one too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import msgspec

from producer.source import Outgoing, Skipped

#: Characters of a decoder's complaint kept in a ``source.skipped`` line.
REASON_CHARS = 200
#: Bytes read from standard input at a time.
CHUNK = 1 << 16


class _Line(msgspec.Struct, forbid_unknown_fields=True):
    value: msgspec.Raw
    key: str | None = None
    headers: dict[str, str | None] | list[tuple[str, str | None]] = {}


_decode_line = msgspec.json.Decoder(_Line).decode
_decode_text = msgspec.json.Decoder(str).decode
_NULL = b"null"


def read_lines(fd: int) -> Iterator[bytes]:
    """The lines of file descriptor *fd*, each with its end, read in chunks.

    Read with ``os.read``, not through ``sys.stdin``: the source runs on a
    daemon thread, and one blocked inside a buffered reader holds its lock,
    which aborts the interpreter at exit (SIGABRT, "could not acquire lock
    for <stdin> at interpreter shutdown") when a stop comes while the pipe
    waits for more.
    """
    pending = b""
    while chunk := os.read(fd, CHUNK):
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            yield line + b"\n"
    if pending:
        yield pending


def json_lines(lines: Iterable[bytes]) -> Iterator[Outgoing | Skipped]:
    """A record for each JSON line; Skipped, with its number, for a bad one."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            parsed = _decode_line(line)
        except msgspec.ValidationError as exc:
            yield Skipped(f"line {number}", _hinted(str(exc)))
            continue
        except msgspec.DecodeError as exc:
            yield Skipped(f"line {number}", f"not JSON: {str(exc)[:REASON_CHARS]}")
            continue
        raw = bytes(parsed.value)
        value: bytes | str | None
        if raw == _NULL:
            value = None
        elif raw[:1] == b'"':
            value = _decode_text(raw)
        else:
            value = raw
        yield Outgoing(value, parsed.key, parsed.headers)


def text_lines(lines: Iterable[bytes]) -> Iterator[bytes]:
    """Each line, without its end, as a record's value."""
    for line in lines:
        if line.endswith(b"\r\n"):
            yield line[:-2]
        elif line.endswith(b"\n"):
            yield line[:-1]
        else:
            yield line


def _hinted(complaint: str) -> str:
    complaint = complaint[:REASON_CHARS]
    if "unknown field" in complaint or "missing required field" in complaint:
        # The likeliest mistake: a file of events, each line meant as the value.
        return (
            f'{complaint}; a line is {{"value": ..., "key": ..., "headers": ...}} '
            "(a file of bare events: jq -c '{value: .}' wraps each)"
        )
    return complaint


__all__ = ["json_lines", "read_lines", "text_lines"]
