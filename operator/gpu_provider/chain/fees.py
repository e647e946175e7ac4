"""EIP-1559 fee arithmetic (pure): the fees for a new transaction and for its replacement."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final, NamedTuple

from gpu_provider.chain.errors import FeeCapExceeded
from gpu_provider.config import TransactionSettings

GWEI: Final = 10**9


def gwei(wei: int) -> str:
    """Wei as a short gwei figure for messages."""
    return f"{wei / GWEI:.9g} gwei"


@dataclass(frozen=True)
class FeePolicy:
    """How the transaction manager prices gas.

    max fee = base fee * `base_fee_multiplier` + tip, clamped to `max_fee_per_gas`; a
    transaction whose base fee + tip alone is above that cap is refused (`FeeCapExceeded`).
    The tip is `priority_fee` or, if None, the node's suggestion clamped to
    [`min_priority_fee`, `max_priority_fee`]. Gas is the node's estimate * `gas_margin`.
    """

    base_fee_multiplier: float = 2.0
    priority_fee: int | None = None
    min_priority_fee: int = 1_000_000  # 0.001 gwei: what L2s like Base settle at
    max_priority_fee: int = 5 * GWEI
    max_fee_per_gas: int = 200 * GWEI
    gas_margin: float = 1.2
    replacement_bump: float = 1.125  # geth needs +10%, many nodes +12.5%

    def __post_init__(self) -> None:
        if self.base_fee_multiplier < 1 or self.gas_margin < 1 or self.replacement_bump < 1.1:
            raise ValueError(
                "base_fee_multiplier and gas_margin must be >= 1, replacement_bump >= 1.1"
            )
        if self.min_priority_fee > self.max_priority_fee:
            raise ValueError("min_priority_fee must not exceed max_priority_fee")


def gwei_to_wei(gwei: str) -> int:
    """'0.001' gwei -> 1_000_000 wei; more than nine decimals would be a fraction of a wei."""
    wei = Decimal(gwei) * GWEI
    if wei != wei.to_integral_value():
        raise ValueError(f"{gwei} gwei is not a whole number of wei")
    return int(wei)


def fee_policy_from_settings(settings: TransactionSettings) -> FeePolicy:
    """The operator's configured fee policy (`chain.transactions.*`)."""
    tip = settings.priority_fee_gwei
    return FeePolicy(
        base_fee_multiplier=settings.base_fee_multiplier,
        priority_fee=gwei_to_wei(tip) if tip is not None else None,
        min_priority_fee=gwei_to_wei(settings.min_priority_fee_gwei),
        max_priority_fee=gwei_to_wei(settings.max_priority_fee_gwei),
        max_fee_per_gas=gwei_to_wei(settings.max_fee_per_gas_gwei),
        gas_margin=settings.gas_margin,
    )


class Fees(NamedTuple):
    max_fee_per_gas: int
    max_priority_fee_per_gas: int


def tip_for(policy: FeePolicy, suggested: int | None) -> int:
    if policy.priority_fee is not None:
        return policy.priority_fee
    if suggested is None:
        return policy.min_priority_fee
    return max(policy.min_priority_fee, min(policy.max_priority_fee, suggested))


def fees_for(policy: FeePolicy, base_fee: int, tip: int) -> Fees:
    """Fees for a new transaction; raises `FeeCapExceeded` if it cannot be mined under the cap."""
    cap = policy.max_fee_per_gas
    if base_fee + tip > cap:
        raise FeeCapExceeded(
            f"base fee {gwei(base_fee)} + tip {gwei(tip)} is above the max fee cap of "
            f"{gwei(cap)}: not sending; wait for lower fees or raise the cap"
        )
    wanted = int(base_fee * policy.base_fee_multiplier) + tip
    return Fees(min(wanted, cap), tip)


def _bumped(value: int, factor: float) -> int:
    return max(value + 1, -(-value * int(factor * 1000) // 1000))


def replacement_fees(policy: FeePolicy, previous: Fees, base_fee: int, tip: int) -> Fees | None:
    """Fees for a replacement of `previous`: both raised by at least `replacement_bump` and at
    least what a new transaction would get now. None if the cap leaves no room to bump."""
    cap = policy.max_fee_per_gas
    new_tip = max(_bumped(previous.max_priority_fee_per_gas, policy.replacement_bump), tip)
    new_max = max(
        _bumped(previous.max_fee_per_gas, policy.replacement_bump),
        int(base_fee * policy.base_fee_multiplier) + new_tip,
    )
    if new_max > cap:
        new_max = cap
    if new_max < _bumped(previous.max_fee_per_gas, policy.replacement_bump) or new_tip > new_max:
        return None
    return Fees(new_max, new_tip)
