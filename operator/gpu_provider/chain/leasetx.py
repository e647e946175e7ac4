"""The provider's lease transactions: `closeLease` and `acceptUpdate`, each sent once.

`close_lease` reads the lease first: one the chain already shows terminated needs nothing
(and nothing is sent); otherwise `before_send` is awaited with the `CloseIntent` (the
operator writes `GpuLease.status.closeReason` there), and only then does the transaction
manager journal and broadcast `closeLease` under `close:<leaseId>`. A restart finds the
journaled intent under the same key and resumes it; a close the tenant won the race for
(`LeaseAlreadyTerminated`) is done, not an error.

`accept_update` accepts the tenant's pending order update under a key naming the update
request's event, when `market.updates.update_decision` says it fits.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from gpu_provider.chain.contracts import Contracts
from gpu_provider.chain.errors import ChainError, TransactionReverted
from gpu_provider.chain.leases import read_lease
from gpu_provider.chain.tx import TxManager
from gpu_provider.chain.txtypes import TxRequest
from gpu_provider.market.closing import CloseReason
from gpu_provider.market.leases import LeaseState

__all__ = [
    "ALREADY_TERMINATED",
    "CloseIntent",
    "CloseOutcome",
    "LeaseNotFound",
    "UpdateOutcome",
    "accept_update",
    "close_key",
    "close_lease",
    "update_key",
]

log = logging.getLogger(__name__)

ALREADY_TERMINATED: Final = "LeaseAlreadyTerminated"
"""Spheron's custom error for closing a closed lease: the lease is closed, which we wanted."""


class LeaseNotFound(ChainError):
    """No lease has this id on this chain: there is nothing to close (nothing is sent)."""


def close_key(lease_id: int) -> str:
    return f"close:{lease_id}"


def update_key(lease_id: int, block: int, log_index: int) -> str:
    """The key of accepting one update request: the request's event names it, so each
    request is accepted at most once, across restarts."""
    return f"accept-update:{lease_id}:{block}:{log_index}"


@dataclass(frozen=True, slots=True)
class CloseIntent:
    """What is about to be sent: record `reason` before `before_send` returns."""

    lease_id: int
    reason: CloseReason
    key: str


@dataclass(frozen=True, slots=True)
class CloseOutcome:
    """`sent`: our `closeLease` was mined (now or before a restart, `tx_hash` names it);
    otherwise the chain already showed the lease terminated and nothing was sent."""

    lease_id: int
    reason: CloseReason
    sent: bool
    tx_hash: str | None = None
    block_number: int | None = None


async def close_lease(
    contracts: Contracts,
    tx: TxManager,
    lease_id: int,
    reason: CloseReason,
    *,
    before_send: Callable[[CloseIntent], Awaitable[None]],
) -> CloseOutcome:
    """Close lease `lease_id` for `reason`, once. Raises `LeaseNotFound`, the chain
    layer's errors (`TransactionTimeout`: call again, it resumes), and any other revert."""
    lease = await read_lease(contracts, lease_id)
    if lease is None:
        raise LeaseNotFound(f"no lease {lease_id} on this chain: nothing to close")
    if lease.state is LeaseState.TERMINATED:
        return CloseOutcome(lease_id, reason, sent=False)
    intent = CloseIntent(lease_id, reason, close_key(lease_id))
    await before_send(intent)
    request = TxRequest.call(contracts.compute_lease, "closeLease", lease_id)
    try:
        result = await tx.send(intent.key, request)
    except TransactionReverted as error:
        if error.error_name == ALREADY_TERMINATED:
            log.info("lease %d was closed by the tenant meanwhile", lease_id)
            return CloseOutcome(lease_id, reason, sent=False)
        raise
    log.info("lease %d closed (%s) in block %d", lease_id, reason.value, result.block_number)
    return CloseOutcome(lease_id, reason, True, result.tx_hash, result.block_number)


@dataclass(frozen=True, slots=True)
class UpdateOutcome:
    lease_id: int
    tx_hash: str
    block_number: int


async def accept_update(
    contracts: Contracts, tx: TxManager, lease_id: int, *, key: str
) -> UpdateOutcome:
    """`Bid.acceptUpdate(leaseId)`: the lease restarts now on the update's terms (the
    contract settles the old terms first). Reverts come back decoded (`LeaseNotActive`,
    `InvalidOrderState` when the tenant withdrew the request)."""
    request = TxRequest.call(contracts.bid, "acceptUpdate", lease_id)
    result = await tx.send(key, request)
    return UpdateOutcome(lease_id, result.tx_hash, result.block_number)
