"""An example async handler: each order's customer looked up in another service, many
orders side by side, one at a time per customer.

Run it with ``CONSUMER_HANDLER=examples.lookups:handler CONSUMER_ORDERING=key`` (from a
checkout, or with this folder on PYTHONPATH); the producer must key orders by customer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from consumer.handler import AsyncHandler, DependencyUnavailable, Record, RecordRefused


class Customers:
    """Stands in for an async client (aiohttp, asyncpg): opened once, on the consumer's loop."""

    def __init__(self) -> None:
        self.tiers: dict[str, str] = {}

    async def tier(self, customer: str) -> str:
        await asyncio.sleep(0.005)  # the call to the other service
        return self.tiers.setdefault(customer, "standard")

    async def close(self) -> None:
        self.tiers.clear()


@contextlib.asynccontextmanager
async def handler() -> AsyncIterator[AsyncHandler]:
    """Opened at start on the event loop; what it yields is awaited for each record."""
    customers = Customers()

    async def handle(record: Record) -> None:
        try:
            customer = str(json.loads(record.value or b"")["customer"])
        except (ValueError, KeyError, TypeError) as exc:
            raise RecordRefused(f"not an order: {exc}") from exc
        try:
            await customers.tier(customer)
        except ConnectionError as exc:
            raise DependencyUnavailable(str(exc)) from exc

    try:
        yield handle
    finally:
        await customers.close()
