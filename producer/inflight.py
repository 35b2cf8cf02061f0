"""Sends the broker has not answered yet: bounded, handed over from the IO thread, watched.

kafka-python answers each send on its IO thread. The answer is only queued
there; the main loop takes the queue between sends and does all the
bookkeeping, so no lock is taken per message and the IO thread, which every
send waits on, does as little as it can.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import NamedTuple

from producer.client import Outcome

#: Most bytes of messages left unanswered before the loop waits for answers.
#: Without a bound, a producer at rate 0 queued far faster than kafka-python's
#: IO thread could deliver (it had the GIL less): memory grew without end and
#: messages waited seconds in the queue. Too tight a bound starves the
#: batches instead: 5,000 sends of 100 B were about what one broker
#: connection has in flight (5 requests of 10 partitions' batches), so the
#: sender often found only part-filled batches to send.
MAX_UNANSWERED_BYTES = 4 * 1024 * 1024
#: Bounds on the bound in sends: a pipeline of small messages, within kafka-python's
#: 32 MiB buffer for the largest (4 MiB of them, at least 16).
MIN_UNANSWERED, MAX_UNANSWERED = 16, 20_000


def limit_for(message_size: int) -> int:
    """Most sends left unanswered for messages of *message_size* bytes."""
    by_size = MAX_UNANSWERED_BYTES // max(1, message_size)
    return max(MIN_UNANSWERED, min(MAX_UNANSWERED, by_size))


#: How often, at most, the oldest send is checked for a stall.
STALL_CHECK_S = 0.5


class InFlight:
    """Unanswered sends by sequence number, oldest first."""

    def __init__(
        self,
        stall_after_s: float,
        limit: int = MAX_UNANSWERED,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._limit = limit
        self._stall_after_s = stall_after_s
        self._clock = clock
        # seq -> when it was sent, until its answer is taken.
        self._pending: dict[int, float] = {}
        # (seq, when answered, outcome), appended by the IO thread.
        self._answers: deque[tuple[int, float, Outcome]] = deque()
        # Set by the IO thread once enough answers are queued for a waiting loop.
        self._answered = threading.Event()
        self._wake_at: int | None = None
        self._stall_check_due = 0.0

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def room(self) -> int:
        """Sends that may go before the bound is reached."""
        return max(0, self._limit - len(self._pending))

    @property
    def has_answers(self) -> bool:
        return bool(self._answers)

    def sent(self, seq: int) -> None:
        self._pending[seq] = self._clock()

    def withdraw(self, seq: int) -> bool:
        """Forget *seq*, which the client refused to queue; False if already given up on."""
        return self._pending.pop(seq, None) is not None

    def answer(self, seq: int, outcome: Outcome) -> None:
        """Queue *seq*'s answer. Runs on kafka-python's IO thread, once per message."""
        answers = self._answers
        answers.append((seq, self._clock(), outcome))
        wake_at = self._wake_at
        if wake_at is not None and len(answers) >= wake_at:
            self._answered.set()

    def wait(self, timeout: float) -> None:
        """Wait, up to *timeout*, until half of the unanswered sends are answered.

        Half, not one: waking for every answer would hand the GIL back and
        forth with the IO thread once per batch it completes, and the IO
        thread runs fastest when left alone.
        """
        wake_at = len(self._pending) - self._limit // 2
        self._answered.clear()
        self._wake_at = wake_at
        # Checked after publishing wake_at, so answers queued in between are not missed.
        if len(self._answers) < wake_at:
            self._answered.wait(timeout)
        self._wake_at = None

    def take(self) -> Iterator[tuple[int, float, Outcome]]:
        """``(seq, seconds to answer, outcome)`` for each answer queued so far.

        An answer for a send already given up on (``stalled``) is dropped:
        that send was counted as failed then.
        """
        answers, pending = self._answers, self._pending
        while answers:
            seq, answered_at, outcome = answers.popleft()
            started = pending.pop(seq, None)
            if started is not None:
                yield seq, answered_at - started, outcome

    def stalled(self) -> Stall | None:
        """Give up on every send if the oldest is unanswered past the deadline.

        kafka-python promises an answer within delivery.timeout.ms, and
        3.0.12 can break that promise (see producer.service): this is how
        the loop notices. Checked at most every STALL_CHECK_S.
        """
        now = self._clock()
        if now < self._stall_check_due:
            return None
        self._stall_check_due = now + STALL_CHECK_S
        # Sequence numbers go in in order, so the first one left is the oldest.
        oldest = next(iter(self._pending.values()), None)
        if oldest is None or now - oldest < self._stall_after_s:
            return None
        abandoned, self._pending = sorted(self._pending), {}
        return Stall(abandoned, now - oldest)


class Stall(NamedTuple):
    """Sends given up on: their sequence numbers, and how long the oldest waited."""

    seqs: list[int]
    waited_s: float
