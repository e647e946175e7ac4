"""Nonces that stand between a waiting transaction and the chain, and how they are cleared.

A transaction at nonce n is only mined once every nonce below n is. A nonce below it that
the chain has not used yet is either held by an open intent, or by nothing:

- held by an intent somebody is driving (a `send` or `recover` holds its key): it moves on
  by itself;
- held by an intent nobody drives (journaled, then its task was cancelled or the process
  died before the broadcast): that intent is driven to an end here, in the background,
  which broadcasts it exactly as journaled (or fails it and frees its nonce);
- held by nothing (taken, then abandoned before it was journaled): a zero-value transfer to
  ourselves uses it up, re-priced every `replace_after` like any other transaction; the
  sender that abandons it starts that at once (`fill_soon`), the waiting loops try again;
- in flight (taken, its journal write or broadcast under way): left alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from gpu_provider.chain.errors import ChainError
from gpu_provider.chain.intents import IntentStore
from gpu_provider.chain.keylocks import KeyedLocks
from gpu_provider.chain.nodeanswers import SendAnswer
from gpu_provider.chain.sender import Sender

log = logging.getLogger("gpu_provider.chain.tx")


class Gaps:
    def __init__(
        self,
        sender: Sender,
        store: IntentStore,
        key_locks: KeyedLocks,
        finish_abandoned: Callable[[str], Awaitable[None]],
        refill_after: float,
        in_flight: Callable[[], frozenset[int]],
    ) -> None:
        self._send = sender
        self._store = store
        self._key_locks = key_locks
        self._finish_abandoned = finish_abandoned
        self._refill_after = refill_after
        self._in_flight = in_flight
        self._filling: set[asyncio.Task[None]] = set()
        self._fillers: dict[int, float] = {}  # nonce -> when a self-transfer was sent for it
        self._abandoned: dict[str, asyncio.Task[None]] = {}

    async def unblock(self, latest: int, below: int) -> None:
        """Clear the nonces in [latest, below); raises `FeeCapExceeded` if a self-transfer
        cannot be priced under the cap (the caller records it and tries again later)."""
        for nonce in [n for n in self._fillers if n < latest]:
            del self._fillers[nonce]
        if latest >= below:
            return
        holders = {
            i.nonce: i for i in await self._store.open_intents() if i.sender == self._send.address
        }
        in_flight = self._in_flight()
        for nonce in range(latest, below):
            holder = holders.get(nonce)
            if nonce in in_flight:
                continue  # taken, its journal write and broadcast under way: not a gap
            if holder is None:
                await self.fill(nonce)
            elif not self._key_locks.busy(holder.key) and holder.key not in self._abandoned:
                log.warning(
                    "%r (nonce %d) was journaled but nobody is sending it: finishing it",
                    holder.key,
                    nonce,
                )
                self._start(holder.key)

    def _start(self, key: str) -> None:
        # Its outcome is in the journal; a later `send` under the key reports it too.
        work = _logged(lambda: self._finish_abandoned(key), f"finishing abandoned intent {key!r}")
        task = asyncio.create_task(work, name=f"finish-abandoned-{key}")
        self._abandoned[key] = task
        task.add_done_callback(lambda _: self._abandoned.pop(key, None))

    def fill_soon(self, nonce: int) -> None:
        """`fill` in the background: a nonce just abandoned below ones already taken (if it
        fails, the waiting loop of the transaction behind it tries again: `unblock`)."""
        work = _logged(lambda: self.fill(nonce), f"filling nonce {nonce}")
        task = asyncio.create_task(work, name=f"fill-nonce-{nonce}")
        self._filling.add(task)
        task.add_done_callback(self._filling.discard)

    async def fill(self, nonce: int) -> None:
        """Use up `nonce` with a zero-value self-transfer (again, re-priced, once the last
        one has had `refill_after` seconds)."""
        sent = self._fillers.get(nonce)
        if sent is not None and time.monotonic() - sent < self._refill_after:
            return
        fees = await self._send.current_fees()
        self._fillers[nonce] = time.monotonic()
        log.warning(
            "nonce %d of %s is unused below pending ones: filling it", nonce, self._send.address
        )
        answer, detail = await self._send.broadcast(self._send.self_transfer(nonce, fees))
        if answer not in (SendAnswer.ACCEPTED, SendAnswer.UNKNOWN, SendAnswer.NONCE_TAKEN):
            del self._fillers[nonce]  # try again on the next wait
            log.warning("filling nonce %d failed: %s", nonce, detail)

    async def aclose(self) -> None:
        tasks = [*self._abandoned.values(), *self._filling]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _logged(work: Callable[[], Awaitable[None]], what: str) -> None:
    """Background work whose failure is logged, never raised (nobody awaits it); started
    here, so a task cancelled before it runs leaves no coroutine unawaited."""
    try:
        await work()
    except ChainError as exc:
        log.warning("%s: %s", what, exc)
    except Exception:
        log.exception("%s failed", what)
