"""Whether to accept a tenant's update of a leased order (`OrderUpdateRequested`).

Only updates that keep every service, resource and placement exactly as leased are accepted:
they change the terms (the number of blocks, the max price) and nothing in the cluster has
to restart or move. An update that asks for other resources would need a new placement,
which only the bid engine can decide, so it is declined with a reason, as are updates that
would lower the price below the lease's (`acceptUpdate` pays the lower of the two) or run
longer than `bidding.maxLeaseBlocks`.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpu_provider.market.leases import ChainLease, ChainOrder, same_resources

__all__ = ["UpdateDecision", "update_decision"]


@dataclass(frozen=True, slots=True)
class UpdateDecision:
    accept: bool
    reason: str
    """CamelCase: `DurationOnly` when accepted, otherwise why not."""
    message: str
    num_of_blocks: int | None = None
    """The lease's paid blocks after an accepted update (counted from the block it is
    accepted in: the contract restarts the lease then)."""


def update_decision(
    lease: ChainLease,
    current: ChainOrder,
    update: ChainOrder,
    *,
    max_lease_blocks: int | None = None,
) -> UpdateDecision:
    """Accept `update` of the order behind `lease` (now `current`)?"""
    if update.spec is None or current.spec is None:
        error = update.spec_error or current.spec_error
        return UpdateDecision(False, "SpecUndecodable", f"the order spec does not decode: {error}")
    if update.token.lower() != current.token.lower():
        return UpdateDecision(False, "TokenChanged", "the update pays in another token")
    if not same_resources(current.spec, update.spec):
        return UpdateDecision(
            False,
            "ResourcesChanged",
            "the update changes services or resources; only duration updates are accepted",
        )
    if update.max_price < lease.accepted_price:
        return UpdateDecision(
            False,
            "PriceBelowLease",
            f"the update's max price {update.max_price} per block is below the lease's "
            f"{lease.accepted_price}",
        )
    if max_lease_blocks is not None and update.num_of_blocks > max_lease_blocks:
        return UpdateDecision(
            False,
            "TooLong",
            f"{update.num_of_blocks} blocks is more than bidding.maxLeaseBlocks "
            f"({max_lease_blocks})",
        )
    return UpdateDecision(
        True,
        "DurationOnly",
        f"the lease runs {update.num_of_blocks} blocks from the block the update is accepted in",
        num_of_blocks=update.num_of_blocks,
    )
