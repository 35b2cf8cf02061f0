"""An example batch handler: orders written to a store in one call per batch, as one
transaction or one request would be.

Run it with ``CONSUMER_HANDLER=examples.bulk:handler`` (from a checkout, or with this
folder on PYTHONPATH); ``CONSUMER_BATCH_MAX_RECORDS`` sets the batch's size.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from consumer.handler import BatchFailed, Record, RecordRefused, batch


class Store:
    """Stands in for a database: one write of many rows."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float]] = []

    def write_all(self, rows: list[tuple[str, float]]) -> None:
        self.rows.extend(rows)


STORE = Store()


@batch
def handler(records: Sequence[Record]) -> None:
    """Called with up to CONSUMER_BATCH_MAX_RECORDS records of one partition, in order."""
    rows = []
    for index, record in enumerate(records):
        try:
            order = json.loads(record.value or b"")
            rows.append((str(order["customer"]), float(order["amount"])))
        except (ValueError, KeyError, TypeError) as exc:
            # Name the record: those before it are written, it is dead-lettered alone.
            raise BatchFailed(index, RecordRefused(f"not an order: {exc}")) from exc
    STORE.write_all(rows)
