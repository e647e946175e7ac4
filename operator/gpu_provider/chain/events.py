"""A confirmed, reorg-safe event stream that delivers each event exactly once.

The caller owns the checkpoint: the stream yields `Delivery(event, checkpoint)` and the caller
persists `checkpoint` after handling `event`; a stream restarted from that checkpoint goes on
with the next event. `Delivery(None, checkpoint)` marks progress through blocks without
(matching) events; persisting those is optional and only shortens the next backfill.

How it reads the chain:

- **Backfill** (`logreader.py`). Blocks at least `confirmations` deep are read with
  `eth_getLogs` in ranges of `log_range` blocks, shrunk only when the node refuses a range as
  too large; blocks within `checked_depth` of the head are checked against their blooms.
- **Follow** (`window.py`). Newer blocks are polled every `poll_interval` seconds (sooner
  when another stream sharing its `HeadSignal` saw a new head) into an unconfirmed window
  (hashes link parent to child, logs are checked against those hashes and blooms); a block's
  events are delivered once `confirmations` blocks sit on top of it.
- **Reorgs.** Replaced window blocks are dropped with their events and read again. A change
  under events already delivered raises `ReorgBeyondConfirmations`, naming the block, both
  hashes and where to resume.
- **Failures.** RPC errors are retried with backoff, a rate limit after the wait it asked for;
  the same range is read again.

Marketplace events mostly have no indexed arguments, so `EventSource.where` filters decoded
events in Python (e.g. `OrderMatched` for our provider address).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, Final, Self

from web3 import AsyncWeb3

from gpu_provider.chain.decoding import LogDecodeError
from gpu_provider.chain.errors import RpcError, RpcRateLimited, RpcUnavailable
from gpu_provider.chain.eventroutes import ChainMoved, Routes
from gpu_provider.chain.heads import HeadSignal
from gpu_provider.chain.jsonrpc import Rpc
from gpu_provider.chain.logreader import RangeReader
from gpu_provider.chain.records import (
    ChainEvent,
    Checkpoint,
    Delivery,
    EventSource,
    Predicate,
    arg_equals,
)
from gpu_provider.chain.window import Window
from gpu_provider.config import ChainSettings

__all__ = [
    "ChainEvent",
    "Checkpoint",
    "Delivery",
    "EventSource",
    "EventStream",
    "Predicate",
    "arg_equals",
]

log = logging.getLogger(__name__)

MAX_RETRY_DELAY: Final = 60.0
# Blocks this close to the head have their logs checked against the header's bloom: backends
# behind one load balancer lag each other by a few blocks, rarely by more than a minute.
DEFAULT_CHECKED_DEPTH: Final = 128
# Deliveries handed out between two yields to the event loop.
_YIELD_EVERY: Final = 32


class EventStream:
    """Async iterator of `Delivery` items from `sources`, resuming after `checkpoint`."""

    def __init__(
        self,
        rpc: Rpc | AsyncWeb3[Any],
        sources: Sequence[EventSource],
        checkpoint: Checkpoint,
        *,
        confirmations: int = 2,
        log_range: int = 2000,
        poll_interval: float = 2.0,
        checked_depth: int = DEFAULT_CHECKED_DEPTH,
        heads: HeadSignal | None = None,
    ) -> None:
        """`heads`: shared with the session's other streams; every head this one reads is
        noted there, and an idle wait ends early when another stream notes a newer head."""
        if confirmations < 0 or log_range < 1 or poll_interval <= 0 or checked_depth < 0:
            raise ValueError(
                "confirmations >= 0, log_range >= 1, poll_interval > 0 and checked_depth >= 0 "
                "required"
            )
        self._rpc = rpc if isinstance(rpc, Rpc) else Rpc.of(rpc)
        self._routes = Routes(sources)
        self._reader = RangeReader(self._rpc, self._routes, log_range)
        self._window = Window(self._reader, self._routes, confirmations)
        self.confirmations = confirmations
        self.poll_interval = poll_interval
        self.checked_depth = checked_depth
        self._heads = heads
        self._polled_at = 0.0
        self._frontier = checkpoint
        self._delivered = checkpoint
        self._ready: deque[Delivery] = deque()
        self._failures = 0
        self._handed = 0
        self.head: int | None = None

    @classmethod
    def from_settings(
        cls,
        rpc: Rpc | AsyncWeb3[Any],
        settings: ChainSettings,
        sources: Sequence[EventSource],
        checkpoint: Checkpoint,
        *,
        heads: HeadSignal | None = None,
    ) -> Self:
        return cls(
            rpc,
            sources,
            checkpoint,
            confirmations=settings.confirmations,
            log_range=settings.log_range,
            poll_interval=settings.poll_interval_seconds,
            heads=heads,
        )

    @property
    def checkpoint(self) -> Checkpoint:
        """The checkpoint of the last item handed to the caller."""
        return self._delivered

    @property
    def unconfirmed_events(self) -> list[ChainEvent]:
        """Events seen in blocks not yet confirmed (they may still be rolled back)."""
        return self._window.events

    # -- iteration ---------------------------------------------------------------------------

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Delivery:
        """The next delivery; polls (and sleeps `poll_interval`) until there is one.

        RPC failures are logged and retried with backoff (a rate limit after the wait it asked
        for); only `ReorgBeyondConfirmations` ends the stream.
        """
        while not self._ready:
            try:
                more = await self.poll()
            except (RpcUnavailable, RpcError, LogDecodeError) as exc:
                self._failures += 1
                delay = min(self.poll_interval * 2 ** min(self._failures, 10), MAX_RETRY_DELAY)
                if isinstance(exc, RpcRateLimited) and exc.retry_after is not None:
                    delay = min(max(exc.retry_after, self.poll_interval), MAX_RETRY_DELAY)
                log.warning("event stream: %s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            self._failures = 0
            if not more and not self._ready:
                if self._heads is None:
                    await asyncio.sleep(self.poll_interval)
                elif self._heads.newer_than(self.head):
                    # Another stream already saw a newer head than our node answered: our
                    # node lags (a load balancer). Poll again, but at most four times per
                    # interval, never in a tight loop.
                    spacing = self._polled_at + self.poll_interval / 4 - time.monotonic()
                    await asyncio.sleep(max(0.0, spacing))
                else:
                    await self._heads.wait_past(self.head, self.poll_interval)
        item = self._ready.popleft()
        self._delivered = item.checkpoint
        self._handed += 1
        if self._handed % _YIELD_EVERY == 0:
            # A consumer that never awaits would otherwise starve the background read.
            await asyncio.sleep(0)
        return item

    async def poll(self) -> bool:
        """Read the chain once and queue what became confirmed.

        Returns True when more is ready to read right away (backfill not finished). Raises
        RPC errors (the iterator retries them) and `ReorgBeyondConfirmations`.
        """
        self._polled_at = time.monotonic()
        if self._reader.prefetching and self.head is not None:
            # Mid-backfill, the head read last time is still a valid target: skip a read.
            try:
                await self._backfill(self.head - self.confirmations)
            except ChainMoved:
                self._reader.cancel()
                return False
            return True
        latest = await self._rpc.header("latest")
        if latest is None:
            raise RpcError("eth_getBlockByNumber", 0, "node returned no latest block")
        self.head = head = latest.number
        if self._heads is not None:
            self._heads.note(head)
        safe = head - self.confirmations
        if head < self._frontier.block_number:
            log.warning(
                "event stream: node head %d is behind the checkpoint %d; waiting",
                head,
                self._frontier.block_number,
            )
            return False
        try:
            if not await self._settle_frontier(safe):
                return False
            await self._window.reconcile(latest, self._frontier)
            self._confirm(safe)
            if self._frontier.block_number < safe:
                await self._backfill(safe)
                return self._frontier.block_number < safe
            await self._window.extend(latest, self._frontier)
        except ChainMoved:
            self._reader.cancel()
            log.info("event stream: the chain changed while reading it; reading again")
            return False
        self._confirm(safe)
        return False

    async def aclose(self) -> None:
        """Stop background reads (a stream abandoned mid-backfill may have one running)."""
        self._reader.cancel()

    # -- steps -------------------------------------------------------------------------------

    async def _settle_frontier(self, safe: int) -> bool:
        """Pin the frontier's block hash and finish a block left half-delivered."""
        frontier = self._frontier
        if frontier.block_number < 0:
            return True
        if frontier.block_hash is None:
            anchor = await self._reader.header(frontier.block_number)
            frontier = self._frontier = frontier._replace(block_hash=anchor.hash)
        if frontier.log_index is None:
            self._window.remember(frontier.block_number, frontier.block_hash)
            return True
        if frontier.block_number > safe:
            return False  # confirmations were raised since the checkpoint; wait for depth
        number = frontier.block_number
        logs, anchor = await asyncio.gather(
            self._reader.logs(number, number), self._reader.header(number)
        )
        if anchor.hash != frontier.block_hash:
            raise await self._window.deep_reorg(number, frontier.block_hash, anchor.hash)
        logs = await self._reader.complete(logs, [anchor])
        for event in self._routes.decode(logs, {number: anchor.hash}):
            if event.log_index > frontier.log_index:
                self._ready.append(Delivery(event, event.checkpoint))
        self._frontier = Checkpoint(number, anchor.hash)
        self._ready.append(Delivery(None, self._frontier))
        self._window.remember(number, anchor.hash)
        return True

    def _confirm(self, safe: int) -> None:
        released, self._frontier = self._window.confirm(safe, self._frontier)
        self._ready.extend(released)

    async def _backfill(self, safe: int) -> None:
        """Read one range of confirmed blocks after the frontier (the next one is prefetched,
        so the node works on it while this range is decoded and handled)."""
        frontier = self._frontier
        head = self.head if self.head is not None else safe
        chunk = await self._reader.next_chunk(
            frontier.block_number + 1, safe, head - self.checked_depth + 1
        )
        if chunk.before is not None and chunk.before.hash != frontier.block_hash:
            self._reader.cancel()
            raise await self._window.deep_reorg(
                frontier.block_number, frontier.block_hash, chunk.before.hash
            )
        for event in self._routes.decode(chunk.logs, {chunk.end: chunk.last.hash}):
            self._ready.append(Delivery(event, event.checkpoint))
        self._frontier = Checkpoint(chunk.end, chunk.last.hash)
        self._window.remember(chunk.end, chunk.last.hash)
        self._ready.append(Delivery(None, self._frontier))
