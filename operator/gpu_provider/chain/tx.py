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
   recover this way); a nonce taken by a transaction this manager did not send is detected
   and the intent re-sent with a fresh nonce; nonces left unused below ours are filled with
   zero-value self-transfers so later transactions are not stuck behind a gap.
4. A receipt with `confirmations` blocks on top ends it: `TxResult`, or `TransactionReverted`
   with the reason (Error(string), Panic(uint256) or a custom error from the ABIs given).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Self, TypeVar

from eth_utils.address import to_checksum_address
from web3 import AsyncWeb3

from gpu_provider.chain.decoding import Abi
from gpu_provider.chain.errors import (
    ChainError,
    IntentConflict,
    RpcError,
    RpcUnavailable,
    TransactionError,
    TransactionReverted,
    TransactionTimeout,
)
from gpu_provider.chain.fees import (
    FeePolicy,
    Fees,
    fee_policy_from_settings,
    fees_for,
    replacement_fees,
    tip_for,
)
from gpu_provider.chain.intents import IntentStatus, IntentStore, TxAttempt, TxIntent
from gpu_provider.chain.jsonrpc import Rpc
from gpu_provider.chain.keylocks import KeyedLocks
from gpu_provider.chain.nodeanswers import SendAnswer, classify_send_error
from gpu_provider.chain.receipts import as_chain_error, replay_revert, result_of
from gpu_provider.chain.txtypes import TxRequest, TxResult, TxTimings
from gpu_provider.chain.wallet import SignedTx, Wallet
from gpu_provider.config import ChainSettings

__all__ = ["TxManager", "TxRequest", "TxResult", "TxTimings"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_MAX_BROADCAST_TRIES = 5


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
        self._rpc = rpc if isinstance(rpc, Rpc) else Rpc.of(rpc)
        self._wallet = wallet
        self._store = store
        self.chain_id = chain_id
        self.fees = fees or FeePolicy()
        self.timings = timings or TxTimings()
        self._error_abis = list(error_abis)
        self._nonce: int | None = None
        self._nonce_lock = asyncio.Lock()
        self._key_locks = KeyedLocks()
        self._fillers: set[int] = set()

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
        return self._wallet.address

    # -- public API --------------------------------------------------------------------------

    async def send(self, key: str, request: TxRequest) -> TxResult:
        """Send `request` once under `key` and wait for it to be mined and confirmed.

        Raises `TransactionReverted`, `FeeCapExceeded`, `IntentConflict` (the key was used
        for a different transaction), `TransactionTimeout` (still pending: call again with
        the same key to resume) or `TransactionError`.
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
                    results[intent.key] = await self._drive(intent, (), resumed=True)
            except ChainError as exc:
                results[intent.key] = exc

        await asyncio.gather(*(one(i) for i in sorted(intents, key=lambda i: i.nonce)))
        return results

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

    async def _create(self, key: str, request: TxRequest) -> TxIntent:
        gas = request.gas or await self._estimate_gas(request)
        fees = await self._current_fees()
        async with self._nonce_lock:
            nonce = await self._take_nonce()
            intent = TxIntent(
                key=key,
                sender=self.address,
                chain_id=self.chain_id,
                to=request.to,
                data=request.data,
                value=request.value,
                gas=gas,
                nonce=nonce,
            )
            return await self._sign_record_broadcast(intent, fees, fresh=True, renonce=True)

    async def _estimate_gas(self, request: TxRequest) -> int:
        call: dict[str, Any] = {
            "from": self.address,
            "data": request.data,
            "value": hex(request.value),
        }
        if request.to is not None:
            call["to"] = request.to
        try:
            estimate = int(await self._retry(self._rpc.call, "eth_estimateGas", call), 16)
        except RpcError as exc:
            raise as_chain_error(exc, [request.abi, *self._error_abis]) from None
        return math.ceil(estimate * self.fees.gas_margin)

    async def _current_fees(self) -> Fees:
        header, suggested = await asyncio.gather(
            self._retry(self._rpc.header, "latest"), self._suggested_tip()
        )
        if header is None or header.base_fee_per_gas is None:
            raise TransactionError("the chain reports no EIP-1559 base fee; it is not supported")
        return fees_for(self.fees, header.base_fee_per_gas, tip_for(self.fees, suggested))

    async def _suggested_tip(self) -> int | None:
        if self.fees.priority_fee is not None:
            return None
        try:
            return int(await self._retry(self._rpc.call, "eth_maxPriorityFeePerGas"), 16)
        except RpcError:
            return None  # not every node has it; the policy's minimum applies

    async def _take_nonce(self) -> int:
        if self._nonce is None:
            self._nonce = await self._synced_nonce()
        nonce = self._nonce
        self._nonce += 1
        return nonce

    async def _synced_nonce(self) -> int:
        pending = await self._retry(self._rpc.transaction_count, self.address, "pending")
        held = [i.nonce for i in await self._store.open_intents() if i.sender == self.address]
        return max(pending, max(held, default=-1) + 1)

    def _release_nonce(self, nonce: int) -> None:
        """Give back a nonce that was taken but never broadcast."""
        if self._nonce == nonce + 1:
            self._nonce = nonce
        # otherwise a later nonce is in use: the gap is filled when someone waits behind it

    def _sign(self, intent: TxIntent, fees: Fees) -> SignedTx:
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": intent.chain_id,
            "nonce": intent.nonce,
            "gas": intent.gas,
            "maxFeePerGas": fees.max_fee_per_gas,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
            "value": intent.value,
            "data": intent.data,
        }
        if intent.to is not None:
            tx["to"] = str(to_checksum_address(intent.to))
        return self._wallet.sign_transaction(tx)

    async def _sign_record_broadcast(
        self, intent: TxIntent, fees: Fees, *, fresh: bool, renonce: bool
    ) -> TxIntent:
        """Sign at the intent's nonce, journal the attempt, then broadcast it.

        `fresh`: nothing of this intent reached a pool before, so a rejection fails it.
        `renonce`: the caller holds `_nonce_lock` and chose the nonce, so a nonce found in
        use is replaced here; otherwise (a replacement at our own nonce) the waiting loop
        notices a taken nonce and calls `_resend_fresh_nonce`.
        """
        for _ in range(_MAX_BROADCAST_TRIES):
            signed = self._sign(intent, fees)
            attempt = TxAttempt(
                signed.hash, fees.max_fee_per_gas, fees.max_priority_fee_per_gas, intent.nonce
            )
            intent = intent.evolve(attempts=(*intent.attempts, attempt))
            try:
                await self._store.put(intent)
            except BaseException:
                if fresh:
                    self._release_nonce(intent.nonce)
                raise
            answer, detail = await self._broadcast(signed)
            if answer in (SendAnswer.ACCEPTED, SendAnswer.UNKNOWN):
                if answer is SendAnswer.UNKNOWN:
                    log.warning("broadcast of %s uncertain (%s); will check", signed.hash, detail)
                intent = intent.evolve(status=IntentStatus.PENDING)
                await self._store.put(intent)
                return intent
            taken = answer is SendAnswer.NONCE_TAKEN
            if taken or (answer is SendAnswer.NONCE_PENDING and renonce):
                if not renonce or (taken and await self._find_receipt(intent) is not None):
                    # Our own earlier attempt holds the nonce, or the waiting loop decides.
                    intent = intent.evolve(status=IntentStatus.PENDING)
                    await self._store.put(intent)
                    return intent
                log.warning(
                    "nonce %d of %s is used by a transaction this manager did not send; "
                    "taking a fresh one",
                    intent.nonce,
                    self.address,
                )
                self._nonce = await self._synced_nonce()
                intent = intent.evolve(nonce=await self._take_nonce())
                continue
            if answer in (SendAnswer.FEE_TOO_LOW, SendAnswer.NONCE_PENDING):
                bumped = await self._bumped(fees)
                if bumped is None:
                    raise TransactionError(
                        f"transaction {signed.hash} is underpriced ({detail}) and the fee cap "
                        "leaves no room to raise it; raise the max fee cap"
                    )
                fees = bumped
                continue
            if fresh:
                failed = intent.evolve(status=IntentStatus.FAILED, error=detail)
                await self._store.put(failed)
                self._release_nonce(intent.nonce)
                raise TransactionError(f"the node rejected the transaction: {detail}")
            # A rejected replacement: the earlier attempts may still be mined; keep waiting.
            log.warning("replacement %s rejected: %s", signed.hash, detail)
            return intent
        raise TransactionError(
            f"could not broadcast the transaction for {intent.key!r} "
            f"after {_MAX_BROADCAST_TRIES} tries"
        )

    async def _bumped(self, previous: Fees) -> Fees | None:
        """Replacement fees for `previous` at today's base fee, or None if the cap forbids."""
        header = await self._retry(self._rpc.header, "latest")
        base = header.base_fee_per_gas if header and header.base_fee_per_gas else 0
        tip = tip_for(self.fees, await self._suggested_tip())
        return replacement_fees(self.fees, previous, base, tip)

    async def _broadcast(self, signed: SignedTx) -> tuple[SendAnswer, str]:
        try:
            await self._retry(self._rpc.call, "eth_sendRawTransaction", signed.raw)
        except RpcUnavailable as exc:
            return SendAnswer.UNKNOWN, str(exc)
        except RpcError as exc:
            return classify_send_error(exc), exc.rpc_message
        return SendAnswer.ACCEPTED, ""

    # -- waiting -----------------------------------------------------------------------------

    async def _drive(self, intent: TxIntent, abi: Abi, *, resumed: bool) -> TxResult:
        """Wait for the intent's transaction, replacing/re-sending it as needed."""
        if intent.status is IntentStatus.MINED:
            receipt = None
            if intent.tx_hash is not None:
                try:
                    receipt = await self._rpc.receipt(intent.tx_hash)
                except (RpcUnavailable, RpcError):
                    receipt = None  # the journal alone still answers
            return result_of(intent, receipt)
        if intent.status is IntentStatus.REVERTED:
            raise TransactionReverted(intent.error or "reverted", tx_hash=intent.tx_hash)
        timings = self.timings
        deadline = time.monotonic() + timings.receipt_timeout
        if resumed and await self._find_receipt(intent) is None:
            # It may never have reached a node (or the node forgot it): broadcast the last
            # attempt again; signatures are deterministic, so the hash is the one journaled.
            await self._rebroadcast(intent)
        last_sent = time.monotonic()
        nonce_taken_seen = 0
        while True:
            try:
                receipt = await self._find_receipt(intent)
                if receipt is not None:
                    done = await self._finish(intent, receipt, abi)
                    if done is not None:
                        return done
                else:
                    latest = await self._rpc.transaction_count(self.address, "latest")
                    if latest > intent.nonce:
                        nonce_taken_seen += 1
                        if nonce_taken_seen >= 2:
                            intent = await self._resend_fresh_nonce(intent)
                            last_sent = time.monotonic()
                            nonce_taken_seen = 0
                    else:
                        nonce_taken_seen = 0
                        if time.monotonic() - last_sent >= timings.replace_after:
                            await self._fill_gaps(latest, intent.nonce)
                            intent = await self._replace(intent)
                            last_sent = time.monotonic()
            except (RpcUnavailable, RpcError) as exc:
                log.warning("waiting for %s: %s", intent.key, exc)
            if time.monotonic() >= deadline:
                raise TransactionTimeout(
                    f"no receipt for {intent.key!r} (nonce {intent.nonce}, latest "
                    f"{intent.attempts[-1].tx_hash if intent.attempts else 'unsent'}) within "
                    f"{timings.receipt_timeout:.0f} s; it stays journaled: send again with the "
                    "same key to resume"
                )
            await asyncio.sleep(timings.poll_interval)

    async def _find_receipt(self, intent: TxIntent) -> Mapping[str, Any] | None:
        """The receipt of whichever attempt was mined, newest attempts first."""
        for attempt in reversed(intent.attempts):
            receipt = await self._rpc.receipt(attempt.tx_hash)
            if receipt is not None and receipt.get("blockNumber") is not None:
                return receipt
        return None

    async def _finish(
        self, intent: TxIntent, receipt: Mapping[str, Any], abi: Abi
    ) -> TxResult | None:
        """Record a receipt once it is confirmed; None while it is not yet deep enough."""
        number = int(receipt["blockNumber"], 16)
        if self.timings.confirmations > 0:
            head = await self._rpc.block_number()
            if head - number < self.timings.confirmations:
                return None
            again = await self._rpc.receipt(str(receipt["transactionHash"]))
            if again is None or again.get("blockHash") != receipt.get("blockHash"):
                return None  # reorganised away meanwhile; keep waiting
        tx_hash = str(receipt["transactionHash"]).lower()
        if int(receipt.get("status", "0x1"), 16) == 1:
            intent = intent.evolve(status=IntentStatus.MINED, tx_hash=tx_hash, block_number=number)
            await self._store.put(intent)
            return result_of(intent, receipt)
        revert = await replay_revert(self._rpc, intent, number, [abi, *self._error_abis])
        intent = intent.evolve(
            status=IntentStatus.REVERTED, tx_hash=tx_hash, block_number=number, error=revert.reason
        )
        await self._store.put(intent)
        raise TransactionReverted(
            revert.reason,
            tx_hash=tx_hash,
            error_name=revert.error_name,
            error_args=revert.error_args,
        )

    async def _replace(self, intent: TxIntent) -> TxIntent:
        """Same nonce, fees raised: recovers dropped and underpriced transactions."""
        last = intent.attempts[-1] if intent.attempts else None
        if last is None or last.nonce != intent.nonce:
            fees = await self._current_fees()
        else:
            previous = Fees(last.max_fee_per_gas, last.max_priority_fee_per_gas)
            bumped = await self._bumped(previous)
            if bumped is None:
                log.warning(
                    "%s not mined and the fee cap leaves no room to raise its fees; "
                    "broadcasting it again",
                    last.tx_hash,
                )
                await self._rebroadcast(intent)
                return intent
            fees = bumped
        log.info(
            "%r not mined after %.0f s: replacing it (nonce %d)",
            intent.key,
            self.timings.replace_after,
            intent.nonce,
        )
        return await self._sign_record_broadcast(intent, fees, fresh=False, renonce=False)

    async def _rebroadcast(self, intent: TxIntent) -> None:
        """Send the newest attempt again, exactly as journaled."""
        last = intent.attempts[-1]
        signed = self._sign(
            intent.evolve(nonce=last.nonce),
            Fees(last.max_fee_per_gas, last.max_priority_fee_per_gas),
        )
        if signed.hash != last.tx_hash:
            log.error(
                "re-signing %r gave %s, not %s; not re-broadcasting",
                intent.key,
                signed.hash,
                last.tx_hash,
            )
            return
        outcome, detail = await self._broadcast(signed)
        if outcome not in (SendAnswer.ACCEPTED, SendAnswer.NONCE_TAKEN):
            log.info("re-broadcast of %s: %s", signed.hash, detail)

    async def _resend_fresh_nonce(self, intent: TxIntent) -> TxIntent:
        """Our nonce was used by a transaction we did not send: send again with a new one."""
        async with self._nonce_lock:
            if await self._find_receipt(intent) is not None:
                return intent
            self._nonce = await self._synced_nonce()
            nonce = await self._take_nonce()
            log.warning(
                "nonce %d of %s was used by a transaction this manager did not send; sending %r "
                "again with nonce %d",
                intent.nonce,
                self.address,
                intent.key,
                nonce,
            )
            intent = intent.evolve(nonce=nonce)
            fees = await self._current_fees()
            return await self._sign_record_broadcast(intent, fees, fresh=False, renonce=True)

    async def _fill_gaps(self, latest: int, below: int) -> None:
        """Use up nonces in [latest, below) that no open intent holds (zero-value transfers)."""
        if latest >= below:
            return
        held = {i.nonce for i in await self._store.open_intents() if i.sender == self.address}
        for nonce in range(latest, below):
            if nonce in held or nonce in self._fillers:
                continue
            self._fillers.add(nonce)
            fees = await self._current_fees()
            filler = self._wallet.sign_transaction(
                {
                    "type": 2,
                    "chainId": self.chain_id,
                    "nonce": nonce,
                    "gas": 21_000,
                    "maxFeePerGas": fees.max_fee_per_gas,
                    "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
                    "value": 0,
                    "to": self.address,
                    "data": "0x",
                }
            )
            log.warning(
                "nonce %d of %s is unused below pending ones: filling it", nonce, self.address
            )
            answer, detail = await self._broadcast(filler)
            if answer not in (SendAnswer.ACCEPTED, SendAnswer.UNKNOWN, SendAnswer.NONCE_TAKEN):
                self._fillers.discard(nonce)  # try again on the next wait
                log.warning("filling nonce %d failed: %s", nonce, detail)

    async def _retry(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Call `fn(*args)`, retrying `RpcUnavailable` with backoff."""
        delay = 0.25
        for attempt in range(self.timings.rpc_retries):
            try:
                return await fn(*args)
            except RpcUnavailable:
                if attempt == self.timings.rpc_retries - 1:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")
