"""A confirmed, reorg-safe event stream that delivers each event exactly once.

The caller owns the checkpoint: the stream yields `Delivery(event, checkpoint)` and the caller
persists `checkpoint` after handling `event`; a stream restarted from that checkpoint goes on
with the next event. `Delivery(None, checkpoint)` marks progress through blocks without
(matching) events; persisting those is optional and only shortens the next backfill.

How it reads the chain:

- **Backfill.** Blocks at least `confirmations` deep are read with `eth_getLogs` in ranges of
  `log_range` blocks, shrunk when the node refuses a range as too large.
- **Follow.** Newer blocks are polled every `poll_interval` seconds into an unconfirmed window
  (block hashes checked to link parent to child, logs checked against those hashes); a block's
  events are delivered once `confirmations` blocks sit on top of it.
- **Reorgs.** Each poll compares the window's stored hashes with the chain. Blocks that were
  replaced are dropped with their events (never delivered) and read again, so replacement
  events are delivered once they are confirmed. A change below the window, under events
  already delivered, raises `ReorgBeyondConfirmations`: those cannot be taken back.

Marketplace events mostly have no indexed arguments, so `EventSource.where` filters decoded
events in Python (e.g. `OrderMatched` for our provider address).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Self

from web3 import AsyncWeb3

from gpu_provider.chain.decoding import EventDecoder, LogDecodeError, event_decoders
from gpu_provider.chain.errors import ReorgBeyondConfirmations, RpcError, RpcUnavailable
from gpu_provider.chain.jsonrpc import Header, RawLog, Rpc
from gpu_provider.chain.records import (
    ChainEvent,
    Checkpoint,
    Delivery,
    EventSource,
    Predicate,
    arg_equals,
)
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
_HISTORY: Final = 256
# Wording nodes and hosted RPCs use when an eth_getLogs range is too large to answer.
_TOO_LARGE: Final = (
    "too many",
    "more than",
    "limit",
    "response size",
    "too large",
    "too wide",
    "exceed",
    "maximum",
    "block range",
    "timeout",
    "timed out",
    "413",
)
# Deliveries handed out between two yields to the event loop.
_YIELD_EVERY: Final = 32
# Consecutive full-size reads before a shrunk eth_getLogs range is doubled again.
_GROW_AFTER: Final = 8


def _too_large(error: RpcError) -> bool:
    return any(word in error.text for word in _TOO_LARGE)


def _header_of(raw: Any, number: int) -> Header:
    if not raw:
        raise RpcError("eth_getBlockByNumber", 0, f"node has no block {number} yet")
    try:
        return Header.from_rpc(raw)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise RpcError("eth_getBlockByNumber", 0, f"malformed block in the reply: {exc!r}") from exc


class _ChainMoved(Exception):
    """Two reads disagree about a block: the chain changed in between. Read again later."""


@dataclass
class _Block:
    hash: str
    events: list[ChainEvent]


@dataclass(frozen=True)
class _Chunk:
    """One eth_getLogs range with the headers that anchor it."""

    start: int
    end: int
    logs: list[RawLog]
    last: Header
    before: Header | None


def _consume_outcome(task: asyncio.Task[_Chunk]) -> None:
    # A prefetch nobody awaits (the stream was abandoned) must not log "never retrieved".
    if not task.cancelled():
        task.exception()


@dataclass(frozen=True)
class _Route:
    decoder: EventDecoder
    keep: Predicate | None


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
    ) -> None:
        if not sources:
            raise ValueError("EventStream needs at least one EventSource")
        if confirmations < 0 or log_range < 1 or poll_interval <= 0:
            raise ValueError("confirmations >= 0, log_range >= 1 and poll_interval > 0 required")
        self._rpc = rpc if isinstance(rpc, Rpc) else Rpc.of(rpc)
        self._routes: dict[tuple[str, str], _Route] = {}
        for source in sources:
            decoders = event_decoders(source.abi, source.events)
            unknown = set(source.where) - {d.name for d in decoders.values()}
            if unknown:
                raise ValueError(f"filters for events not streamed: {', '.join(sorted(unknown))}")
            for topic, decoder in decoders.items():
                route = _Route(decoder, source.where.get(decoder.name))
                self._routes[(source.address.lower(), topic)] = route
        self._addresses = sorted({address for address, _ in self._routes})
        self._topics = sorted({topic for _, topic in self._routes})
        self.confirmations = confirmations
        self.poll_interval = poll_interval
        self._max_range = log_range
        self._range = log_range
        self._full_reads = 0
        self._frontier = checkpoint
        self._delivered = checkpoint
        self._window: dict[int, _Block] = {}
        self._history: dict[int, str] = {}
        self._ready: deque[Delivery] = deque()
        self._failures = 0
        self._prefetch: tuple[int, int, asyncio.Task[_Chunk]] | None = None
        self._batches = True
        self._handed = 0
        self.head: int | None = None

    @classmethod
    def from_settings(
        cls,
        rpc: Rpc | AsyncWeb3[Any],
        settings: ChainSettings,
        sources: Sequence[EventSource],
        checkpoint: Checkpoint,
    ) -> Self:
        return cls(
            rpc,
            sources,
            checkpoint,
            confirmations=settings.confirmations,
            log_range=settings.log_range,
            poll_interval=settings.poll_interval_seconds,
        )

    @property
    def checkpoint(self) -> Checkpoint:
        """The checkpoint of the last item handed to the caller."""
        return self._delivered

    @property
    def unconfirmed_events(self) -> list[ChainEvent]:
        """Events seen in blocks not yet confirmed (they may still be rolled back)."""
        return [e for n in sorted(self._window) for e in self._window[n].events]

    # -- iteration ---------------------------------------------------------------------------

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Delivery:
        """The next delivery; polls (and sleeps `poll_interval`) until there is one.

        RPC failures are logged and retried with backoff; only `ReorgBeyondConfirmations`
        ends the stream.
        """
        while not self._ready:
            try:
                more = await self.poll()
            except (RpcUnavailable, RpcError, LogDecodeError) as exc:
                self._failures += 1
                delay = min(self.poll_interval * 2 ** min(self._failures, 10), MAX_RETRY_DELAY)
                log.warning("event stream: %s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            self._failures = 0
            if not more and not self._ready:
                await asyncio.sleep(self.poll_interval)
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
        if self._prefetch is not None and self.head is not None:
            # Mid-backfill, the head read last time is still a valid target: skip a read.
            try:
                await self._backfill(self.head - self.confirmations)
            except _ChainMoved:
                self._cancel_prefetch()
                return False
            return True
        latest = await self._rpc.header("latest")
        if latest is None:
            raise RpcError("eth_getBlockByNumber", 0, "node returned no latest block")
        self.head = head = latest.number
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
            await self._reconcile_window(latest)
            self._confirm(safe)
            if self._frontier.block_number < safe:
                await self._backfill(safe)
                return self._frontier.block_number < safe
            await self._extend_window(latest)
        except _ChainMoved:
            self._cancel_prefetch()
            log.info("event stream: the chain changed while reading it; reading again")
            return False
        self._confirm(safe)
        return False

    # -- steps -------------------------------------------------------------------------------

    async def _header(self, number: int) -> Header:
        header = await self._rpc.header(number)
        if header is None:
            raise RpcError("eth_getBlockByNumber", 0, f"node has no block {number} yet")
        return header

    async def _settle_frontier(self, safe: int) -> bool:
        """Pin the frontier's block hash and finish a block left half-delivered."""
        frontier = self._frontier
        if frontier.block_number < 0:
            return True
        if frontier.block_hash is None:
            anchor = await self._header(frontier.block_number)
            frontier = self._frontier = frontier._replace(block_hash=anchor.hash)
        if frontier.log_index is None:
            self._remember(frontier.block_number, frontier.block_hash)
            return True
        if frontier.block_number > safe:
            return False  # confirmations were raised since the checkpoint; wait for depth
        logs, anchor = await asyncio.gather(
            self._logs(frontier.block_number, frontier.block_number),
            self._header(frontier.block_number),
        )
        if anchor.hash != frontier.block_hash:
            raise await self._deep_reorg(frontier.block_number, frontier.block_hash, anchor.hash)
        for event in self._decode(logs, {frontier.block_number: anchor.hash}):
            if event.log_index > frontier.log_index:
                self._ready.append(Delivery(event, event.checkpoint))
        self._frontier = Checkpoint(frontier.block_number, anchor.hash)
        self._ready.append(Delivery(None, self._frontier))
        self._remember(frontier.block_number, anchor.hash)
        return True

    async def _reconcile_window(self, latest: Header) -> None:
        """Drop window blocks the chain no longer has (and their events)."""
        if not self._window:
            return
        tip = max(self._window)
        if latest.number >= tip:
            tip_hash = latest.hash if latest.number == tip else (await self._header(tip)).hash
            if tip_hash == self._window[tip].hash:
                return
        top = min(tip, latest.number)
        fork = self._frontier.block_number
        for number in range(top, self._frontier.block_number, -1):
            if (await self._header(number)).hash == self._window[number].hash:
                fork = number
                break
        else:
            frontier = self._frontier
            anchor = await self._header(frontier.block_number)
            if anchor.hash != frontier.block_hash:
                raise await self._deep_reorg(
                    frontier.block_number, frontier.block_hash, anchor.hash
                )
        dropped = [n for n in self._window if n > fork]
        rolled_back = sum(len(self._window[n].events) for n in dropped)
        for number in dropped:
            del self._window[number]
        log.warning(
            "chain reorganised above block %d: %d unconfirmed block(s) replaced, %d unconfirmed "
            "event(s) rolled back",
            fork,
            len(dropped),
            rolled_back,
        )

    def _confirm(self, safe: int) -> None:
        """Queue the events of window blocks that are now `confirmations` deep."""
        last_event: ChainEvent | None = None
        advanced = False
        for number in sorted(n for n in self._window if n <= safe):
            block = self._window.pop(number)
            for event in block.events:
                self._ready.append(Delivery(event, event.checkpoint))
                last_event = event
            self._frontier = Checkpoint(number, block.hash)
            self._remember(number, block.hash)
            advanced = True
        if advanced and (
            last_event is None or last_event.block_number != self._frontier.block_number
        ):
            self._ready.append(Delivery(None, self._frontier))

    async def _backfill(self, safe: int) -> None:
        """Read one range of confirmed blocks after the frontier.

        The read of the following range is started before this one is awaited, so the node
        works on it while this range is parsed, decoded and handled.
        """
        frontier = self._frontier
        start = frontier.block_number + 1
        reading = self._take_prefetch(start, safe)
        if reading is None:
            reading = self._start_read(start, min(frontier.block_number + self._range, safe))
        end, task = reading
        if end < safe:
            self._prefetch = (end + 1, *self._start_read(end + 1, min(end + self._range, safe)))
        try:
            chunk = await task
        except BaseException:
            self._cancel_prefetch()
            raise
        if chunk.before is not None and chunk.before.hash != frontier.block_hash:
            self._cancel_prefetch()
            raise await self._deep_reorg(
                frontier.block_number, frontier.block_hash, chunk.before.hash
            )
        for event in self._decode(chunk.logs, {chunk.end: chunk.last.hash}):
            self._ready.append(Delivery(event, event.checkpoint))
        self._frontier = Checkpoint(chunk.end, chunk.last.hash)
        self._remember(chunk.end, chunk.last.hash)
        self._ready.append(Delivery(None, self._frontier))

    def _start_read(self, start: int, end: int) -> tuple[int, asyncio.Task[_Chunk]]:
        task = asyncio.create_task(self._fetch_range(start, end))
        task.add_done_callback(_consume_outcome)
        return end, task

    def _take_prefetch(self, start: int, safe: int) -> tuple[int, asyncio.Task[_Chunk]] | None:
        if self._prefetch is None:
            return None
        begins, end, task = self._prefetch
        self._prefetch = None
        if begins != start or end > safe:
            task.cancel()
            return None
        return end, task

    async def _fetch_range(self, start: int, end: int) -> _Chunk:
        """Logs of [start, end] and the headers of `end` and `start - 1`, in one batch when
        the node takes it (a batch saves two round trips per range)."""
        query = self._log_query(start, end)
        calls: list[tuple[str, list[Any]]] = [
            ("eth_getLogs", [query]),
            ("eth_getBlockByNumber", [hex(end), False]),
        ]
        if start > 0:
            calls.append(("eth_getBlockByNumber", [hex(start - 1), False]))
        if self._batches:
            try:
                results = await self._rpc.batch(calls)
            except RpcError as exc:
                if exc.method == "batch":
                    self._batches = False  # this node or a proxy in between refuses batches
                    log.info("event stream: RPC batches refused (%s); one call at a time", exc)
                elif not (exc.method == "eth_getLogs" and _too_large(exc)):
                    raise
                # else: the range is too large; the one-call path below splits it
            else:
                self._note_full_read(start, end)
                before = _header_of(results[2], start - 1) if start > 0 else None
                return _Chunk(start, end, list(results[0]), _header_of(results[1], end), before)
        fetches: list[Any] = [self._logs(start, end), self._header(end)]
        if start > 0:
            fetches.append(self._header(start - 1))
        gathered = await asyncio.gather(*fetches)
        return _Chunk(start, end, gathered[0], gathered[1], gathered[2] if start > 0 else None)

    def _cancel_prefetch(self) -> None:
        if self._prefetch is not None:
            self._prefetch[2].cancel()
            self._prefetch = None

    async def aclose(self) -> None:
        """Stop background reads (a stream abandoned mid-backfill may have one running)."""
        self._cancel_prefetch()

    async def _extend_window(self, latest: Header) -> None:
        """Read blocks after the window's tip (all unconfirmed) into the window."""
        tip = max(self._window) if self._window else self._frontier.block_number
        tip_hash = self._window[tip].hash if self._window else self._frontier.block_hash
        if latest.number <= tip:
            return
        numbers = range(tip + 1, latest.number)
        headers = [*await asyncio.gather(*(self._header(n) for n in numbers)), latest]
        parent = tip_hash
        for header in headers:
            if parent is not None and header.parent_hash != parent:
                raise _ChainMoved
            parent = header.hash
        logs = await self._logs(tip + 1, latest.number)
        hashes = {h.number: h.hash for h in headers}
        blocks = {h.number: _Block(h.hash, []) for h in headers}
        for event in self._decode(logs, hashes):
            blocks[event.block_number].events.append(event)
        self._window.update(blocks)

    # -- helpers -----------------------------------------------------------------------------

    def _log_query(self, start: int, end: int) -> dict[str, Any]:
        return {
            "address": self._addresses,
            "topics": [self._topics],
            "fromBlock": hex(start),
            "toBlock": hex(end),
        }

    async def _logs(self, start: int, end: int) -> list[RawLog]:
        """eth_getLogs over [start, end], splitting the range while the node says too large."""
        try:
            logs = await self._rpc.get_logs(
                addresses=self._addresses, topics=[self._topics], from_block=start, to_block=end
            )
        except RpcError as exc:
            if end <= start or not _too_large(exc):
                raise
            middle = (start + end) // 2
            self._range = max(1, (end - start + 1) // 2)
            self._full_reads = 0
            log.info(
                "eth_getLogs range too large (%s); using %d blocks", exc.rpc_message, self._range
            )
            return [*await self._logs(start, middle), *await self._logs(middle + 1, end)]
        self._note_full_read(start, end)
        return logs

    def _note_full_read(self, start: int, end: int) -> None:
        """Grow a shrunk range back after enough reads of its full size went through."""
        if self._range < self._max_range and end - start + 1 >= self._range:
            self._full_reads += 1
            if self._full_reads >= _GROW_AFTER:
                self._range = min(self._max_range, self._range * 2)
                self._full_reads = 0

    def _decode(self, logs: Sequence[RawLog], hashes: Mapping[int, str]) -> list[ChainEvent]:
        """Decode and filter logs, in chain order.

        Raises `_ChainMoved` for a log whose block hash differs from `hashes`.
        """
        out: list[ChainEvent] = []
        routes = self._routes
        numbers: dict[str, int] = {}
        for raw in logs:
            try:
                topics = raw["topics"]
                route = routes.get((raw["address"].lower(), topics[0].lower())) if topics else None
                if route is None or raw.get("removed"):
                    continue
                number_hex = raw["blockNumber"]
                number = numbers.get(number_hex)
                if number is None:
                    number = numbers[number_hex] = int(number_hex, 16)
                block_hash = raw["blockHash"].lower()
                expected = hashes.get(number)
                if expected is not None and expected != block_hash:
                    raise _ChainMoved
                args = route.decoder.decode(topics, raw["data"])
                event = ChainEvent(
                    route.decoder.name,
                    args,
                    raw["address"],
                    number,
                    block_hash,
                    raw["transactionHash"].lower(),
                    int(raw["transactionIndex"], 16),
                    int(raw["logIndex"], 16),
                )
            except LogDecodeError as exc:
                log.warning(
                    "skipping a malformed log in tx %s: %s", raw.get("transactionHash"), exc
                )
                continue
            except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
                raise RpcError("eth_getLogs", 0, f"malformed log in the reply: {exc!r}") from exc
            if route.keep is None or route.keep(event):
                out.append(event)
        out.sort(key=lambda e: (e.block_number, e.log_index))
        return out

    def _remember(self, number: int, block_hash: str | None) -> None:
        if block_hash is None:
            return
        self._history[number] = block_hash
        if len(self._history) > _HISTORY:
            for old in sorted(self._history)[: len(self._history) - _HISTORY]:
                del self._history[old]

    async def _deep_reorg(
        self, number: int, ours: str | None, theirs: str
    ) -> ReorgBeyondConfirmations:
        """The error for a replaced confirmed block, with the newest block both chains share."""
        resume_from = -1
        for known in sorted(self._history, reverse=True):
            if known >= number:
                continue
            header = await self._rpc.header(known)
            if header is not None and header.hash == self._history[known]:
                resume_from = known
                break
        return ReorgBeyondConfirmations(
            f"block {number} changed from {ours} to {theirs} after its events were delivered "
            f"as confirmed (a reorg deeper than confirmations={self.confirmations}); re-read "
            f"chain state and restart the stream from block {resume_from + 1}, or raise "
            "chain.confirmations",
            resume_from=resume_from,
        )
