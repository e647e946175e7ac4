"""One journal for the provider's one `TxManager`, kept in two bounded places.

`status.pendingTxs` holds at most 64 intents (the CRD's bound), which a burst of bids alone
would exceed (`TooManyOpenIntents` past 64), and a refused journal write means a bid not
sent. So bids (`bid:<orderId>`) are journaled in their own bounded store, a per-ProviderNode
ConfigMap (`gpu_provider.kube.bidjournal`, up to `BID_JOURNAL_LIMIT` records), and everything
else (advertising, closes, updates, withdrawals) stays in status. Both are written through
`persist` callbacks that refuse once this process is no longer the Lease holder, so a deposed
leader journals, and therefore sends, nothing.

Why a durable store and not an in-memory one with chain-side dedup: a bid broadcast but not
yet mined when the process dies is invisible to `ProviderHasActiveBid` and to gas
estimation, so a restarted engine without the journal would sign a second `placeBid` with a
new nonce: the same calldata twice, one of them reverting on chain. With the journal the
restart resumes the first transaction (same key, same nonce) instead.

The `TxManager` sees one `IntentStore`: the union, routed by key. Puts to one backing store
are serialized with a lock, because each store writes its whole list from a copy (two
concurrent puts would otherwise lose one of them); the bid store batches concurrent puts into
one write itself (`chain/bidbatch.py`: a burst of bids would otherwise wait on hundreds of
ConfigMap writes in a row).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Final

from gpu_provider.chain.errors import ChainError
from gpu_provider.chain.intents import IntentStore, TxIntent
from gpu_provider.chain.tx import TxManager
from gpu_provider.chain.txtypes import TxRequest, TxResult

__all__ = ["BID_JOURNAL_LIMIT", "MeteredTxManager", "RoutedIntentStore"]

BID_JOURNAL_LIMIT: Final = 512
"""Bid records in the ConfigMap (about 1 KiB each, well under a ConfigMap's 1 MiB); the
oldest finished ones are dropped first, open ones never."""


class RoutedIntentStore:
    """`bid:` keys to `bids`, the rest to `main`; each backing store written one at a time."""

    def __init__(self, main: IntentStore, bids: IntentStore, prefix: str = "bid:") -> None:
        self.main = main
        self.bids = bids
        self._prefix = prefix
        # A store that batches its own writes (`BatchedIntentStore`) needs concurrent puts.
        self._locks = {
            id(store): None if getattr(store, "serializes_writes", False) else asyncio.Lock()
            for store in (main, bids)
        }

    def _of(self, key: str) -> IntentStore:
        return self.bids if key.startswith(self._prefix) else self.main

    async def get(self, key: str) -> TxIntent | None:
        return await self._of(key).get(key)

    async def put(self, intent: TxIntent) -> None:
        store = self._of(intent.key)
        async with self._lock(store):
            await store.put(intent)

    async def delete(self, key: str) -> None:
        store = self._of(key)
        async with self._lock(store):
            await store.delete(key)

    def _lock(self, store: IntentStore) -> AbstractAsyncContextManager[object]:
        lock = self._locks[id(store)]
        return nullcontext() if lock is None else lock

    async def open_intents(self) -> list[TxIntent]:
        # Both: the transaction manager's nonces are one sequence over every open intent.
        return [*await self.main.open_intents(), *await self.bids.open_intents()]


def _ignore(_purpose: str, _result: str) -> None:
    return None


class MeteredTxManager(TxManager):
    """The transaction manager, reporting each send's result (`sent`, `failed`, `replaced`:
    mined after more than one attempt) to `observe(purpose, result)`."""

    observe: Callable[[str, str], None] = staticmethod(_ignore)

    async def send(self, key: str, request: TxRequest) -> TxResult:
        purpose = request.purpose or key.split(":", 1)[0]
        try:
            result = await super().send(key, request)
        except ChainError:
            self.observe(purpose, "failed")
            raise
        self.observe(purpose, "sent")
        if result.attempts > 1:
            self.observe(purpose, "replaced")
        return result
