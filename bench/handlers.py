"""The handlers the bench names in CONSUMER_HANDLER: for ``bench processing`` a 5 ms wait,
as a call to another service would take, as a function and as ``async def``; for ``bench
transform``, a copy of each record published to another topic.

Each counts its records and logs ``bench.handled`` for one in :data:`EVERY`, whose
timestamps give the rate, as the throughput cases read sampled ``message.received``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time

import structlog

from consumer.handler import Output, Record

#: One record in this many is logged.
EVERY = 100
_WAIT_S = float(os.environ.get("BENCH_WAIT_MS", "5")) / 1000
# next() on a count is atomic under the GIL: the workers share it.
_count = itertools.count(1)
_log = structlog.get_logger()


def _counted() -> None:
    n = next(_count)
    if n % EVERY == 1:
        _log.info("bench.handled", n=n)


def waits(record: Record) -> None:
    time.sleep(_WAIT_S)
    _counted()


async def waits_async(record: Record) -> None:
    await asyncio.sleep(_WAIT_S)
    _counted()


def copies(record: Record) -> Output:
    """``bench transform``'s: publishes each record as it came, to CONSUMER_OUTPUT_TOPIC."""
    _counted()
    return Output(record.value, key=record.key)
