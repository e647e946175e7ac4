"""Errors raised by the marketplace package.

They subclass `ValueError` because each one means "this input cannot be used", and carry the
details a caller needs to write a status condition or an event without parsing the message.
"""

from __future__ import annotations


class OrderSpecError(ValueError):
    """An on-chain order spec string that cannot be decoded or does not describe a valid order.

    `path` names the offending field in the compressed spec's own terms (`s[0].r.g.u`), and
    `offset` is the character position in the string, so a tenant can find the mistake.
    """

    def __init__(self, reason: str, *, path: str = "", offset: int | None = None) -> None:
        self.reason = reason
        self.path = path
        self.offset = offset
        where = ""
        if path:
            where += f" at {path}"
        if offset is not None:
            where += f" (character {offset})"
        super().__init__(f"invalid order spec{where}: {reason}")


class PricingError(ValueError):
    """A price cannot be computed from the inputs (bad amount, missing assignment, ...)."""


class UnpricedModelError(PricingError):
    """The provider's price table has no USD/hour price for a GPU model it was asked to quote.

    Raised instead of guessing a price: bidding at zero or at another model's price would
    lose money or undercut the provider's own policy.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        super().__init__(
            f"GPU model {model!r} has no price in the pricing table; "
            "add a USD/hour price for it or stop offering it"
        )
