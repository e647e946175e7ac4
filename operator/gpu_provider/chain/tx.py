"""The transaction manager: one signer, each transaction sent once per idempotency key.

`send(key, request)`:

1. If the journal (`IntentStore`) has an intent under `key`, it is resumed: its transactions
   are looked up by hash, re-broadcast or replaced; nothing new is sent for a key whose
   transaction was mined.
2. Otherwise gas is estimated (times a margin; a revert here raises `TransactionReverted` and
   sends nothing), EIP-1559 fees are computed under the cap, a nonce is taken from the local
   counter (synced from `eth_getTransactionCount(pending)`), the transaction is signed, the
   intent recorded, and only then broadcast.
3. Until a receipt arrives: a transaction not mined within `replace_after` is re-signed with
   the same nonce and fees raised by at least 12.5% (dropped or underpriced transactions
   recover this way); a nonce is "taken by a transaction this manager did not send" only when
   the mined nonce has passed it and none of the intent's attempts is known mined (by
   transaction, then receipt), and the intent is then re-sent with a fresh nonce; a nonce
   below ours held by an intent nobody drives (journaled, then abandoned) is driven to an end
   here, and one nobody holds is filled with a zero-value self-transfer.
4. A receipt with `confirmations` blocks on top ends it: `TxResult`, or `TransactionReverted`
   with the reason (Error(string), Panic(uint256) or a custom error from the ABIs given).

Refusals met while waiting (a fee above the cap, the attempt limit, a node refusing a
replacement) are recorded on the intent (`error`) and the wait goes on; the earlier attempts
may still be mined. The caller gets them only as the reason of a `TransactionTimeout`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

from web3 import AsyncWeb3

from gpu_provider.chain.attempts import Attempts
from gpu_provider.chain.decoding import Abi
from gpu_provider.chain.errors import (
    ChainError,
    FeeCapExceeded,
    IntentConflict,
    NonceConflict,
    RpcError,
    RpcUnavailable,
    TransactionError,
    TransactionReverted,
    TransactionTimeout,
)
from gpu_provider.chain.fees import FeePolicy, Fees, fee_policy_from_settings
from gpu_provider.chain.gaps import Gaps
from gpu_provider.chain.intents import IntentStatus, IntentStore, TxIntent
from gpu_provider.chain.jsonrpc import Rpc
from gpu_provider.chain.keylocks import KeyedLocks
from gpu_provider.chain.nodeanswers import SendAnswer
from gpu_provider.chain.nonces import NonceAllocator
from gpu_provider.chain.receipts import replay_revert, result_of, revert_error
from gpu_provider.chain.sender import Sender
from gpu_provider.chain.txtypes import TxRequest, TxResult, TxTimings
from gpu_provider.chain.wallet import Wallet
from gpu_provider.config import ChainSettings

__all__ = ["TxManager", "TxRequest", "TxResult", "TxTimings"]

log = logging.getLogger(__name__)


class TxManager:
    """Sends transactions for one wallet on one chain."""

    def __init__(
        self,
        rpc: Rpc | AsyncWeb3[Any],
        wallet: Wallet,
        store: IntentStore,
        *,
        chain_id: int,
        fees: FeePolicy | None = None,
        timings: TxTimings | None = None,
        error_abis: Sequence[Abi] = (),
    ) -> None:
        self._store = store
        self.chain_id = chain_id
        self.fees = fees or FeePolicy()
        self.timings = timings or TxTimings()
        self._error_abis = list(error_abis)
        self._send = Sender(
            rpc if isinstance(rpc, Rpc) else Rpc.of(rpc),
            wallet,
            chain_id=chain_id,
            fees=self.fees,
            rpc_retries=self.timings.rpc_retries,
        )
        self.nonces = NonceAllocator(self._send.pending_nonce, self._held_nonces)
        self._key_locks = KeyedLocks()
        self._gaps = Gaps(
            self._send,
            store,
            self._key_locks,
            self._finish_abandoned,
            self.timings.replace_after,
            self.nonces.in_flight,
        )
        self._attempts = Attempts(
            self._send, store, self.nonces, self.timings.max_attempts, self._gaps.fill_soon
        )

    @classmethod
    def from_settings(
        cls,
        rpc: Rpc | AsyncWeb3[Any],
        settings: ChainSettings,
        wallet: Wallet,
        store: IntentStore,
        *,
        fees: FeePolicy | None = None,
        timings: TxTimings | None = None,
        error_abis: Sequence[Abi] = (),
    ) -> Self:
        timings = timings or TxTimings(
            poll_interval=min(settings.poll_interval_seconds, 2.0),
            replace_after=settings.transactions.replace_after_seconds,
            receipt_timeout=settings.transactions.receipt_timeout_seconds,
            confirmations=settings.confirmations,
            max_attempts=settings.transactions.max_attempts,
        )
        return cls(
            rpc,
            wallet,
            store,
            chain_id=settings.chain_id,
            fees=fees or fee_policy_from_settings(settings.transactions),
            timings=timings,
            error_abis=error_abis,
        )

    @property
    def address(self) -> str:
        return self._send.address

    # -- public API --------------------------------------------------------------------------

    async def send(self, key: str, request: TxRequest) -> TxResult:
        """Send `request` once under `key` and wait for it to be mined and confirmed.

        Raises `TransactionReverted`, `FeeCapExceeded` (nothing was sent), `IntentConflict`
        (the key was used for a different transaction), `TransactionTimeout` (still pending:
        call again with the same key to resume; its message names the last refusal met while
        waiting), `NonceConflict` or `TransactionError`.
        """
        async with self._key_locks.hold(key):
            intent = await self._store.get(key)
            if intent is not None:
                self._check_same(intent, request)
                if intent.status is not IntentStatus.FAILED:
                    return await self._drive(intent, request.abi, resumed=True)
                # FAILED: nothing of it can ever be mined, so start over under the same key.
            intent = await self._create(key, request)
            return await self._drive(intent, request.abi, resumed=False)

    async def recover(self) -> dict[str, TxResult | ChainError]:
        """Resume every open intent of this wallet (after a restart); results by key."""
        intents = [i for i in await self._store.open_intents() if i.sender == self.address]
        results: dict[str, TxResult | ChainError] = {}

        async def one(intent: TxIntent) -> None:
            try:
                async with self._key_locks.hold(intent.key):
                    current = await self._store.get(intent.key) or intent
                    results[intent.key] = await self._drive(current, (), resumed=True)
            except ChainError as exc:
                results[intent.key] = exc

        await asyncio.gather(*(one(i) for i in sorted(intents, key=lambda i: i.nonce)))
        return results

    async def aclose(self) -> None:
        """Stop driving abandoned intents (they stay journaled for the next run)."""
        await self._gaps.aclose()

    async def _finish_abandoned(self, key: str) -> None:
        """Drive an intent nobody drives (journaled, then its sender went away) to an end."""
        async with self._key_locks.hold(key):
            intent = await self._store.get(key)
            if intent is not None and intent.status.open and intent.sender == self.address:
                await self._drive(intent, (), resumed=True)

    # -- creating ----------------------------------------------------------------------------

    def _check_same(self, intent: TxIntent, request: TxRequest) -> None:
        same = (
            (intent.to or "").lower() == (request.to or "").lower()
            and intent.data.lower() == request.data.lower()
            and intent.value == request.value
            and intent.sender == self.address
        )
        if not same:
            raise IntentConflict(
                f"idempotency key {intent.key!r} was already used for a different transaction "
                f"({intent.status.value}, nonce {intent.nonce}); use a new key"
            )

    async def _held_nonces(self) -> list[int]:
        return [i.nonce for i in await self._store.open_intents() if i.sender == self.address]

    async def _create(self, key: str, request: TxRequest) -> TxIntent:
        gas = request.gas or await self._send.estimate_gas(request, self._error_abis)
        fees = await self._send.current_fees()
        # Only the nonce and the signature are taken under the lock; the journal write and the
        # broadcast follow it (in nonce order), so concurrent sends share journal writes.
        async with self.nonces.lock:
            intent = TxIntent(
                key=key,
                sender=self.address,
                chain_id=self.chain_id,
                to=request.to,
                data=request.data,
                value=request.value,
                gas=gas,
                nonce=await self.nonces.take(),
                purpose=request.purpose or ("call" if request.data != "0x" else "transfer"),
            )
            staged = self._attempts.stage(intent, fees)
        return await self._attempts.complete(staged)

    # -- waiting -----------------------------------------------------------------------------

    async def _drive(self, intent: TxIntent, abi: Abi, *, resumed: bool) -> TxResult:
        """Wait for the intent's transaction, replacing/re-sending it as needed."""
        if intent.status is IntentStatus.MINED:
            receipt = None
            if intent.tx_hash is not None:
                try:
                    receipt = await self._send.rpc.receipt(intent.tx_hash)
                except (RpcUnavailable, RpcError):
                    receipt = None  # the journal alone still answers
            return result_of(intent, receipt)
        if intent.status is IntentStatus.REVERTED:
            raise TransactionReverted(intent.error or "reverted", tx_hash=intent.tx_hash)
        timings = self.timings
        deadline = time.monotonic() + timings.receipt_timeout
        if resumed and await self._send.find_receipt(intent) is None:
            intent = await self._resume(intent)
        last_sent = time.monotonic()
        taken_seen = 0
        while True:
            try:
                receipt = await self._send.find_receipt(intent)
                if receipt is not None:
                    done = await self._finish(intent, receipt, abi)
                    if done is not None:
                        return done
                elif (latest := await self._send.mined_nonce()) > intent.nonce:
                    if await self._send.any_attempt_mined(intent):
                        taken_seen = 0  # ours is mined; the receipt index lags behind the blocks
                    else:
                        taken_seen += 1  # twice in a row: one node may lag the other
                        if taken_seen >= 2:
                            taken_seen = 0
                            last_sent = time.monotonic()
                            intent = await self._resend_fresh_nonce(intent)
                else:
                    taken_seen = 0
                    if time.monotonic() - last_sent >= timings.replace_after:
                        last_sent = time.monotonic()
                        await self._gaps.unblock(latest, intent.nonce)
                        intent = await self._replace(intent)
            except (RpcUnavailable, RpcError) as exc:
                log.warning("waiting for %s: %s", intent.key, exc)
            except (TransactionReverted, NonceConflict):
                raise
            except TransactionError as exc:
                intent = await self._note(intent, exc)
            if time.monotonic() >= deadline:
                newest = intent.newest_attempt()
                raise TransactionTimeout(
                    f"no receipt for {intent.key!r} (nonce {intent.nonce}, latest "
                    f"{newest.tx_hash if newest else 'unsent'}) within "
                    f"{timings.receipt_timeout:.0f} s"
                    + (f" ({intent.error})" if intent.error else "")
                    + "; it stays journaled: send again with the same key to resume"
                )
            await asyncio.sleep(timings.poll_interval)

    async def _note(self, intent: TxIntent, error: TransactionError) -> TxIntent:
        """Record a refusal met while waiting (the intent's outcome so far); keep waiting."""
        current = await self._store.get(intent.key) or intent
        if current.error != str(error):
            log.warning("%r: %s; still waiting for it", intent.key, error)
            current = current.evolve(error=str(error))
            await self._store.put(current)
        return current

    async def _resume(self, intent: TxIntent) -> TxIntent:
        """Broadcast the newest attempt again, exactly as journaled: it may never have reached
        a node (the process stopped between journal and send), or the node forgot it."""
        answer, detail = await self._attempts.rebroadcast(intent)
        if intent.status is IntentStatus.SIGNED:
            if answer in (SendAnswer.ACCEPTED, SendAnswer.UNKNOWN):
                intent = intent.evolve(status=IntentStatus.PENDING)
                await self._store.put(intent)
            elif answer is SendAnswer.REJECTED:
                # No node will ever take it: fail it and free its nonce so later ones go on.
                error = f"the node rejected the journaled transaction: {detail}"
                await self._store.put(intent.evolve(status=IntentStatus.FAILED, error=error))
                await self._gaps.fill(intent.nonce)
                raise TransactionError(f"{error}; its nonce {intent.nonce} was freed")
        return intent

    async def _finish(
        self, intent: TxIntent, receipt: Mapping[str, Any], abi: Abi
    ) -> TxResult | None:
        """Record a receipt once it is confirmed; None while it is not yet deep enough."""
        number = int(receipt["blockNumber"], 16)
        rpc = self._send.rpc
        if self.timings.confirmations > 0:
            head = await rpc.block_number()
            if head - number < self.timings.confirmations:
                return None
            again = await rpc.receipt(str(receipt["transactionHash"]))
            if again is None or again.get("blockHash") != receipt.get("blockHash"):
                return None  # reorganised away meanwhile; keep waiting
        tx_hash = str(receipt["transactionHash"]).lower()
        if int(receipt.get("status", "0x1"), 16) == 1:
            intent = intent.evolve(
                status=IntentStatus.MINED, tx_hash=tx_hash, block_number=number, error=None
            )
            await self._store.put(intent)
            return result_of(intent, receipt)
        revert = await replay_revert(rpc, intent, number, [abi, *self._error_abis])
        intent = intent.evolve(
            status=IntentStatus.REVERTED, tx_hash=tx_hash, block_number=number, error=revert.reason
        )
        await self._store.put(intent)
        raise revert_error(revert, tx_hash)

    async def _replace(self, intent: TxIntent) -> TxIntent:
        """Same nonce, fees raised: recovers dropped and underpriced transactions."""
        last = intent.newest_attempt()
        if len(intent.attempts) >= self.timings.max_attempts:
            await self._attempts.rebroadcast(intent)
            raise TransactionError(
                f"reached the limit of {self.timings.max_attempts} attempts; re-broadcasting "
                "the newest one"
            )
        if last is None or last.nonce != intent.nonce:
            fees = await self._send.current_fees()
        else:
            bumped = await self._send.bumped(
                Fees(last.max_fee_per_gas, last.max_priority_fee_per_gas)
            )
            if bumped is None:
                await self._attempts.rebroadcast(intent)
                raise FeeCapExceeded(
                    f"{last.tx_hash} is not mined and the fee cap leaves no room to raise its "
                    "fees; broadcasting it again"
                )
            fees = bumped
        log.info(
            "%r not mined after %.0f s: replacing it (nonce %d)",
            intent.key,
            self.timings.replace_after,
            intent.nonce,
        )
        return await self._attempts.sign_record_broadcast(intent, fees, fresh=False, renonce=False)

    async def _resend_fresh_nonce(self, intent: TxIntent) -> TxIntent:
        """Our nonce was used by a transaction we did not send: send again with a new one."""
        if len(intent.attempts) >= self.timings.max_attempts:
            error = (
                f"nonce {intent.nonce} of {self.address} was used by a transaction this manager "
                f"did not send, and {intent.key!r} reached its limit of attempts"
            )
            await self._store.put(intent.evolve(status=IntentStatus.FAILED, error=error))
            raise NonceConflict(error)
        # Priced before a nonce is taken, so a refusal leaves no gap.
        fees = await self._send.current_fees()
        async with self.nonces.lock:
            if await self._send.any_attempt_mined(intent):
                return intent
            await self.nonces.resync()
            nonce = await self.nonces.take()
            log.warning(
                "nonce %d of %s was used by a transaction this manager did not send; sending %r "
                "again with nonce %d",
                intent.nonce,
                self.address,
                intent.key,
                nonce,
            )
            intent = intent.evolve(nonce=nonce)
            return await self._attempts.sign_record_broadcast(
                intent, fees, fresh=False, renonce=True
            )
