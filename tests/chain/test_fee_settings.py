"""The fee cap and timeouts a provider configures reach the transaction manager."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gpu_provider.chain.fees import fee_policy_from_settings, gwei_to_wei
from gpu_provider.chain.intents import InMemoryIntentStore
from gpu_provider.chain.jsonrpc import Rpc
from gpu_provider.chain.rpc import FailoverProvider
from gpu_provider.chain.tx import TxManager
from gpu_provider.chain.wallet import Wallet
from gpu_provider.config import ChainSettings, TransactionSettings


def test_defaults_match_the_documented_policy() -> None:
    policy = fee_policy_from_settings(TransactionSettings())
    assert policy.max_fee_per_gas == 200 * 10**9
    assert policy.min_priority_fee == 1_000_000
    assert policy.max_priority_fee == 5 * 10**9
    assert policy.priority_fee is None


def test_a_base_mainnet_style_cap_in_gwei() -> None:
    settings = ChainSettings.model_validate(
        {"transactions": {"max_fee_per_gas_gwei": "0.5", "priority_fee_gwei": "0.01"}}
    )
    policy = fee_policy_from_settings(settings.transactions)
    assert policy.max_fee_per_gas == 500_000_000
    assert policy.priority_fee == 10_000_000


@pytest.mark.parametrize(
    ("gwei", "wei"), [("1", 10**9), ("0.000000001", 1), ("12.5", 12_500_000_000)]
)
def test_gwei_to_wei_is_exact(gwei: str, wei: int) -> None:
    assert gwei_to_wei(gwei) == wei


def test_fractions_of_a_wei_are_refused() -> None:
    with pytest.raises(ValueError, match="whole number of wei"):
        gwei_to_wei("0.0000000001")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_fee_per_gas_gwei": "-1"}, "non-negative decimal"),
        ({"min_priority_fee_gwei": "6", "max_priority_fee_gwei": "5"}, "must not exceed"),
        ({"gas_margin": 0.9}, "greater than or equal to 1"),
        ({"replace_after_seconds": 0}, "greater than 0"),
    ],
)
def test_bad_transaction_settings_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TransactionSettings.model_validate(values)


def test_the_attempt_limit_reaches_the_manager() -> None:
    settings = ChainSettings.model_validate({"transactions": {"max_attempts": 3}})
    rpc = Rpc(FailoverProvider(["http://127.0.0.1:1"], chain_id=settings.chain_id))
    manager = TxManager.from_settings(
        rpc, settings, Wallet.from_private_key("0x" + "11" * 32), InMemoryIntentStore()
    )
    assert manager.timings.max_attempts == 3


def test_no_more_attempts_than_status_can_hold() -> None:
    with pytest.raises(ValidationError, match="less than or equal to 32"):
        TransactionSettings.model_validate({"max_attempts": 33})
