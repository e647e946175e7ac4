"""Intents and the checkpoint in `ProviderNode.status`: the operator's durable store.

`StatusIntentStore` keeps the intents as `status.pendingTxs` (`PendingTx`) and hands the
whole list to a `persist` callback (the ProviderNode controller patches status with it)
before `put` returns, so "journaled before broadcast" holds across a restart of the pod.

The list is bounded by the CRD (`MAX_PENDING_TXS`): a put that would exceed it first drops
the oldest finished intents (every finished intent is already buried under the
confirmation depth, see `gpu_provider.chain.intents`); if all of them are open it refuses
with `TooManyOpenIntents`, before anything is broadcast.

Calldata is kept whole (`data`, at most `MAX_CALLDATA_HEX` hex characters), next to its
hash: a restart that finds an intent Signed but unsent re-signs it from the journal (the
signature is deterministic, so the hash matches the one recorded), and one that finds it
Pending re-signs a replacement with higher fees; both need the calldata, not only its hash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

from eth_utils.crypto import keccak

from gpu_provider.api.v1alpha1.providernode import (
    MAX_CALLDATA_HEX,
    MAX_PENDING_TXS,
    ChainProgress,
    PendingTx,
    TxAttemptRecord,
    TxStatus,
)
from gpu_provider.chain.errors import TransactionError
from gpu_provider.chain.intents import IntentStatus, TxAttempt, TxIntent
from gpu_provider.chain.records import Checkpoint

Persist = Callable[[list[PendingTx]], Awaitable[None]]
"""Writes the whole `status.pendingTxs` list durably (e.g. a status patch); raises if not."""


class TooManyOpenIntents(TransactionError):
    """Every slot of `status.pendingTxs` holds an open intent: wait for some to finish."""


class CalldataTooLarge(TransactionError):
    """The calldata does not fit in `status.pendingTxs` (`MAX_CALLDATA_HEX`)."""


def data_hash(data: str) -> str:
    return "0x" + keccak(hexstr=data).hex()


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def intent_to_status(intent: TxIntent) -> PendingTx:
    """The intent as `status.pendingTxs[]` holds it (wei amounts as decimal strings)."""
    data = intent.data.lower()
    if len(data) > MAX_CALLDATA_HEX:
        raise CalldataTooLarge(
            f"the calldata of {intent.key!r} ({len(data) // 2 - 1} bytes) does not fit in "
            f"ProviderNode status ({MAX_CALLDATA_HEX // 2 - 1} bytes at most); not sending"
        )
    return PendingTx(
        key=intent.key,
        purpose=intent.purpose[:64],
        sender=intent.sender,
        chain_id=intent.chain_id,
        to=intent.to,
        data=data,
        data_hash=data_hash(data),
        value=str(intent.value),
        gas=intent.gas,
        nonce=intent.nonce,
        status=TxStatus(intent.status.value),
        attempts=[
            TxAttemptRecord(
                tx_hash=a.tx_hash.lower(),
                nonce=a.nonce,
                max_fee_per_gas=str(a.max_fee_per_gas),
                max_priority_fee_per_gas=str(a.max_priority_fee_per_gas),
                rejected=a.rejected,
            )
            for a in intent.attempts
        ],
        tx_hash=intent.tx_hash.lower() if intent.tx_hash else None,
        block_number=intent.block_number,
        error=intent.error[:1024] if intent.error else None,
        created_at=_time(intent.created_at),
        updated_at=_time(intent.updated_at),
    )


def intent_from_status(record: PendingTx) -> TxIntent:
    """The intent a status entry holds; raises `ValueError` if its calldata was altered."""
    if data_hash(record.data) != record.data_hash:
        raise ValueError(f"pendingTxs[{record.key!r}]: data does not match dataHash")
    return TxIntent(
        key=record.key,
        sender=record.sender,
        chain_id=record.chain_id,
        to=record.to,
        data=record.data,
        value=int(record.value),
        gas=record.gas,
        nonce=record.nonce,
        status=IntentStatus(record.status.value),
        attempts=tuple(
            TxAttempt(
                tx_hash=a.tx_hash,
                max_fee_per_gas=int(a.max_fee_per_gas),
                max_priority_fee_per_gas=int(a.max_priority_fee_per_gas),
                nonce=a.nonce,
                rejected=a.rejected,
            )
            for a in record.attempts
        ),
        tx_hash=record.tx_hash,
        block_number=record.block_number,
        error=record.error,
        purpose=record.purpose,
        created_at=record.created_at.timestamp(),
        updated_at=record.updated_at.timestamp(),
    )


def checkpoint_to_status(checkpoint: Checkpoint, head: int | None = None) -> ChainProgress:
    return ChainProgress(
        head=head,
        last_processed_block=checkpoint.block_number,
        last_processed_block_hash=checkpoint.block_hash,
        last_processed_log_index=checkpoint.log_index,
    )


def checkpoint_from_status(progress: ChainProgress | None) -> Checkpoint | None:
    """The checkpoint to resume from, or None if status has none yet."""
    if progress is None or progress.last_processed_block is None:
        return None
    return Checkpoint.from_dict(
        {
            "blockNumber": progress.last_processed_block,
            "blockHash": progress.last_processed_block_hash,
            "logIndex": progress.last_processed_log_index,
        }
    )


def bounded(records: dict[str, PendingTx], limit: int) -> dict[str, PendingTx]:
    """`records` with the oldest finished entries dropped until at most `limit` remain."""
    over = len(records) - limit
    if over <= 0:
        return records
    finished = sorted(
        (r for r in records.values() if r.status not in (TxStatus.SIGNED, TxStatus.PENDING)),
        key=lambda r: r.updated_at,
    )
    if len(finished) < over:
        raise TooManyOpenIntents(
            f"{len(records) - len(finished)} transactions are still open and status holds at "
            f"most {limit}; wait for some to be mined"
        )
    dropped = {r.key for r in finished[:over]}
    return {k: v for k, v in records.items() if k not in dropped}


class StatusIntentStore:
    """An `IntentStore` over `ProviderNode.status.pendingTxs`, written through `persist`."""

    def __init__(
        self,
        persist: Persist,
        initial: Iterable[PendingTx] = (),
        *,
        limit: int = MAX_PENDING_TXS,
    ) -> None:
        self._persist = persist
        self._records: dict[str, PendingTx] = {r.key: r for r in initial}
        self.limit = limit

    def records(self) -> list[PendingTx]:
        """What `status.pendingTxs` holds now, oldest first."""
        return sorted(self._records.values(), key=lambda r: (r.created_at, r.key))

    async def get(self, key: str) -> TxIntent | None:
        record = self._records.get(key)
        return intent_from_status(record) if record is not None else None

    async def put(self, intent: TxIntent) -> None:
        records = dict(self._records)
        records[intent.key] = intent_to_status(intent)
        records = bounded(records, self.limit)
        await self._write(records)

    async def delete(self, key: str) -> None:
        if key in self._records:
            await self._write({k: v for k, v in self._records.items() if k != key})

    async def open_intents(self) -> list[TxIntent]:
        return [
            intent_from_status(r)
            for r in self._records.values()
            if r.status in (TxStatus.SIGNED, TxStatus.PENDING)
        ]

    async def _write(self, records: dict[str, PendingTx]) -> None:
        # Only what was persisted becomes visible: a failed write leaves the store unchanged.
        ordered = sorted(records.values(), key=lambda r: (r.created_at, r.key))
        await self._persist(ordered)
        self._records = records
