"""The bid journal with group commit: concurrent puts share one write.

A block with 200 orders means 200 bids, each journaled three times (signed, pending, mined);
`StatusIntentStore` writes the whole list once per put, so written one after the other those
600 writes of a growing list (about 25 ms each to a ConfigMap on kwok) took 15 s, and bids
missed the window. Here a put adds its change to the next batch and waits for the write that
holds it: the first waiter to get the write lock writes every change queued so far, the
others of that batch find it written. So "journaled before broadcast" still holds for each
intent (a put returns only once a write containing it succeeded), while a burst costs a write
per round trip instead of one per intent. A failed write fails every put of its batch, and
the store is left as it was (`StatusIntentStore._write` takes the records only on success).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from gpu_provider.api.v1alpha1.providernode import MAX_PENDING_TXS, PendingTx
from gpu_provider.chain.errors import TransactionError
from gpu_provider.chain.intents import TxIntent
from gpu_provider.chain.statusstore import Persist, StatusIntentStore, bounded, intent_to_status

__all__ = ["BatchedIntentStore"]


class BatchedIntentStore(StatusIntentStore):
    """A `StatusIntentStore` whose concurrent puts and deletes are written together."""

    serializes_writes = True
    """Callers need no lock of their own around put and delete (`RoutedIntentStore`)."""

    def __init__(
        self, persist: Persist, initial: Iterable[PendingTx] = (), *, limit: int = MAX_PENDING_TXS
    ) -> None:
        super().__init__(persist, initial, limit=limit)
        self._queued: dict[str, PendingTx | None] = {}
        self._batch: asyncio.Future[None] | None = None
        self._writing = asyncio.Lock()
        self.writes = 0

    async def put(self, intent: TxIntent) -> None:
        await self._change(intent.key, intent_to_status(intent))

    async def delete(self, key: str) -> None:
        if key in self._records or key in self._queued:
            await self._change(key, None)

    async def _change(self, key: str, record: PendingTx | None) -> None:
        self._queued[key] = record
        if self._batch is None:
            self._batch = asyncio.get_running_loop().create_future()
        batch = self._batch
        async with self._writing:
            if not batch.done():
                await self._write_queued(batch)
        await batch  # this change's write: its error, if it failed

    async def _write_queued(self, batch: asyncio.Future[None]) -> None:
        changes, self._queued, self._batch = self._queued, {}, None
        records = dict(self._records)
        for key, record in changes.items():
            if record is None:
                records.pop(key, None)
            else:
                records[key] = record
        try:
            await self._write(bounded(records, self.limit))
        except Exception as error:
            batch.set_exception(error)
            batch.exception()  # retrieved here: every waiter re-raises it from `await batch`
            return
        except BaseException:
            # The writer was cancelled: the others of its batch are not, but their intents
            # may not be written, so they must not broadcast.
            batch.set_exception(TransactionError("the bid journal write was interrupted"))
            batch.exception()
            raise
        self.writes += 1
        batch.set_result(None)
