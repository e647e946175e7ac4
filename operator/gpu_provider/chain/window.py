"""The event stream's confirmation window: unconfirmed blocks near the head, and reorgs.

Blocks newer than `confirmations` are read into the window with their decoded events, linked
parent to child by hash. Each poll compares the window with the chain: replaced blocks are
dropped with their events (never delivered) and read again. A block is released, with its
events, once `confirmations` blocks sit on top of it. A change below the window, under events
already delivered, is `ReorgBeyondConfirmations`: those cannot be taken back.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Final

from gpu_provider.chain.errors import ReorgBeyondConfirmations
from gpu_provider.chain.eventroutes import ChainMoved, Routes
from gpu_provider.chain.jsonrpc import Header
from gpu_provider.chain.logreader import RangeReader
from gpu_provider.chain.records import ChainEvent, Checkpoint, Delivery

log = logging.getLogger(__name__)

# Block hashes remembered below the window, to find where a deep reorg forked.
_HISTORY: Final = 256
# Without a remembered block that is still canonical, the resume point suggested after a deep
# reorg is this far below the forked block (Base and Ethereum have never reorganised deeper).
_UNVERIFIED_MARGIN: Final = 64


@dataclass
class _Block:
    hash: str
    events: list[ChainEvent]


class Window:
    def __init__(self, reader: RangeReader, routes: Routes, confirmations: int) -> None:
        self._reader = reader
        self._routes = routes
        self.confirmations = confirmations
        self.blocks: dict[int, _Block] = {}
        self._history: dict[int, str] = {}

    @property
    def events(self) -> list[ChainEvent]:
        return [e for n in sorted(self.blocks) for e in self.blocks[n].events]

    def remember(self, number: int, block_hash: str | None) -> None:
        if block_hash is None:
            return
        self._history[number] = block_hash
        if len(self._history) > _HISTORY:
            for old in sorted(self._history)[: len(self._history) - _HISTORY]:
                del self._history[old]

    async def reconcile(self, latest: Header, frontier: Checkpoint) -> None:
        """Drop window blocks the chain no longer has (and their events)."""
        if not self.blocks:
            return
        tip = max(self.blocks)
        if latest.number >= tip:
            tip_hash = latest.hash if latest.number == tip else (await self._header(tip)).hash
            if tip_hash == self.blocks[tip].hash:
                return
        top = min(tip, latest.number)
        fork = frontier.block_number
        for number in range(top, frontier.block_number, -1):
            if (await self._header(number)).hash == self.blocks[number].hash:
                fork = number
                break
        else:
            anchor = await self._header(frontier.block_number)
            if anchor.hash != frontier.block_hash:
                raise await self.deep_reorg(frontier.block_number, frontier.block_hash, anchor.hash)
        dropped = [n for n in self.blocks if n > fork]
        rolled_back = sum(len(self.blocks[n].events) for n in dropped)
        for number in dropped:
            del self.blocks[number]
        log.warning(
            "chain reorganised above block %d: %d unconfirmed block(s) replaced, %d unconfirmed "
            "event(s) rolled back",
            fork,
            len(dropped),
            rolled_back,
        )

    def confirm(self, safe: int, frontier: Checkpoint) -> tuple[list[Delivery], Checkpoint]:
        """Release window blocks now `confirmations` deep: their deliveries, the new frontier."""
        out: list[Delivery] = []
        last_event: ChainEvent | None = None
        advanced = False
        for number in sorted(n for n in self.blocks if n <= safe):
            block = self.blocks.pop(number)
            for event in block.events:
                out.append(Delivery(event, event.checkpoint))
                last_event = event
            frontier = Checkpoint(number, block.hash)
            self.remember(number, block.hash)
            advanced = True
        if advanced and (last_event is None or last_event.block_number != frontier.block_number):
            out.append(Delivery(None, frontier))
        return out, frontier

    async def extend(self, latest: Header, frontier: Checkpoint) -> None:
        """Read blocks after the window's tip (all unconfirmed) into the window."""
        tip = max(self.blocks) if self.blocks else frontier.block_number
        tip_hash = self.blocks[tip].hash if self.blocks else frontier.block_hash
        if latest.number <= tip:
            return
        numbers = range(tip + 1, latest.number)
        headers = [*await asyncio.gather(*(self._header(n) for n in numbers)), latest]
        parent = tip_hash
        for header in headers:
            if parent is not None and header.parent_hash != parent:
                raise ChainMoved
            parent = header.hash
        logs = await self._reader.logs(tip + 1, latest.number)
        logs = await self._reader.complete(logs, headers)
        hashes = {h.number: h.hash for h in headers}
        blocks = {h.number: _Block(h.hash, []) for h in headers}
        for event in self._routes.decode(logs, hashes):
            blocks[event.block_number].events.append(event)
        self.blocks.update(blocks)

    async def deep_reorg(
        self, number: int, ours: str | None, theirs: str
    ) -> ReorgBeyondConfirmations:
        """The error for a replaced confirmed block, with the newest block both chains share."""
        resume_from: int | None = None
        for known in sorted(self._history, reverse=True):
            if known >= number:
                continue
            header = await self._reader.header(known)
            if header.hash == self._history[known]:
                resume_from = known
                break
        verified = resume_from is not None
        if resume_from is None:
            resume_from = max(-1, number - 1 - _UNVERIFIED_MARGIN)
        where = (
            f"block {resume_from} is the newest block both chains share"
            if verified
            else f"no block this stream remembers below it is still canonical, so block "
            f"{resume_from} ({_UNVERIFIED_MARGIN} blocks below) is a margin, not a known "
            "shared block"
        )
        return ReorgBeyondConfirmations(
            f"block {number} changed from {ours} to {theirs} after its events were delivered "
            f"as confirmed (a reorg deeper than confirmations={self.confirmations}); {where}. "
            "Re-read the chain state the delivered events changed and restart the stream "
            f"from block {resume_from + 1} (Checkpoint({resume_from})), or raise "
            "chain.confirmations",
            resume_from=resume_from,
            block_number=number,
            ours=ours,
            theirs=theirs,
            verified=verified,
        )

    async def _header(self, number: int) -> Header:
        return await self._reader.header(number)
