"""Handlers the tests name in CONSUMER_HANDLER, as a user's own module would hold them.

Each logs ``test.handled`` for a record it is done with (our handlers have no
other output), so a test can count what was handled, once or twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import structlog

from consumer.handler import (
    DependencyUnavailable,
    Handler,
    Output,
    Record,
    RecordRefused,
    batch,
)

_log = structlog.get_logger()


def _handled(record: Record) -> None:
    _log.info(
        "test.handled",
        partition=record.partition,
        offset=record.offset,
        value=(record.value or b"").decode(errors="replace"),
    )


def refuse_poison(record: Record) -> None:
    """Refuses any value that starts with "poison"; handles the rest."""
    if (record.value or b"").startswith(b"poison"):
        raise RecordRefused("the value is poison")
    _handled(record)


def fail_poison(record: Record) -> None:
    """Fails on any value that starts with "poison", every time, with an ordinary error."""
    if (record.value or b"").startswith(b"poison"):
        raise ValueError("cannot parse poison")
    _handled(record)


def flaky() -> Handler:
    """A factory: the first FLAKY_FAILURES calls fail, then every call works."""
    left = int(os.environ.get("FLAKY_FAILURES", "2"))

    def handle(record: Record) -> None:
        nonlocal left
        if left > 0:
            left -= 1
            raise ConnectionError("the database did not answer")
        _handled(record)

    return handle


def waits_for_flag(record: Record) -> None:
    """DependencyUnavailable while the file DEPENDENCY_FLAG does not exist."""
    if not Path(os.environ["DEPENDENCY_FLAG"]).exists():
        raise DependencyUnavailable("the database is restarting")
    _handled(record)


@contextlib.contextmanager
def with_resources() -> Iterator[Handler]:
    """A lifespan: says when it opens and closes, as a pool would."""
    _log.info("test.opened")
    try:
        yield _handled
    finally:
        _log.info("test.closed")


def two_arguments(record: Record, other: object) -> None:
    """Not a handler: takes two."""


NOT_CALLABLE = 42


def handle_all(record: Record) -> None:
    """The fixed handler: takes every record, poison too."""
    _handled(record)


def slow(record: Record) -> None:
    """Takes SLOW_S seconds per record, saying when it starts one."""
    _log.info("test.started", partition=record.partition, offset=record.offset)
    time.sleep(float(os.environ.get("SLOW_S", "2")))
    _handled(record)


def gives_no_handler() -> int:
    """A factory that returns something a record cannot be given to."""
    return 42


def buggy(record: Record) -> None:
    """A bug of the user's, one call deep: a field the record does not have."""
    _handled(record) if _amount(record) else None


def _amount(record: Record) -> object:
    fields: dict[str, object] = {"value": record.value}
    return fields["amount"]


def leaks_secret(record: Record) -> None:
    """Fails with the connection string in its message, as a careless error would."""
    raise ConnectionError(f"cannot use {os.environ['EVENTHUBS_CONNECTION_STRING']}")


def fails_to_open() -> Handler:
    """A factory whose own setup fails, one call deep."""
    return _open_pool()


def _open_pool() -> Handler:
    raise ConnectionRefusedError("the database refused the pool")


def _wait_and_log(record: Record, began: float) -> None:
    _log.info(
        "test.handled",
        partition=record.partition,
        offset=record.offset,
        key=(record.key or b"").decode(),
        value=(record.value or b"").decode(errors="replace"),
        began=began,
        ended=time.time(),
    )


def _stuck(record: Record) -> bool:
    return record.key == b"stuck" and not Path(os.environ.get("STUCK_FLAG", "/")).exists()


def waits(record: Record) -> None:
    """Waits HANDLER_WAIT_MS (default 5), as a call to another service would, and logs
    ``test.handled`` with its key and when it began and ended (the wall clock, comparable
    across processes). A record keyed ``stuck`` waits until the file STUCK_FLAG exists."""
    began = time.time()
    time.sleep(float(os.environ.get("HANDLER_WAIT_MS", "5")) / 1000)
    while _stuck(record):
        time.sleep(0.05)
    _wait_and_log(record, began)


async def waits_async(record: Record) -> None:
    """:func:`waits`, as ``async def``."""
    began = time.time()
    await asyncio.sleep(float(os.environ.get("HANDLER_WAIT_MS", "5")) / 1000)
    while _stuck(record):
        await asyncio.sleep(0.05)
    _wait_and_log(record, began)


@batch
def logs_batches(records: Sequence[Record]) -> None:
    """A batch handler: refuses a batch holding a value that starts with "poison" (the
    consumer then hands its records over one at a time), else logs ``test.batch`` and
    each record's ``test.handled``."""
    if any((r.value or b"").startswith(b"poison") for r in records):
        raise RecordRefused("a poison value in the batch")
    _log.info("test.batch", partition=records[0].partition, offsets=[r.offset for r in records])
    for record in records:
        _handled(record)


@batch
async def async_batches(records: Sequence[Record]) -> None:
    """Not runnable: an async def batch handler."""


def copies(record: Record) -> Output:
    """Publishes ``copy-<value>`` with the record's key, to CONSUMER_OUTPUT_TOPIC, saying
    where it came from in a header; takes HANDLER_WAIT_MS to do it."""
    time.sleep(float(os.environ.get("HANDLER_WAIT_MS", "0")) / 1000)
    _handled(record)
    where = f"{record.partition}/{record.offset}".encode()
    return Output(b"copy-" + (record.value or b""), key=record.key, headers=[("input", where)])


@batch
def copies_batch(records: Sequence[Record]) -> list[Output]:
    """:func:`copies`, a batch at a time."""
    return [copies(record) for record in records]


def copies_or_refuses(record: Record) -> Output:
    """:func:`copies`, refusing a value that starts with "poison" (dead-lettered at once)."""
    if (record.value or b"").startswith(b"poison"):
        raise RecordRefused("the value is poison")
    return copies(record)
