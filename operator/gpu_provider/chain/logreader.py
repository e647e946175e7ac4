"""The event stream's range reader: `eth_getLogs` over block ranges, checked for gaps.

- A range is read with the headers that anchor it (its last block, the block before it) in
  one JSON-RPC batch, so one backend answers all of it: a backend lagging behind the range
  has no header for its end, and the range is read again later.
- Blocks near the head (within `checked_depth`), where backends behind a load balancer lag
  each other, are also checked against their header's `logsBloom`: a block whose bloom holds
  a wanted (address, topic) pair that the answer lacks is read again with
  `eth_getLogs {blockHash}`, which only a node holding that block can answer.
- Only an explicit "range too large" or "too many results" answer halves the range; a rate
  limit is raised (`RpcRateLimited`) and the same range is read again after the wait.
- While one range is handled the next is already being read (a prefetch).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from gpu_provider.chain.errors import RpcError
from gpu_provider.chain.eventroutes import ChainMoved, Routes
from gpu_provider.chain.jsonrpc import Header, RawLog, Rpc
from gpu_provider.chain.rpcerrors import RpcErrorKind, classify

log = logging.getLogger(__name__)

# Consecutive full-size reads before a shrunk eth_getLogs range is doubled again.
_GROW_AFTER: Final = 8


def too_large(error: RpcError) -> bool:
    return classify(error.code, error.rpc_message) is RpcErrorKind.RANGE_TOO_LARGE


def _header_of(raw: Any, number: int) -> Header:
    if not raw:
        raise RpcError("eth_getBlockByNumber", 0, f"node has no block {number} yet")
    try:
        return Header.from_rpc(raw)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise RpcError("eth_getBlockByNumber", 0, f"malformed block in the reply: {exc!r}") from exc


@dataclass(frozen=True)
class Chunk:
    """One eth_getLogs range with the headers that anchor it."""

    start: int
    end: int
    logs: list[RawLog]
    last: Header
    before: Header | None


def _consume_outcome(task: asyncio.Task[Chunk]) -> None:
    # A prefetch nobody awaits (the stream was abandoned) must not log "never retrieved".
    if not task.cancelled():
        task.exception()


class RangeReader:
    def __init__(self, rpc: Rpc, routes: Routes, log_range: int) -> None:
        self._rpc = rpc
        self._routes = routes
        self.max_range = log_range
        self.range = log_range
        self._full_reads = 0
        self._batches = True
        self._prefetch: tuple[int, int, asyncio.Task[Chunk]] | None = None

    async def header(self, number: int) -> Header:
        header = await self._rpc.header(number)
        if header is None:
            raise RpcError("eth_getBlockByNumber", 0, f"node has no block {number} yet")
        return header

    # -- backfill ranges ---------------------------------------------------------------------

    @property
    def prefetching(self) -> bool:
        return self._prefetch is not None

    async def next_chunk(self, start: int, safe: int, checked_from: int) -> Chunk:
        """The range starting at `start` (up to `safe`), starting the read of the next one.

        Blocks from `checked_from` on are checked against their headers' blooms.
        """
        reading = self._take_prefetch(start, safe)
        if reading is None:
            reading = self._start(start, min(start + self.range - 1, safe), checked_from)
        end, task = reading
        if end < safe:
            following = self._start(end + 1, min(end + self.range, safe), checked_from)
            self._prefetch = (end + 1, *following)
        try:
            return await task
        except BaseException:
            self.cancel()
            raise

    def cancel(self) -> None:
        if self._prefetch is not None:
            self._prefetch[2].cancel()
            self._prefetch = None

    def _start(self, start: int, end: int, checked_from: int) -> tuple[int, asyncio.Task[Chunk]]:
        task = asyncio.create_task(self._fetch_range(start, end, checked_from))
        task.add_done_callback(_consume_outcome)
        return end, task

    def _take_prefetch(self, start: int, safe: int) -> tuple[int, asyncio.Task[Chunk]] | None:
        if self._prefetch is None:
            return None
        begins, end, task = self._prefetch
        self._prefetch = None
        if begins != start or end > safe:
            task.cancel()
            return None
        return end, task

    async def _fetch_range(self, start: int, end: int, checked_from: int) -> Chunk:
        """Logs of [start, end] and the headers of `end` and `start - 1` (and of the checked
        blocks), in one batch when the node takes it (a batch saves round trips)."""
        checked = list(range(max(start, checked_from), end))  # `end` is fetched anyway
        calls: list[tuple[str, list[Any]]] = [
            ("eth_getLogs", [self._routes.query(start, end)]),
            ("eth_getBlockByNumber", [hex(end), False]),
            *(("eth_getBlockByNumber", [hex(n), False]) for n in checked),
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
                elif not (exc.method == "eth_getLogs" and too_large(exc)):
                    raise
                # else: the range is too large; the one-call path below splits it
            else:
                self._note_full_read(start, end)
                last = _header_of(results[1], end)
                headers = [_header_of(raw, n) for n, raw in zip(checked, results[2:], strict=False)]
                before = _header_of(results[-1], start - 1) if start > 0 else None
                if end >= checked_from:
                    headers.append(last)
                logs = await self.complete(list(results[0]), headers)
                return Chunk(start, end, logs, last, before)
        fetches: list[Any] = [self.logs(start, end), self.header(end)]
        fetches += [self.header(n) for n in checked]
        if start > 0:
            fetches.append(self.header(start - 1))
        gathered = await asyncio.gather(*fetches)
        last = gathered[1]
        headers = [*gathered[2 : 2 + len(checked)], *([last] if end >= checked_from else [])]
        logs = await self.complete(gathered[0], headers)
        return Chunk(start, end, logs, last, gathered[-1] if start > 0 else None)

    # -- logs --------------------------------------------------------------------------------

    async def logs(self, start: int, end: int) -> list[RawLog]:
        """eth_getLogs over [start, end], splitting the range while the node says too large."""
        try:
            logs = await self._rpc.get_logs(
                addresses=self._routes.addresses,
                topics=[self._routes.topics],
                from_block=start,
                to_block=end,
            )
        except RpcError as exc:
            if end <= start or not too_large(exc):
                raise
            middle = (start + end) // 2
            self.range = max(1, (end - start + 1) // 2)
            self._full_reads = 0
            log.info(
                "eth_getLogs range too large (%s); using %d blocks", exc.rpc_message, self.range
            )
            return [*await self.logs(start, middle), *await self.logs(middle + 1, end)]
        self._note_full_read(start, end)
        return logs

    async def complete(self, logs: list[RawLog], headers: Sequence[Header]) -> list[RawLog]:
        """`logs` with every checked block's logs complete as far as its bloom can tell.

        A block whose bloom holds a wanted pair the answer lacks is read again by hash; that
        answer replaces the block's logs (a bloom can have false positives, so an empty
        by-hash answer is believed).
        """
        if not headers:
            return logs
        numbers = {h.number for h in headers}
        present = self._routes.pairs_by_block(
            [raw for raw in logs if int(raw["blockNumber"], 16) in numbers]
        )
        suspect = [
            h
            for h in headers
            if h.logs_bloom is not None
            and self._routes.in_bloom(h.logs_bloom) - present.get(h.number, set())
        ]
        if not suspect:
            return logs
        answers = await asyncio.gather(
            *(
                self._rpc.get_logs(
                    addresses=self._routes.addresses,
                    topics=[self._routes.topics],
                    block_hash=h.hash,
                )
                for h in suspect
            )
        )
        replaced = {h.number for h in suspect}
        out = [raw for raw in logs if int(raw["blockNumber"], 16) not in replaced]
        for header, answer in zip(suspect, answers, strict=True):
            if any(str(raw.get("blockHash", "")).lower() != header.hash for raw in answer):
                raise ChainMoved
            had = sum(1 for raw in logs if int(raw["blockNumber"], 16) == header.number)
            if len(answer) > had:
                log.warning(
                    "eth_getLogs left out %d log(s) of block %d (a lagging or inconsistent "
                    "backend); read them by block hash",
                    len(answer) - had,
                    header.number,
                )
            out.extend(answer)
        return out

    def _note_full_read(self, start: int, end: int) -> None:
        """Grow a shrunk range back after enough reads of its full size went through."""
        if self.range < self.max_range and end - start + 1 >= self.range:
            self._full_reads += 1
            if self._full_reads >= _GROW_AFTER:
                self.range = min(self.max_range, self.range * 2)
                self._full_reads = 0
