"""Your code for each record: the consumer's one seam, named by ``CONSUMER_HANDLER``.

A handler is called once per record, in offset order within each partition
(by default on the polling thread; ``CONSUMER_ORDERING`` and an ``async def``
handler run records side by side, ``consumer/dispatch.py``). It gets a
:class:`Record` of ours, never kafka-python's type, and may return records to
publish: an :class:`Output`, or a list of them (``consumer/outputs.py``), each
acknowledged by the broker before the record's offset is committed. What it
raises decides what happens:

- nothing: the record is done, and its offset will be committed;
- :class:`RecordRefused`: this record can never be processed (a value the
  schema refuses, a poison message); no retry, it is dead-lettered at once;
- :class:`DependencyUnavailable`: something the handler needs is down (a
  database restarting); the record is retried with backoff until it works,
  its partition paused meanwhile, never dead-lettered;
- any other exception: retried up to ``CONSUMER_RETRY_ATTEMPTS`` times with
  backoff, then dead-lettered (``CONSUMER_DEAD_LETTER_TOPIC``) or, without a
  dead-letter topic, the consumer stops with exit status 1.

``CONSUMER_HANDLER=package.module:name`` names either the handler (a callable
of one argument) or a callable of none that is called once at start and
returns the handler, or a context manager whose ``__enter__`` gives the
handler and whose ``__exit__`` runs at stop: the place for a connection pool.
docs/handlers.md has a typed example.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Awaitable, Callable, Collection, Iterator, Sequence
from typing import Any, NamedTuple, TypeVar

import structlog

from common import events, message
from common.config import BATCH_MARK, takes_a_record, takes_batches
from consumer.records import shown, shown_headers, shown_timestamp


class Record(NamedTuple):
    """One record as your handler gets it.

    A tuple, so that building one per record costs next to nothing.
    """

    topic: str
    partition: int
    offset: int
    #: Milliseconds since the epoch, as the producer or broker set it; -1 when none.
    timestamp: int
    key: bytes | None
    #: None for a tombstone (a record with no value).
    value: bytes | None
    #: In order, repeats kept, as Kafka carries them.
    headers: Sequence[tuple[str, bytes | None]]


class Output(NamedTuple):
    """A record for the handler to publish: return one, or a list of them.

    Written to *topic*, or to ``CONSUMER_OUTPUT_TOPIC`` when it is None, and
    acknowledged by the broker before the input's offset is committed: at
    least once, so a crash between the two publishes it again.
    """

    #: None for a tombstone.
    value: bytes | None
    key: bytes | None = None
    #: None: ``CONSUMER_OUTPUT_TOPIC``.
    topic: str | None = None
    headers: Sequence[tuple[str, bytes]] = ()


#: What ``CONSUMER_HANDLER`` names, or what its factory gives: called once per record.
Handler = Callable[[Record], object]
#: An ``async def`` handler: awaited once per record, on the process's event loop.
AsyncHandler = Callable[[Record], Awaitable[object]]
#: A handler marked :func:`batch`: called with records of one partition, in offset order.
BatchHandler = Callable[[Sequence[Record]], object]

_B = TypeVar("_B", bound=Callable[..., object])


def batch(handler: _B) -> _B:
    """Mark *handler* as taking a batch: a sequence of records of one partition, in
    offset order, up to ``CONSUMER_BATCH_MAX_RECORDS``, for work cheaper in bulk (one
    transaction, one request). Mark the factory's handler, or the function named.
    """
    setattr(handler, BATCH_MARK, True)
    return handler


class BatchFailed(Exception):
    """Raise it from a batch handler to name the record that failed, by its index in the
    batch: the records before it are done, it alone is retried (and dead-lettered when
    its tries are spent), and those after it come again as a batch. *outputs* are those
    of the records before it, published as if returned."""

    def __init__(self, index: int, error: BaseException, outputs: Sequence[Output] = ()) -> None:
        super().__init__(f"record {index} of the batch failed: {type(error).__name__}: {error}")
        self.index = index
        self.error = error
        self.outputs = outputs


def is_async(handler: object) -> bool:
    """Whether *handler* is an ``async def`` function (or an object with one as ``__call__``):
    its records run on the process's event loop (``consumer/event_loop.py``)."""
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004  (the method, if it has one)
    )


class RecordRefused(Exception):
    """Raise it for a record no retry can fix: it is dead-lettered at once."""


class DependencyUnavailable(Exception):
    """Raise it when something the handler needs is down: retried until it works.

    The record's partition is paused between tries (the group keeps the
    consumer), and the record is never dead-lettered for it: an outage of a
    minute must not send a minute of records to the dead-letter topic.
    """


@contextlib.contextmanager
def opened(
    named: Callable[..., object] | None,
    log_every: int,
    group_id: str,
    run: Callable[[Awaitable[Any]], Any] | None = None,
) -> Iterator[Handler]:
    """The handler *named* by ``CONSUMER_HANDLER``, open for the life of the consumer.

    None: the default, :func:`log_records`. What it opens is closed on the
    way out, whatever ends the consumer. A factory may be ``async def`` and
    may give an async context manager: *run* runs them on the event loop the
    handler's records will run on.
    """
    if named is None:
        yield log_records(log_every, group_id)
        return
    if takes_a_record(named):
        yield named
        return
    made = named()
    if inspect.isawaitable(made):
        made = _on_loop(run)(made)
    if isinstance(made, contextlib.AbstractContextManager):
        with made as handler:
            yield _checked(handler)
    elif isinstance(made, contextlib.AbstractAsyncContextManager):
        on_loop = _on_loop(run)
        handler = on_loop(made.__aenter__())
        try:
            yield _checked(handler)
        except BaseException as error:
            if not on_loop(made.__aexit__(type(error), error, error.__traceback__)):
                raise
        else:
            on_loop(made.__aexit__(None, None, None))
    else:
        yield _checked(made)


def _on_loop(run: Callable[[Awaitable[Any]], Any] | None) -> Callable[[Awaitable[Any]], Any]:
    if run is None:
        raise HandlerInvalid("CONSUMER_HANDLER's factory is async, and no event loop was given")
    return run


class HandlerInvalid(Exception):
    """What ``CONSUMER_HANDLER``'s factory gave is not a handler, or not one the settings
    can run."""


def check_fits(
    handler: object,
    *,
    ordering: str,
    batch_settings: Collection[str],
    exactly_once: bool = False,
) -> None:
    """HandlerInvalid when *handler* cannot run with these settings: batch settings
    (*batch_settings*, the variables set) for a handler of one record, or a batch
    handler in an order other than ``partition``, or an ``async def`` one; for exactly
    once, any handler but a plain one of one record."""
    if exactly_once and (takes_batches(handler) or is_async(handler)):
        kind = "a batch handler" if takes_batches(handler) else "an async def handler"
        raise HandlerInvalid(
            f"CONSUMER_PROCESSING_GUARANTEE=exactly_once with {kind}: its records run on "
            "workers, and a transaction commits only what the polling thread handled; "
            "take one record with a plain function"
        )
    if not takes_batches(handler):
        if batch_settings:
            raise HandlerInvalid(
                f"{', '.join(sorted(batch_settings))} is set, and CONSUMER_HANDLER takes one "
                "record: mark it @consumer.handler.batch, or unset it"
            )
        return
    if is_async(handler):
        raise HandlerInvalid(
            "CONSUMER_HANDLER is an async def batch handler, which cannot run yet: "
            "make it a plain function, or take one record"
        )
    if ordering != "partition":
        raise HandlerInvalid(
            f"CONSUMER_ORDERING={ordering} with a batch handler: a batch is records of one "
            "partition in offset order; use CONSUMER_ORDERING=partition"
        )


def _checked(handler: object) -> Handler:
    if not callable(handler) or not takes_a_record(handler):
        raise HandlerInvalid(
            f"CONSUMER_HANDLER's factory gave {type(handler).__name__}, not a callable "
            "that takes one record"
        )
    return handler


def log_records(every: int, group_id: str) -> Handler:
    """The default handler: logs each record (one in ``LOG_MESSAGE_EVERY``) as
    ``message.received``, whoever produced it: the walkthrough's ``ConsumeClaim``.

    A closure, not an object with ``__call__``: it is called once per record,
    and calling a function costs half as much (``python -m bench hotpath``).
    """
    log = structlog.get_logger().bind(group_id=group_id)
    # Sampler's countdown, inlined. Never 0 when logging is off: counting down
    # from -1 never reaches it.
    left = 1 if every > 0 else -1

    def log_record(record: Record) -> None:
        nonlocal left
        left -= 1
        if left:
            return
        left = every
        _log_record(log, record)

    return log_record


def _log_record(log: structlog.typing.FilteringBoundLogger, record: Record) -> None:
    value = record.value
    envelope = message.envelope_of(value)
    fields: dict[str, object] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": shown_timestamp(record.timestamp),
        "key": shown(record.key),
        "headers": shown_headers(record.headers),
        "kind": "envelope" if envelope else "other" if value is not None else "tombstone",
        "size": None if value is None else len(value),
        "content": shown(value),
    }
    if envelope is not None:
        fields["seq"] = envelope.seq
        fields["producer"] = envelope.producer
    log.info(events.MESSAGE_RECEIVED, **fields)


__all__ = [
    "AsyncHandler",
    "BatchFailed",
    "BatchHandler",
    "DependencyUnavailable",
    "Handler",
    "HandlerInvalid",
    "Output",
    "Record",
    "RecordRefused",
    "batch",
    "log_records",
    "opened",
]
