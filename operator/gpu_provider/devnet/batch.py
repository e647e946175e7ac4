"""Sending a batch of transactions from one deployer with nonces known in advance.

Contract addresses follow from the deployer's nonces, so a constructor can point at a
contract created earlier in the same batch before it is mined, and a whole deployment takes
two blocks. The transactions go through the chain layer's `TxManager`; each step is started
only once the previous one holds its nonce (its intent is journaled).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from eth_typing import ChecksumAddress, HexAddress, HexStr
from web3.types import Nonce
from web3.utils import get_create_address

from gpu_provider.chain.errors import ChainError
from gpu_provider.chain.intents import InMemoryIntentStore, TxIntent
from gpu_provider.chain.tx import TxManager, TxRequest, TxResult

__all__ = ["BatchError", "BatchSender", "JournalWatch"]


class BatchError(RuntimeError):
    """A batch transaction failed or could not be sent."""


class JournalWatch(InMemoryIntentStore):
    """An in-memory journal that tells when an intent was first recorded (its nonce is fixed)."""

    def __init__(self) -> None:
        super().__init__()
        self._recorded: dict[str, asyncio.Event] = {}

    def recorded(self, key: str) -> asyncio.Event:
        return self._recorded.setdefault(key, asyncio.Event())

    async def put(self, intent: TxIntent) -> None:
        await super().put(intent)
        self.recorded(intent.key).set()


@dataclass
class BatchSender:
    """Sends from the deployer through its TxManager, one nonce after the other."""

    manager: TxManager
    store: JournalWatch
    nonce: int

    def next_create_address(self, offset: int) -> ChecksumAddress:
        return get_create_address(
            HexAddress(HexStr(self.manager.address)), Nonce(self.nonce + offset)
        )

    async def send_batch(self, steps: Sequence[tuple[str, TxRequest]]) -> list[TxResult]:
        """Send every step (none may depend on another's effects), then wait for all.

        Each step is started only once the previous one holds its nonce, so step i gets nonce
        `nonce + i` and contract addresses are known before anything is mined.
        """
        tasks: list[asyncio.Task[TxResult]] = []
        try:
            for label, request in steps:
                key = f"deploy:{label}"
                task = asyncio.create_task(self.manager.send(key, request))
                tasks.append(task)
                recorded = asyncio.create_task(self.store.recorded(key).wait())
                await asyncio.wait({task, recorded}, return_when=asyncio.FIRST_COMPLETED)
                recorded.cancel()
                intent = await self.store.get(key)
                if intent is None:
                    await task  # it failed before its intent was recorded: raise why
                    raise BatchError(f"{label}: the transaction was not recorded")
                if intent.nonce != self.nonce:
                    raise BatchError(
                        f"{label} was given nonce {intent.nonce}, expected {self.nonce}: "
                        "another transaction from the deployer interfered"
                    )
                self.nonce += 1
            return list(await asyncio.gather(*tasks))
        except ChainError as error:
            raise BatchError(f"{error}") from error
        finally:
            for task in tasks:
                task.cancel()
