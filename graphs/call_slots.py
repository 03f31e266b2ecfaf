"""The run's model-call slots: at most K model calls in flight at once, over every question.

A question spends most of its time waiting for the model, but between two calls it also needs the
framework (checkpoints, the verifier, the trace line). If a question held its slot across that
work, the endpoint would idle for it: at concurrency 64 with 1 s calls the 64 replies of a round
arrive together, and the last of the next 64 requests went out a third of a second late (issue 17's
timeline). So the runner admits a few more questions than there are slots (its look-ahead), and a
slot is held only for the call itself: a finished call hands its slot at once to a question that is
already waiting at its model call, while the finished one is checked and recorded.

Order: a question's later calls (Critic, Reviser, answer-guided) are served before other questions'
first calls, so questions already started finish first; within each kind, first come, first served.
Same idea as a priority semaphore (e.g. ``asyncio.PriorityQueue`` of waiters); two FIFO queues suffice
for two priorities.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class CallSlots:
    """At most ``limit`` holders at once; waiters that are ``continuing`` go before the others.

    Args:
        limit: the slots (the run's ``concurrency``), at least 1.

    Raises:
        ValueError: ``limit`` below 1.

    Not thread-safe: use from one event loop.
    """

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError(f"call slots: limit must be at least 1, not {limit}")
        self.limit = limit
        self.in_flight = 0
        """Slots held now (for tests and progress)."""
        self.peak = 0
        """The most slots held at once so far."""
        self.filled = asyncio.Event()
        """Set once every slot has been taken, or a call has ended: the run's first calls are out
        (the runner admits its look-ahead questions then, so that preparing them does not delay those)."""
        self._continuing: deque[asyncio.Future[None]] = deque()
        self._first: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        """Callers waiting for a slot (a cancelled waiter leaves its queue, see ``_acquire``)."""
        return len(self._continuing) + len(self._first)

    @contextlib.asynccontextmanager
    async def hold(self, *, continuing: bool = False) -> AsyncIterator[None]:
        """Hold one slot for the body of the ``async with``; ``continuing``: the caller's question
        has made calls before (it goes ahead of questions waiting for their first call)."""
        await self._acquire(continuing)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, continuing: bool) -> None:
        if self.in_flight < self.limit and not self.waiting:
            self._take()
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._continuing if continuing else self._first
        queue.append(waiter)
        try:
            await waiter  # a releasing holder hands its slot over (see _release)
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed a slot, then cancelled: pass it on
                self._release()
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
            raise

    def _take(self) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.in_flight == self.limit:
            self.filled.set()

    def _release(self) -> None:
        self.filled.set()
        for queue in (self._continuing, self._first):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the slot passes to the waiter: in_flight unchanged
                    return
        self.in_flight -= 1


__all__ = ["CallSlots"]
