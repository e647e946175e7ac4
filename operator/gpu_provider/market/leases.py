"""What the chain says about a lease and its order, as plain typed records.

`gpu_provider.chain.leases` fills these from `ComputeLease.leases(id)` (named fields; never
`getLeaseDetails`, whose two addresses are unnamed in Spheron's ABI) and
`OrderRequest.getOrderById`; the pure layers (`render`, `market.closing`) decide from them.
Amounts are ints in the token's base units, so nothing here is ever rounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from gpu_provider.market.spec import OrderSpec

__all__ = ["ChainLease", "ChainOrder", "LeaseState", "OrderState", "same_resources"]

MAX_UINT64: Final = 2**64 - 1


class LeaseState(IntEnum):
    """`ComputeLease.State`."""

    ACTIVE = 0
    TERMINATED = 1


class OrderState(IntEnum):
    """`OrderRequest.State` (PROVISIONED is Spheron's; the devnet never uses it)."""

    OPEN = 0
    PROVISIONED = 1
    CLOSED = 2
    MATCHED = 3


@dataclass(frozen=True, slots=True)
class ChainLease:
    """`ComputeLease.leases(id)`, field by field."""

    lease_id: int
    fizz_id: int
    request_id: int
    accepted_price: int
    """Token base units per block."""
    provider: str
    tenant: str
    start_block: int
    start_time: int
    """Unix seconds of the block the lease started in."""
    end_time: int
    """Unix seconds it was closed; 0 while active."""
    state: LeaseState

    def __post_init__(self) -> None:
        for name in ("lease_id", "request_id", "accepted_price", "start_block", "start_time"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"lease {name} must be a non-negative int, got {value!r}")

    @property
    def order_id(self) -> int:
        """The order the lease came from (`requestId`; Spheron's SDK uses it as the lease id)."""
        return self.request_id

    @property
    def active(self) -> bool:
        return self.state is LeaseState.ACTIVE


@dataclass(frozen=True, slots=True)
class ChainOrder:
    """`OrderRequest.getOrderById(id)` with its spec decoded (`spec` None: it did not decode,
    and `spec_error` says why)."""

    order_id: int
    max_price: int
    num_of_blocks: int
    token: str
    creator: str
    state: OrderState
    spec_text: str
    version: int
    mode: int
    tiers: tuple[int, ...]
    """Trust tiers 1..7 (the on-chain enum index plus one)."""
    spec: OrderSpec | None
    spec_error: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.num_of_blocks <= MAX_UINT64:
            raise ValueError(f"order numOfBlocks must be 1..2**64-1, got {self.num_of_blocks}")
        if (self.spec is None) == (self.spec_error is None):
            raise ValueError("an order has either a decoded spec or the reason it did not decode")


def same_resources(before: OrderSpec, after: OrderSpec) -> bool:
    """Whether two specs ask for exactly the same services and placement (names included):
    an update between them changes only its terms (duration, price), so nothing restarts."""
    return before == after
