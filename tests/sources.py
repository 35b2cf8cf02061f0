"""Sources the tests name in PRODUCER_SOURCE, as a user's own module would hold them."""

from __future__ import annotations

import os
from collections.abc import Iterator

from producer.source import Outgoing

#: Not a source: a number.
NOT_ITERABLE = 42


def orders() -> Iterator[object]:
    """A generator function: the factory of a source, called once at start.

    ``ORDERS`` records, each kind of value a source may give: a dict (sent as
    JSON) with a key and a header, text, and bytes.
    """
    for number in range(int(os.environ.get("ORDERS", "3"))):
        if number % 3 == 0:
            yield Outgoing({"order": number}, key=f"o-{number}", headers={"kind": "order"})
        elif number % 3 == 1:
            yield f"order {number}"
        else:
            yield f"order {number}".encode()


def with_a_bad_value() -> Iterator[object]:
    """One good record, one that JSON cannot write, one good: two are sent."""
    yield "first"
    yield {"when": object()}
    yield "last"


def fails_midway() -> Iterator[object]:
    """Two records, then the user's code raises."""
    yield "one"
    yield "two"
    raise RuntimeError("the event store went away")


def takes_an_argument(limit: int) -> Iterator[object]:
    """Not a source: it needs an argument."""
    yield from range(limit)


def gives_no_iterable() -> int:
    """A factory whose result is no source."""
    return 7
