"""The newest block head any event stream of one chain session has read.

The chain daemon follows the chain with two streams: bids at confirmations 0, polled four
times per `poll_interval_seconds` (an order seen late is a bid past its window), and lease
intake at the configured confirmations, polled once per interval. Polled on its own, intake
saw a lease that had just become confirmable up to a whole interval late (p99 2.1 s at the
default 2 s, bench/lifecycle/RESULTS.md). Sharing the heads the bid stream reads wakes intake
as soon as a new block is seen, for no extra RPC call; its own interval stays the fallback
when nothing else polls.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["HeadSignal"]


class HeadSignal:
    """`note` a head read from the node; `wait_past` until one newer than yours is noted."""

    def __init__(self) -> None:
        self.head: int | None = None
        self._newer = asyncio.Event()

    def note(self, head: int) -> None:
        if self.head is not None and head <= self.head:
            return
        self.head = head
        # Wake everyone waiting now; later waiters get a fresh event.
        self._newer.set()
        self._newer = asyncio.Event()

    def newer_than(self, head: int | None) -> bool:
        return self.head is not None and (head is None or self.head > head)

    async def wait_past(self, head: int | None, at_most: float) -> bool:
        """Until a head newer than `head` is noted (True at once if one is), at most
        `at_most` seconds (False)."""
        if self.newer_than(head):
            return True
        newer = self._newer
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most):
                await newer.wait()
            return True
        return False
