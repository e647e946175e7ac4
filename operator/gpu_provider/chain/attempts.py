"""Attempts: each signed version of an intent's transaction, journaled, then broadcast.

An attempt is written to the journal before it is broadcast (a crash in between leaves a
transaction the next run can broadcast exactly as journaled). An attempt the node refuses
stays journaled, marked `rejected`: its hash is still looked up (a node behind a load
balancer may have taken it after all), but it is never the one re-broadcast or replaced.
At most `max_attempts` attempts are journaled per intent.

A new intent's first attempt is pipelined (`stage` under the nonce lock, `complete` after it):
its nonce is taken and the transaction signed under the lock, its journal write started, and
the lock released; it is broadcast once that write has committed and the nonce before it has
been tried. So a burst of intents shares journal writes (a group-committing store writes all
that are queued at once) instead of paying one write each under the lock, while every
transaction is still journaled before it is broadcast and the node still sees nonces in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, NoReturn

from gpu_provider.chain.errors import FeeCapExceeded, TransactionError
from gpu_provider.chain.fees import Fees
from gpu_provider.chain.intents import IntentStatus, IntentStore, TxAttempt, TxIntent
from gpu_provider.chain.nodeanswers import SendAnswer
from gpu_provider.chain.nonces import NonceAllocator, Turn
from gpu_provider.chain.sender import Sender
from gpu_provider.chain.wallet import SignedTx

log = logging.getLogger("gpu_provider.chain.tx")
_MAX_BROADCAST_TRIES: Final = 5


@dataclass(frozen=True)
class Staged:
    """A new intent signed under the nonce lock, its journal write under way."""

    intent: TxIntent
    signed: SignedTx
    fees: Fees
    journaled: asyncio.Task[None]
    turn: Turn


class Attempts:
    def __init__(
        self,
        sender: Sender,
        store: IntentStore,
        nonces: NonceAllocator,
        max_attempts: int,
        fill_gap: Callable[[int], None],
    ) -> None:
        self._send = sender
        self._store = store
        self.nonces = nonces
        self.max_attempts = max_attempts
        self._fill_gap = fill_gap

    async def journal(self, intent: TxIntent, *, fresh: bool) -> None:
        """Write `intent` before its newest attempt is broadcast: a crash in between leaves
        a journaled transaction that the next run broadcasts as it is or frees."""
        try:
            await self._store.put(intent)
        except Exception:
            if fresh:
                # Give the nonce back only if the journal surely does not hold it; otherwise
                # the intent is abandoned and the transaction behind it finishes it. A nonce
                # that cannot be given back (later ones were taken since) would hold every
                # later transaction back: it is used up by a self-transfer now.
                stored = await self._store.get(intent.key)
                held = stored is not None and stored.nonce == intent.nonce and stored.status.open
                if not held and not self.nonces.release(intent.nonce):
                    self._fill_gap(intent.nonce)
            raise

    def stage(self, intent: TxIntent, fees: Fees) -> Staged:
        """Sign a new intent's first attempt and start journaling it; the caller holds
        `nonces.lock` and took `intent.nonce` under it. `complete` finishes it."""
        signed = self._send.sign(intent, fees)
        attempt = TxAttempt(
            signed.hash, fees.max_fee_per_gas, fees.max_priority_fee_per_gas, intent.nonce
        )
        intent = intent.evolve(attempts=(attempt,))
        turn = self.nonces.turn(intent.nonce)
        journaled = asyncio.ensure_future(self.journal(intent, fresh=True))
        # Retrieved here too: a caller cancelled before it looked leaves it to nobody.
        journaled.add_done_callback(lambda task: task.cancelled() or task.exception())
        return Staged(intent, signed, fees, journaled, turn)

    async def complete(self, staged: Staged) -> TxIntent:
        """Broadcast a staged attempt once its journal write committed and the nonce before
        it was tried; a refusal is handled as `sign_record_broadcast` handles it."""
        intent, signed = staged.intent, staged.signed
        try:
            # Shielded: a cancelled caller leaves the write to commit or fail on its own (an
            # intent journaled and never broadcast is abandoned, which the gap logic finishes).
            await asyncio.shield(staged.journaled)
            await staged.turn.wait()
            answer, detail = await self._send.broadcast(signed)
        finally:
            self.nonces.settle(staged.turn)
        accepted = answer in (SendAnswer.ACCEPTED, SendAnswer.UNKNOWN)
        # Refused: the rare paths go the serial way, under the lock (a nonce found in use
        # takes a fresh one, which needs it).
        async with contextlib.nullcontext() if accepted else self.nonces.lock:
            step = await self._answered(
                intent, signed, answer, detail, staged.fees, fresh=True, renonce=True
            )
            if isinstance(step, TxIntent):
                return step
            return await self.sign_record_broadcast(*step, fresh=True, renonce=True)

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
            step = await self._answered(
                intent, signed, answer, detail, fees, fresh=fresh, renonce=renonce
            )
            if isinstance(step, TxIntent):
                return step
            intent, fees = step
        await self._store.put(intent)
        raise TransactionError(
            f"could not broadcast the transaction for {intent.key!r} "
            f"after {_MAX_BROADCAST_TRIES} tries"
        )

    async def _answered(
        self,
        intent: TxIntent,
        signed: SignedTx,
        answer: SendAnswer,
        detail: str,
        fees: Fees,
        *,
        fresh: bool,
        renonce: bool,
    ) -> TxIntent | tuple[TxIntent, Fees]:
        """What the node's answer to `signed` means: the intent when it is settled for now
        (sent, or left to the waiting loop), or the intent and fees to sign again with."""
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
            return intent.evolve(nonce=await self.nonces.take()), fees
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
            return intent, bumped
        return await self.refused(
            intent, fresh, TransactionError(f"the node rejected the transaction: {detail}")
        )

    async def refused(self, intent: TxIntent, fresh: bool, error: TransactionError) -> NoReturn:
        """Journal a refusal and raise it; an intent no node ever took fails for good."""
        if fresh and intent.newest_attempt() is None:
            await self._store.put(intent.evolve(status=IntentStatus.FAILED, error=str(error)))
            if not self.nonces.release(intent.nonce):
                self._fill_gap(intent.nonce)
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
