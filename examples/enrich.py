"""An example transform: each order in, the same order with its total out.

Run it with ``CONSUMER_HANDLER=examples.enrich:handle`` and
``CONSUMER_OUTPUT_TOPIC`` set to a topic that exists. What it returns is
published there, keyed as the input, and acknowledged before the input's
offset is committed: at least once (docs/handlers.md, "Publishing").
"""

from __future__ import annotations

import json

from consumer.handler import Output, Record, RecordRefused


def handle(record: Record) -> Output | None:
    if record.value is None:
        return None  # a tombstone: nothing to enrich
    try:
        order = json.loads(record.value)
        total = sum(float(line["price"]) * int(line["quantity"]) for line in order["lines"])
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordRefused(f"not an order: {exc}") from exc
    enriched = {**order, "total": round(total, 2)}
    return Output(
        json.dumps(enriched).encode(),
        key=record.key,
        headers=[("enriched-from", f"{record.topic}/{record.partition}/{record.offset}".encode())],
    )
