"""Sends the broker has not answered yet: bounded, taken in send order, watched.

Each send's future is kept, in the order sent, and the loop reads the
answers off the oldest ones that are done. No callback per message: a
callback ran on kafka-python's IO thread, which every send waits on, and
with the partial bound for it and the queue handing answers over it cost
the producer a sixth of its rate at full speed (CHANGELOG.md, issue 17).
Answers come in send order: one partition's slow batch holds
back the answers sent after it, and they count against the bound, until
it is answered or given up on.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import NamedTuple

from common.clients import Outcome, SendFuture

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


#: Once the bound is reached, the share of it answered before sends go again. Sending
#: again at each answer made a wait, a wakeup and a burst of one batch per answer.
REFILL_SHARE = 0.25


def limit_for(message_size: int) -> int:
    """Most sends left unanswered for messages of *message_size* bytes."""
    by_size = MAX_UNANSWERED_BYTES // max(1, message_size)
    return max(MIN_UNANSWERED, min(MAX_UNANSWERED, by_size))


#: How often, at most, the oldest send is checked for a stall.
STALL_CHECK_S = 0.5


class InFlight:
    """Unanswered sends, oldest first, with the futures that will answer them."""

    def __init__(
        self,
        stall_after_s: float,
        limit: int = MAX_UNANSWERED,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._limit = limit
        #: Unanswered sends at which a full bound has room again.
        self._refilled_at = limit - max(1, int(limit * REFILL_SHARE))
        #: Set when the bound is reached, cleared when it has room again.
        self._full = False
        self._stall_after_s = stall_after_s
        self._clock = clock
        # (seq, when it was sent, its future), in the order sent.
        self._pending: deque[tuple[int, float, SendFuture]] = deque()
        # The send last waited for, and what its answer sets.
        self._watched: SendFuture | None = None
        self._answered = threading.Event()
        self._stall_check_due = 0.0

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def room(self) -> int:
        """Sends that may go before the bound is reached; none, once it is, until a share
        of it (REFILL_SHARE) is answered."""
        return 0 if self._full else max(0, self._limit - len(self._pending))

    @property
    def has_answers(self) -> bool:
        """Whether the oldest unanswered send has its answer."""
        pending = self._pending
        return bool(pending) and pending[0][2].is_done

    def sent(self, seq: int, future: SendFuture) -> None:
        """Keep *seq*, which the client has queued, until *future* answers it."""
        pending = self._pending
        pending.append((seq, self._clock(), future))
        if len(pending) >= self._limit:
            self._full = True

    def wait(self, timeout: float) -> None:
        """Wait, up to *timeout*, for the oldest send's answer.

        The oldest, not any later one: answers are taken in send order, so a
        later answer would wake the loop to take nothing, and it would spin
        while one partition's batch is slow.
        """
        pending = self._pending
        if not pending:
            return
        _, _, future = pending[0]
        if future.is_done:
            return
        if future is not self._watched:
            # One callback per send waited for, not per send. Not the future's
            # own get(): it rounds its timeout down to whole milliseconds, so
            # waits for the next paced send (under 1 ms at 1,000/s) returned
            # at once and the loop spun, starving the IO thread: end-to-end
            # p50 went from 5 to 32 ms.
            answered = threading.Event()
            future.add_both(lambda _: answered.set())
            self._watched, self._answered = future, answered
        self._answered.wait(timeout)

    def take(self) -> Iterator[tuple[int, float, Outcome]]:
        """``(seq, seconds to answer, outcome)`` for the oldest sends that have their answer.

        The seconds are counted to now: the loop takes answers between
        bursts of sends, a few milliseconds apart at full speed, and waits
        for the oldest answer when it has nothing to send.
        """
        pending = self._pending
        now = self._clock()
        while pending and pending[0][2].is_done:
            seq, sent_at, future = pending.popleft()
            error = future.exception
            yield seq, now - sent_at, future.value if error is None else error
        if len(pending) <= self._refilled_at:
            self._full = False

    def abandon(self) -> list[int]:
        """Give up on every send still unanswered (the client is closed): their seqs."""
        abandoned = [seq for seq, _, _ in self._pending]
        self._pending.clear()
        self._full = False
        return abandoned

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
        pending = self._pending
        if not pending or now - pending[0][1] < self._stall_after_s:
            return None
        abandoned = [seq for seq, _, _ in pending]
        waited_s = now - pending[0][1]
        pending.clear()
        self._full = False
        return Stall(abandoned, waited_s)


class Stall(NamedTuple):
    """Sends given up on: their sequence numbers, and how long the oldest waited."""

    seqs: list[int]
    waited_s: float
