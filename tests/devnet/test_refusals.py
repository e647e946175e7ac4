"""Every custom error the contracts can raise reaches a devnet user as a sentence."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gpu_provider.chain.contract_errors import marketplace_errors
from gpu_provider.devnet.refusals import refusal_sentence

ERROR_NAMES = sorted({spec.name for spec in marketplace_errors().values()})


@pytest.mark.parametrize("name", ERROR_NAMES)
def test_each_custom_error_reads_as_a_sentence_naming_the_error(name: str) -> None:
    # A revert decoded from a view call carries no sentence: the chain layer's table gives it.
    decoded = SimpleNamespace(reason=f"{name}()", error_name=name, error_args={}, sentence=None)
    shown = refusal_sentence(decoded)
    assert shown.endswith(f" ({name})")
    words = shown.removesuffix(f" ({name})")
    assert words != f"{name}()"
    assert " " in words, words


def test_a_transaction_revert_uses_the_sentence_it_carries() -> None:
    decoded = SimpleNamespace(
        reason="BiddingClosed()",
        error_name="BiddingClosed",
        error_args={},
        sentence="the bidding window for this order has closed",
    )
    assert refusal_sentence(decoded) == (
        "the bidding window for this order has closed (BiddingClosed)"
    )


@pytest.mark.parametrize(
    ("name", "reason"),
    [("Error", "a string the contract gave"), (None, "no reason given (empty revert data)")],
)
def test_a_string_or_empty_revert_is_shown_as_it_is(name: str | None, reason: str) -> None:
    decoded = SimpleNamespace(reason=reason, error_name=name, error_args={}, sentence=None)
    assert refusal_sentence(decoded) == reason
