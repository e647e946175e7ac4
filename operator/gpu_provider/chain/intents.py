"""The transaction intent journal: what the manager is about to send, recorded first.

An intent is written before its transaction is broadcast and updated at each step, so a
process that restarts finds it and looks the transaction up (by hash, by nonce) instead of
sending it twice. It holds everything needed to sign the same transaction again (signatures
are deterministic), never the key. `to_dict`/`from_dict` give the JSON file's shape;
`gpu_provider.chain.statusstore` converts intents to and from `ProviderNode.status.pendingTxs`.

Stores stay bounded: an intent is written Mined or Reverted only once its receipt has
`confirmations` blocks on top, so every finished intent in a store is already buried; a
store keeps the newest `keep_finished` of them (the window in which a repeated `send` under
the same key is answered from the journal) and prunes older ones, oldest first.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Protocol

KEEP_FINISHED: Final = 256
"""Finished intents a journal keeps by default (the idempotency window), newest first."""


class IntentStatus(StrEnum):
    SIGNED = "Signed"
    """Recorded; it may or may not have reached a node."""
    PENDING = "Pending"
    """Broadcast; no receipt yet."""
    MINED = "Mined"
    """Included with status 1."""
    REVERTED = "Reverted"
    """Included with status 0; `error` says why."""
    FAILED = "Failed"
    """Rejected by the node before any broadcast succeeded; nothing can be mined."""

    @property
    def open(self) -> bool:
        return self in (IntentStatus.SIGNED, IntentStatus.PENDING)


_OPEN: Final = frozenset({IntentStatus.SIGNED.value, IntentStatus.PENDING.value})


@dataclass(frozen=True)
class TxAttempt:
    """One signed version of the intent's transaction (replacements bump the fees)."""

    tx_hash: str
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    nonce: int
    rejected: bool = False
    """The node refused it. Kept (a node behind a load balancer may have taken it after all,
    so its hash is still looked up), but never re-broadcast or replaced."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "txHash": self.tx_hash,
            "maxFeePerGas": str(self.max_fee_per_gas),
            "maxPriorityFeePerGas": str(self.max_priority_fee_per_gas),
            "nonce": self.nonce,
            "rejected": self.rejected,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TxAttempt:
        return cls(
            tx_hash=str(data["txHash"]),
            max_fee_per_gas=int(data["maxFeePerGas"]),
            max_priority_fee_per_gas=int(data["maxPriorityFeePerGas"]),
            nonce=int(data["nonce"]),
            rejected=bool(data.get("rejected", False)),
        )


@dataclass(frozen=True)
class TxIntent:
    """A transaction the manager was asked to send once, under an idempotency key."""

    key: str
    sender: str
    chain_id: int
    to: str | None
    data: str
    value: int
    gas: int
    nonce: int
    status: IntentStatus = IntentStatus.SIGNED
    attempts: tuple[TxAttempt, ...] = ()
    tx_hash: str | None = None
    block_number: int | None = None
    error: str | None = None
    """Why it failed or reverted; while open, the last refusal met in the background (a fee
    above the cap, the attempt limit), so a caller that times out can say why."""
    purpose: str = ""
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    def evolve(self, **changes: Any) -> TxIntent:
        return replace(self, updated_at=time.time(), **changes)

    def newest_attempt(self) -> TxAttempt | None:
        """The newest attempt a node accepted (or may have): what is re-broadcast or replaced."""
        for attempt in reversed(self.attempts):
            if not attempt.rejected:
                return attempt
        return None

    def with_rejected(self, tx_hash: str) -> TxIntent:
        """This intent with the attempt `tx_hash` marked as refused by the node."""
        attempts = tuple(
            replace(a, rejected=True) if a.tx_hash == tx_hash else a for a in self.attempts
        )
        return self.evolve(attempts=attempts)

    def to_dict(self) -> dict[str, Any]:
        # Wei amounts as strings: they overflow JSON numbers in some readers (and in CRDs).
        return {
            "key": self.key,
            "sender": self.sender,
            "chainId": self.chain_id,
            "to": self.to,
            "data": self.data,
            "value": str(self.value),
            "gas": self.gas,
            "nonce": self.nonce,
            "status": self.status.value,
            "attempts": [a.to_dict() for a in self.attempts],
            "txHash": self.tx_hash,
            "blockNumber": self.block_number,
            "error": self.error,
            "purpose": self.purpose,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TxIntent:
        """Parse a stored intent; raises `ValueError` (or `KeyError`) on a damaged one."""
        return cls(
            key=str(data["key"]),
            sender=str(data["sender"]),
            chain_id=int(data["chainId"]),
            to=str(data["to"]) if data.get("to") is not None else None,
            data=str(data["data"]),
            value=int(data["value"]),
            gas=int(data["gas"]),
            nonce=int(data["nonce"]),
            status=IntentStatus(data["status"]),
            attempts=tuple(TxAttempt.from_dict(a) for a in data.get("attempts", [])),
            tx_hash=data.get("txHash"),
            block_number=data.get("blockNumber"),
            error=data.get("error"),
            purpose=str(data.get("purpose") or ""),
            created_at=float(data.get("createdAt", 0.0)),
            updated_at=float(data.get("updatedAt", 0.0)),
        )


def prune_finished(intents: dict[str, dict[str, Any]], keep_finished: int) -> None:
    """Drop the oldest finished intents (in their `to_dict` shape) beyond `keep_finished`."""
    finished = [k for k, v in intents.items() if v["status"] not in _OPEN]
    if len(finished) <= keep_finished:
        return
    finished.sort(key=lambda k: float(intents[k].get("updatedAt") or 0.0))
    for key in finished[: len(finished) - keep_finished]:
        del intents[key]


class IntentStore(Protocol):
    """Where intents live. `put` must be durable when it returns: the transaction is
    broadcast right after."""

    async def get(self, key: str) -> TxIntent | None: ...

    async def put(self, intent: TxIntent) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def open_intents(self) -> list[TxIntent]:
        """Intents still Signed or Pending, for recovery after a restart."""
        ...


class InMemoryIntentStore:
    """For tests and tools; a restart forgets it."""

    def __init__(self, *, keep_finished: int = KEEP_FINISHED) -> None:
        self._intents: dict[str, dict[str, Any]] = {}
        self.keep_finished = keep_finished

    async def get(self, key: str) -> TxIntent | None:
        stored = self._intents.get(key)
        return TxIntent.from_dict(stored) if stored is not None else None

    async def put(self, intent: TxIntent) -> None:
        self._intents[intent.key] = intent.to_dict()
        if not intent.status.open:
            prune_finished(self._intents, self.keep_finished)

    async def delete(self, key: str) -> None:
        self._intents.pop(key, None)

    async def open_intents(self) -> list[TxIntent]:
        intents = [TxIntent.from_dict(v) for v in self._intents.values()]
        return [i for i in intents if i.status.open]

    def all(self) -> list[TxIntent]:
        return [TxIntent.from_dict(v) for v in self._intents.values()]


class JsonFileIntentStore:
    """Intents in one JSON file, replaced atomically on every put: written to a temporary
    file, fsynced, renamed over the journal, and the directory fsynced, so the new journal
    (not just its bytes) survives a power loss once `put` returns."""

    def __init__(self, path: Path | str, *, keep_finished: int = KEEP_FINISHED) -> None:
        self.path = Path(path)
        self.keep_finished = keep_finished
        self._lock = asyncio.Lock()
        self._intents: dict[str, dict[str, Any]] | None = None

    async def _load(self) -> dict[str, dict[str, Any]]:
        if self._intents is None:
            self._intents = await asyncio.to_thread(self._read)
        return self._intents

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ValueError(f"intent journal {self.path} is not valid JSON: {exc}") from None
        intents = document.get("intents") if isinstance(document, dict) else None
        if not isinstance(intents, dict):
            raise ValueError(f"intent journal {self.path} has no 'intents' mapping")
        return {str(k): dict(v) for k, v in intents.items()}

    def _write(self, intents: dict[str, dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"version": 1, "intents": intents}, indent=1, sort_keys=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        # The rename is only durable once the directory entry is on disk too.
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    async def get(self, key: str) -> TxIntent | None:
        async with self._lock:
            stored = (await self._load()).get(key)
        return TxIntent.from_dict(stored) if stored is not None else None

    async def put(self, intent: TxIntent) -> None:
        async with self._lock:
            intents = dict(await self._load())
            intents[intent.key] = intent.to_dict()
            if not intent.status.open:
                prune_finished(intents, self.keep_finished)
            await asyncio.to_thread(self._write, intents)
            self._intents = intents

    async def delete(self, key: str) -> None:
        async with self._lock:
            intents = dict(await self._load())
            if intents.pop(key, None) is not None:
                await asyncio.to_thread(self._write, intents)
            self._intents = intents

    async def open_intents(self) -> list[TxIntent]:
        async with self._lock:
            values = list((await self._load()).values())
        intents = [TxIntent.from_dict(v) for v in values]
        return [i for i in intents if i.status.open]
