"""`gpu-provider devnet provider ...`: what the marketplace's registry admin does to providers.

On Spheron a provider's trust tier follows its measured uptime; the devnet runs no uptime
challenges, so its registry admin (the deployer account) sets tiers by hand.
"""

from __future__ import annotations

from pathlib import Path

import click

from gpu_provider.devnet.cliutil import CONTEXT_SETTINGS, run, state_file_option

__all__ = ["provider"]


@click.group(
    "provider",
    context_settings=CONTEXT_SETTINGS,
    short_help="Registry admin: set a provider's trust tier.",
)
def provider() -> None:
    """Act as the registry admin on a provider: set its trust tier.

    A provider can only win orders whose tier list holds its tier; Spheron's SDK orders the
    `community` tiers (4-7) by default.

    \b
    Example:
      gpu-provider devnet provider set-tier 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 2
    """


@provider.command(
    "set-tier",
    context_settings=CONTEXT_SETTINGS,
    short_help="Set a registered provider's trust tier (1-7).",
)
@click.argument("address")
@click.argument("tier", type=click.IntRange(1, 7))
@state_file_option
def set_tier(address: str, tier: int, state_file: Path) -> None:
    """Set the trust tier (1 most trusted .. 7) of the provider registered at ADDRESS.

    Signs with the devnet's deployer account, the registry admin. Tiers 1-3 are `secured`,
    4-7 `community`; on chain tier N is stored as N-1.

    \b
    Examples:
      gpu-provider devnet provider set-tier 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 1
      gpu-provider devnet provider set-tier 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 4
    """
    before, after = run(_set_tier(state_file, address, tier), state_file)
    click.echo(f"provider {address}: trust tier {before} -> {after}")


async def _set_tier(state_file: Path, address: str, tier: int) -> tuple[int, int]:
    from web3 import Web3

    from gpu_provider.devnet.accounts import Role
    from gpu_provider.devnet.errors import DevnetError
    from gpu_provider.devnet.session import open_devnet
    from gpu_provider.devnet.state import load_state

    if not Web3.is_address(address):
        raise DevnetError(f"{address!r} is not an address")
    checksummed = Web3.to_checksum_address(address)
    state = load_state(state_file)
    async with await open_devnet(state) as chain:
        what = f"provider {checksummed}"
        before = int(
            await chain.read("ProviderRegistry", "getProviderTrustTier", checksummed, what=what)
        )
        await chain.send(
            state.signer(Role.DEPLOYER),
            f"tier:{checksummed}:{before + 1}->{tier}",
            chain.marketplace.update_provider_tier(checksummed, tier),
            what=f"setting the tier of {checksummed}",
        )
        after = int(
            await chain.read("ProviderRegistry", "getProviderTrustTier", checksummed, what=what)
        )
    return before + 1, after + 1
