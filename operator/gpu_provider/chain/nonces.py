"""One signer's nonces: handed out in order from a local counter, synced from the node.

The counter starts at (and is re-synced to) the larger of the node's `pending` count, one
past the highest nonce an open intent holds, and one past the highest nonce still in flight
(taken, not yet broadcast), so a restarted manager never reuses a nonce its journal owns and
a re-sync never hands out one that is about to be broadcast.

Nonces are taken under `lock`, but the transaction's journal write and broadcast happen after
it is released (a burst of 200 bids would otherwise cost 200 journal writes one after the
other). The node still sees them in nonce order: each taken nonce gets a broadcast turn
(`turn`), and a broadcast waits until the nonce before it has been tried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Turn:
    """A nonce's place in the broadcast order."""

    nonce: int
    previous: asyncio.Future[None] | None
    done: asyncio.Future[None]

    async def wait(self) -> None:
        """Until the broadcast before this one has been tried (whatever its answer)."""
        if self.previous is not None:
            await asyncio.shield(self.previous)


class NonceAllocator:
    def __init__(
        self,
        pending_count: Callable[[], Awaitable[int]],
        held_nonces: Callable[[], Awaitable[list[int]]],
    ) -> None:
        self._pending_count = pending_count
        self._held_nonces = held_nonces
        self._next: int | None = None
        self._in_flight: dict[int, Turn] = {}
        self._last_turn: asyncio.Future[None] | None = None
        self.lock = asyncio.Lock()
        """Held by whoever takes a nonce, until it is journaled or its turn is taken."""

    async def take(self) -> int:
        """The next nonce; the caller holds `lock`."""
        if self._next is None:
            self._next = await self.synced()
        nonce = self._next
        self._next += 1
        return nonce

    def turn(self, nonce: int) -> Turn:
        """Queue `nonce` for broadcast behind every nonce queued before it (under `lock`);
        `settle` ends its turn."""
        done = asyncio.get_running_loop().create_future()
        turn = Turn(nonce, self._last_turn, done)
        self._last_turn = done
        self._in_flight[nonce] = turn
        return turn

    def settle(self, turn: Turn) -> None:
        """The turn's broadcast was tried (or never will be): the next one may go."""
        if not turn.done.done():
            turn.done.set_result(None)
        if self._in_flight.get(turn.nonce) is turn:
            del self._in_flight[turn.nonce]

    def in_flight(self) -> frozenset[int]:
        """Nonces taken whose first broadcast has not been tried yet: neither the journal nor
        the node may know them, and nobody else may use them."""
        return frozenset(self._in_flight)

    async def synced(self) -> int:
        pending = await self._pending_count()
        held = [*await self._held_nonces(), *self._in_flight]
        return max(pending, max(held, default=-1) + 1)

    async def resync(self) -> None:
        """Forget the local counter: a nonce was used out of band or a gap appeared."""
        self._next = await self.synced()

    def release(self, nonce: int) -> bool:
        """Give back a nonce that was taken but is known not to be journaled or broadcast.

        Only the newest one can be given back (True); an older one stays a gap (False),
        which the caller or the waiting loop of the transaction behind it fills.
        """
        if self._next == nonce + 1:
            self._next = nonce
            return True
        return False

    def skip_to(self, nonce: int) -> None:
        """Hand out `nonce` next (tools and tests that used nonces by other means)."""
        self._next = nonce
