"""An example handler: orders as JSON, totals kept in a store opened once per process.

Run it with ``CONSUMER_HANDLER=examples.orders:handler`` (from a checkout, or
with this folder on PYTHONPATH).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

from consumer.handler import DependencyUnavailable, Handler, Record, RecordRefused


class Store:
    """Stands in for a database client: connected once, closed at stop."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    def add(self, customer: str, amount: float) -> None:
        self.totals[customer] = self.totals.get(customer, 0.0) + amount

    def close(self) -> None:
        self.totals.clear()


@contextlib.contextmanager
def handler() -> Iterator[Handler]:
    """Opened at start; what it yields is called for each record; closed at stop."""
    store = Store()

    def handle(record: Record) -> None:
        try:
            order = json.loads(record.value or b"")
            customer, amount = str(order["customer"]), float(order["amount"])
        except (ValueError, KeyError, TypeError) as exc:
            # No retry can fix this record: straight to the dead-letter topic.
            raise RecordRefused(f"not an order: {exc}") from exc
        try:
            store.add(customer, amount)
        except ConnectionError as exc:
            # The store is down, not the record: wait for it, however long.
            raise DependencyUnavailable(str(exc)) from exc

    try:
        yield handle
    finally:
        store.close()
