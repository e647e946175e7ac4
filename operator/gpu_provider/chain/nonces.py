"""One signer's nonces: handed out in order from a local counter, synced from the node.

The counter starts at (and is re-synced to) the larger of the node's `pending` count and
one past the highest nonce an open intent holds, so a restarted manager never reuses a nonce
its journal still owns. Holding `lock` while taking a nonce *and* broadcasting keeps the
node seeing nonces in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class NonceAllocator:
    def __init__(
        self,
        pending_count: Callable[[], Awaitable[int]],
        held_nonces: Callable[[], Awaitable[list[int]]],
    ) -> None:
        self._pending_count = pending_count
        self._held_nonces = held_nonces
        self._next: int | None = None
        self.lock = asyncio.Lock()
        """Held by whoever takes a nonce until its transaction is broadcast."""

    async def take(self) -> int:
        """The next nonce; the caller holds `lock`."""
        if self._next is None:
            self._next = await self.synced()
        nonce = self._next
        self._next += 1
        return nonce

    async def synced(self) -> int:
        pending = await self._pending_count()
        return max(pending, max(await self._held_nonces(), default=-1) + 1)

    async def resync(self) -> None:
        """Forget the local counter: a nonce was used out of band or a gap appeared."""
        self._next = await self.synced()

    def release(self, nonce: int) -> None:
        """Give back a nonce that was taken but is known not to be journaled or broadcast.

        Only the newest one can be given back; an older one stays a gap, which the waiting
        loop of the transaction behind it fills.
        """
        if self._next == nonce + 1:
            self._next = nonce

    def skip_to(self, nonce: int) -> None:
        """Hand out `nonce` next (tools and tests that used nonces by other means)."""
        self._next = nonce
