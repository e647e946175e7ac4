"""Attempts: each signed version of an intent's transaction, journaled, then broadcast.

An attempt is written to the journal before it is broadcast (a crash in between leaves a
transaction the next run can broadcast exactly as journaled). An attempt the node refuses
stays journaled, marked `rejected`: its hash is still looked up (a node behind a load
balancer may have taken it after all), but it is never the one re-broadcast or replaced.
At most `max_attempts` attempts are journaled per intent.
"""

from __future__ import annotations

import logging
from typing import Final, NoReturn

from gpu_provider.chain.errors import FeeCapExceeded, TransactionError
from gpu_provider.chain.fees import Fees
from gpu_provider.chain.intents import IntentStatus, IntentStore, TxAttempt, TxIntent
from gpu_provider.chain.nodeanswers import SendAnswer
from gpu_provider.chain.nonces import NonceAllocator
from gpu_provider.chain.sender import Sender

log = logging.getLogger("gpu_provider.chain.tx")
_MAX_BROADCAST_TRIES: Final = 5


class Attempts:
    def __init__(
        self, sender: Sender, store: IntentStore, nonces: NonceAllocator, max_attempts: int
    ) -> None:
        self._send = sender
        self._store = store
        self.nonces = nonces
        self.max_attempts = max_attempts

    async def journal(self, intent: TxIntent, *, fresh: bool) -> None:
        """Write `intent` before its newest attempt is broadcast: a crash in between leaves
        a journaled transaction that the next run broadcasts as it is or frees."""
        try:
            await self._store.put(intent)
        except Exception:
            if fresh:
                # Give the nonce back only if the journal surely does not hold it; otherwise
                # the intent is abandoned and the transaction behind it finishes it.
                stored = await self._store.get(intent.key)
                if stored is None or stored.nonce != intent.nonce or not stored.status.open:
                    self.nonces.release(intent.nonce)
            raise

    async def sign_record_broadcast(
        self, intent: TxIntent, fees: Fees, *, fresh: bool, renonce: bool
    ) -> TxIntent:
        """Sign at the intent's nonce, journal the attempt, then broadcast it.

        `fresh`: nothing of this intent reached a pool before, so a refusal fails it.
        `renonce`: the caller holds `nonces.lock` and chose the nonce, so a nonce found in
        use is replaced here; otherwise (a replacement at our own nonce) the waiting loop
        notices a taken nonce and calls `TxManager._resend_fresh_nonce`.
        """
        limit = self.max_attempts
        for _ in range(_MAX_BROADCAST_TRIES):
            if len(intent.attempts) >= limit:
                await self._store.put(intent)
                raise TransactionError(
                    f"{intent.key!r} reached the limit of {limit} attempts; waiting on the "
                    "newest one"
                )
            signed = self._send.sign(intent, fees)
            attempt = TxAttempt(
                signed.hash, fees.max_fee_per_gas, fees.max_priority_fee_per_gas, intent.nonce
            )
            intent = intent.evolve(attempts=(*intent.attempts, attempt))
            await self.journal(intent, fresh=fresh)
            answer, detail = await self._send.broadcast(signed)
            if answer in (SendAnswer.ACCEPTED, SendAnswer.UNKNOWN):
                if answer is SendAnswer.UNKNOWN:
                    log.warning("broadcast of %s uncertain (%s); will check", signed.hash, detail)
                intent = intent.evolve(status=IntentStatus.PENDING)
                await self._store.put(intent)
                return intent
            # Refused: it stays journaled, since its hash is still looked up, but it is never
            # the attempt that is re-broadcast or replaced.
            intent = intent.with_rejected(signed.hash)
            taken = answer is SendAnswer.NONCE_TAKEN
            if taken or (answer is SendAnswer.NONCE_PENDING and renonce):
                if not renonce or (taken and await self._send.any_attempt_mined(intent)):
                    # Our own earlier attempt holds the nonce, or the waiting loop decides.
                    await self._store.put(intent)
                    return intent
                log.warning(
                    "nonce %d of %s is used by a transaction this manager did not send; "
                    "taking a fresh one",
                    intent.nonce,
                    self._send.address,
                )
                await self.nonces.resync()
                intent = intent.evolve(nonce=await self.nonces.take())
                continue
            if answer in (SendAnswer.FEE_TOO_LOW, SendAnswer.NONCE_PENDING):
                bumped = await self._send.bumped(fees)
                if bumped is None:
                    await self.refused(
                        intent,
                        fresh,
                        FeeCapExceeded(
                            f"transaction {signed.hash} is underpriced ({detail}) and the fee "
                            "cap leaves no room to raise it; raise the max fee cap"
                        ),
                    )
                fees = bumped
                continue
            await self.refused(
                intent, fresh, TransactionError(f"the node rejected the transaction: {detail}")
            )
        await self._store.put(intent)
        raise TransactionError(
            f"could not broadcast the transaction for {intent.key!r} "
            f"after {_MAX_BROADCAST_TRIES} tries"
        )

    async def refused(self, intent: TxIntent, fresh: bool, error: TransactionError) -> NoReturn:
        """Journal a refusal and raise it; an intent no node ever took fails for good."""
        if fresh and intent.newest_attempt() is None:
            await self._store.put(intent.evolve(status=IntentStatus.FAILED, error=str(error)))
            self.nonces.release(intent.nonce)
        else:
            await self._store.put(intent)
        raise error

    async def rebroadcast(self, intent: TxIntent) -> tuple[SendAnswer | None, str]:
        """Send the newest accepted attempt again, exactly as journaled."""
        last = intent.newest_attempt()
        if last is None:
            return None, "no attempt was accepted"
        signed = self._send.resign(intent, last)
        if signed is None:
            log.error("re-signing %r does not give %s; not re-broadcasting", intent.key, last)
            return None, "the journal does not match the signature"
        answer, detail = await self._send.broadcast(signed)
        if answer not in (SendAnswer.ACCEPTED, SendAnswer.NONCE_TAKEN):
            log.info("re-broadcast of %s: %s", signed.hash, detail)
        return answer, detail
