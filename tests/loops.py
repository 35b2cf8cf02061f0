"""Running the consumer's loop on common.testing's stand-ins until the records a test
scripted are all handled: a loop test that never gets there fails, it does not hang."""

from __future__ import annotations

import threading
from collections.abc import Callable

from common.clients.testing import FakeConsumer, FakeProducer
from common.config import ConsumerPlan
from common.health import Health
from common.shutdown import Shutdown
from common.tracing import Tracing
from consumer.dead_letter import DeadLetters
from consumer.event_loop import EventLoop
from consumer.handler import Handler
from consumer.outputs import Outputs
from consumer.service import ConsumerService

#: Longest a consumer of these tests runs.
RUN_S = 60


def run_until(
    plan: ConsumerPlan,
    client: FakeConsumer,
    handler: Handler,
    until: Callable[[], bool],
    *,
    dead_letters: FakeProducer | None = None,
    loop: EventLoop | None = None,
    tracing: Tracing | None = None,
    outputs: FakeProducer | None = None,
) -> ConsumerService:
    """Run the consumer until the client's script is read and *until* holds, then stop
    it; fail if that has not happened within RUN_S."""
    shutdown = Shutdown()
    client.after_script = lambda: until() and shutdown.event.set()
    watchdog = threading.Timer(RUN_S, shutdown.event.set)
    watchdog.start()
    letters = None
    if dead_letters is not None:
        letters = DeadLetters("dlt", "g", lambda: dead_letters, timeout_s=5.0)
        letters.start()
    published = None
    if outputs is not None:
        published = Outputs(
            plan.settings.output_topic,
            lambda: outputs,
            timeout_s=5.0,
            transactional=plan.settings.processing_guarantee == "exactly_once",
        )
        published.start()
    service = ConsumerService(
        plan, client, Health(), shutdown, handler=handler, dead_letters=letters, loop=loop,
        tracing=tracing, outputs=published,
    )  # fmt: skip
    try:
        service.run()
    finally:
        watchdog.cancel()
    assert until(), f"stopped after {RUN_S} s with the records not all handled"
    return service
