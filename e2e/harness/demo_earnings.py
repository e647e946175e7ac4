"""The last step of `make demo`: the provider's earnings, withdrawn to its reward wallet.

The escrow's `providerEarnings` (earned, withdrawn, balance) and the reward wallet's token
balance are read at one block, before the first order and after the withdrawal: the wallet
gains exactly what was withdrawn, to the wei (gas is paid in ETH, not in the token).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from e2e.harness.demo_operator import read_chain_provider
from e2e.harness.demo_steps import DemoFailed, Steps, say, table, until
from e2e.harness.stack import kubectl
from gpu_provider.devnet.session import DevnetChain
from gpu_provider.devnet.state import DevnetState
from gpu_provider.devnet.tenant import format_amount


@dataclass(frozen=True)
class Money:
    """The provider's money in the payment token at one block (base units)."""

    block: int
    wallet: int
    earned: int
    withdrawn: int
    escrow: int


async def reward_wallet(state: DevnetState) -> str:
    return (await read_chain_provider(state)).reward_wallet


async def read_money(chain: DevnetChain, state: DevnetState, provider: str, wallet: str) -> Money:
    block = await chain.head()
    balance = (
        await chain.contract("TestToken").functions.balanceOf(wallet).call(block_identifier=block)
    )
    earned, withdrawn, escrow = (
        await chain.contract("EscrowProtocol")
        .functions.providerEarnings(provider, state.payment_token)
        .call(block_identifier=block)
    )
    return Money(block, int(balance), int(earned), int(withdrawn), int(escrow))


def _status_earnings(provider_node: str) -> list[dict[str, Any]]:
    try:
        body = json.loads(kubectl("get", "providernode", provider_node, "-o", "json"))
    except RuntimeError:
        return []
    return list((body.get("status") or {}).get("earnings") or [])


async def show_earnings(
    steps: Steps,
    chain: DevnetChain,
    state: DevnetState,
    provider_node: str,
    before: Money,
    provider: str,
    wallet: str,
    watched: Any = (),
) -> None:
    steps.step("The operator withdraws the earnings to the provider's reward wallet")

    async def withdrawn() -> Money | None:
        now = await read_money(chain, state, provider, wallet)
        done = now.earned > before.earned and now.escrow == 0 and now.withdrawn == now.earned
        return now if done else None

    after = await until(
        withdrawn, "the earnings withdrawn (escrow balance 0)", within=60, watched=watched
    )
    entry = await until(
        lambda: next(
            (
                e
                for e in _status_earnings(provider_node)
                if e.get("withdrawn") == str(after.withdrawn)
            ),
            None,
        ),
        "ProviderNode status.earnings showing the withdrawal",
        within=30,
        watched=watched,
    )
    decimals = state.token.decimals

    def amount(units: int) -> str:
        return f"{format_amount(units, decimals)} {state.token.symbol}"

    say(
        table(
            [
                ("", f"BLOCK {before.block}", f"BLOCK {after.block}", "CHANGE (wei)"),
                (
                    "reward wallet " + wallet,
                    amount(before.wallet),
                    amount(after.wallet),
                    after.wallet - before.wallet,
                ),
                (
                    "escrow: earned",
                    amount(before.earned),
                    amount(after.earned),
                    after.earned - before.earned,
                ),
                (
                    "escrow: withdrawn",
                    amount(before.withdrawn),
                    amount(after.withdrawn),
                    after.withdrawn - before.withdrawn,
                ),
                (
                    "escrow: balance",
                    amount(before.escrow),
                    amount(after.escrow),
                    after.escrow - before.escrow,
                ),
            ]
        )
    )
    say(f"ProviderNode status.earnings: {json.dumps(entry, separators=(',', ':'))}")
    gained, paid_out = after.wallet - before.wallet, after.withdrawn - before.withdrawn
    if gained != paid_out:
        say(f"DEMO FAILED: the wallet gained {gained} wei but {paid_out} wei were withdrawn")
        raise DemoFailed("earnings")
    say(f"The wallet gained exactly what was withdrawn: {gained} wei = {amount(gained)}.")
