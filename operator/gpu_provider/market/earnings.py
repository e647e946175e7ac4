"""When to withdraw earnings and how much, exact to the wei.

`EscrowProtocol.providerEarnings(provider, token)` gives earned, withdrawn and balance in the
token's base units. The whole balance is withdrawn once it reaches the provider's threshold
(`acceptedTokens[].withdrawThreshold`, in whole tokens): small balances are left to grow so
the gas of a withdrawal is not spent on dust. Thresholds are converted with exact decimal
arithmetic; a threshold finer than the token's base unit is refused rather than rounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = ["ProviderEarnings", "threshold_base_units", "withdraw_key", "withdrawal_amount"]


@dataclass(frozen=True, slots=True)
class ProviderEarnings:
    """`EscrowProtocol.providerEarnings(provider, token)`: amounts in base units."""

    earned: int
    withdrawn: int
    balance: int

    def __post_init__(self) -> None:
        for name in ("earned", "withdrawn", "balance"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"earnings {name} must be a non-negative int, got {value!r}")


def threshold_base_units(whole_tokens: str | Decimal, decimals: int) -> int:
    """`whole_tokens` (a decimal string such as "2.5") in base units of a token with
    `decimals`; ValueError if it is negative, not a number, or finer than one base unit."""
    try:
        amount = Decimal(whole_tokens)
    except InvalidOperation:
        raise ValueError(f"withdraw threshold {whole_tokens!r} is not a decimal number") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"withdraw threshold {whole_tokens!r} must be a number >= 0")
    scaled = amount.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise ValueError(
            f"withdraw threshold {whole_tokens!r} is finer than one base unit of a token with "
            f"{decimals} decimals"
        )
    return int(scaled)


def withdrawal_amount(earnings: ProviderEarnings, threshold: int) -> int | None:
    """The amount to withdraw now (the whole balance), or None while it is below
    `threshold` base units (or zero: the contract refuses a withdrawal of nothing)."""
    if threshold < 0:
        raise ValueError("a withdraw threshold is never negative")
    if earnings.balance == 0 or earnings.balance < threshold:
        return None
    return earnings.balance


def withdraw_key(token: str, withdrawn: int) -> str:
    """The idempotency key of the next withdrawal of `token`.

    `withdrawn` only grows when a withdrawal is mined, so a restart before that computes the
    same key and resumes the journaled transaction instead of sending a second one; the next
    withdrawal after it gets a new key.
    """
    return f"withdraw:{token.lower()}:{withdrawn}"
