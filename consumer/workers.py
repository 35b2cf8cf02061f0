"""Which way the handler runs, from the plan and the handler's kind.

A plain function in ``partition`` order runs on the polling thread, one
record at a time (``consumer/service.py``): no workers. Anything else runs
on a :class:`~consumer.dispatch.Dispatcher`: a function in ``key`` or
``unordered`` order on a pool of threads, an ``async def`` one as tasks of
the process's event loop, a batch handler on a pool of threads with the
records of one partition in batches.
"""

from __future__ import annotations

from common.config import ConsumerPlan, takes_batches
from consumer.batches import SettleBatch, one_at_a_time
from consumer.dead_letter import DeadLetters
from consumer.dispatch import Dispatcher
from consumer.event_loop import EventLoop
from consumer.fate import Log, Settle
from consumer.handler import Handler, Record, is_async
from consumer.offsets import OffsetTracker
from consumer.tracing import RecordSpans


def workers_for(
    plan: ConsumerPlan,
    handle: Handler,
    offsets: OffsetTracker,
    *,
    dead_letters: DeadLetters | None,
    spans: RecordSpans | None,
    log: Log,
    loop: EventLoop | None,
) -> Dispatcher | None:
    """The dispatcher *handle* runs on; None: on the polling thread, one at a time."""
    settings = plan.settings
    batches = takes_batches(handle)
    if settings.ordering == "partition" and not is_async(handle) and not batches:
        return None
    dispatcher: Dispatcher

    def keeps(record: Record, seconds: float) -> bool:
        return dispatcher.keeps(record, seconds)

    def settle(handler: Handler) -> Settle:
        return Settle(
            handler,
            plan.topic,
            plan.group_id,
            attempts=settings.retry_attempts,
            backoff_s=backoff_s,
            dead_letters=dead_letters,
            spans=spans,
            log=log,
            wait=keeps,
            work_s=settings.simulated_work_ms / 1000,
        )

    backoff_s = (settings.retry_backoff_ms / 1000, settings.retry_backoff_max_ms / 1000)
    bound, ordering = settings.max_in_flight, settings.ordering
    if batches:
        in_batches = SettleBatch(
            handle,  # type: ignore[arg-type]
            settle(one_at_a_time(handle)),  # type: ignore[arg-type]
            attempts=settings.retry_attempts,
            backoff_s=backoff_s,
            log=log,
            wait=keeps,
            spans=spans,
        )
        dispatcher = Dispatcher(
            in_batches,
            "partition",
            bound,
            offsets,
            log=log,
            batches=(settings.batch_max_records, settings.batch_max_wait_ms / 1000),
        )
    elif is_async(handle):
        assert loop is not None, "an async handler runs on the process's event loop"
        dispatcher = Dispatcher.on_loop(
            settle(handle).settle_async, loop.loop, ordering, bound, offsets, log=log
        )
    else:
        dispatcher = Dispatcher(settle(handle).each, ordering, bound, offsets, log=log)
    return dispatcher
