"""The event stream's records: checkpoints, decoded events, deliveries, and sources.

A checkpoint is a plain tuple of JSON-friendly values (ints and hex strings), so the
caller can persist them in CR status as they are (`Checkpoint.to_dict`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from gpu_provider.chain.decoding import Abi


class Checkpoint(NamedTuple):
    """How far delivery got: every event up to (block_number, log_index) was delivered.

    `log_index` None means the whole block is done. `block_hash` None (a fresh start) means
    "trust whatever block the chain has at that height"; otherwise the stream checks it.
    """

    block_number: int
    block_hash: str | None = None
    log_index: int | None = None

    @classmethod
    def start_at(cls, block_number: int) -> Checkpoint:
        """A fresh start that delivers events from `block_number` on."""
        return cls(block_number - 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "blockNumber": self.block_number,
            "blockHash": self.block_hash,
            "logIndex": self.log_index,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Checkpoint:
        """Validate a persisted checkpoint; raises `ValueError` saying what is wrong."""
        number, block_hash, log_index = (
            data.get("blockNumber"),
            data.get("blockHash"),
            data.get("logIndex"),
        )
        if not isinstance(number, int) or isinstance(number, bool) or number < -1:
            raise ValueError("checkpoint blockNumber must be an integer >= -1")
        if block_hash is not None and (
            not isinstance(block_hash, str)
            or len(block_hash) != 66
            or not block_hash.startswith("0x")
        ):
            raise ValueError(
                "checkpoint blockHash must be a 0x-prefixed 32-byte hex string or null"
            )
        if log_index is not None and (not isinstance(log_index, int) or log_index < 0):
            raise ValueError("checkpoint logIndex must be a non-negative integer or null")
        return cls(number, block_hash.lower() if block_hash else None, log_index)


class ChainEvent(NamedTuple):
    """One decoded, confirmed log."""

    name: str
    args: dict[str, Any]
    address: str
    block_number: int
    block_hash: str
    transaction_hash: str
    transaction_index: int
    log_index: int

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.block_number, self.block_hash, self.log_index)


class Delivery(NamedTuple):
    """An event to handle (or None for progress only) and the checkpoint to persist after."""

    event: ChainEvent | None
    checkpoint: Checkpoint


Predicate = Callable[[ChainEvent], bool]


def arg_equals(name: str, value: Any) -> Predicate:
    """Keep events whose argument `name` equals `value` (addresses compared in any case)."""
    wanted = value.lower() if isinstance(value, str) else value

    def check(event: ChainEvent) -> bool:
        actual = event.args.get(name)
        return (actual.lower() if isinstance(actual, str) else actual) == wanted

    return check


@dataclass(frozen=True)
class EventSource:
    """Events wanted from one contract: its address, its ABI, the event names (None: all),
    and optional per-event predicates applied after decoding."""

    address: str
    abi: Abi
    events: Sequence[str] | None = None
    where: Mapping[str, Predicate] = field(default_factory=dict)
