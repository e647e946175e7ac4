"""`gpu-provider devnet ...`: the local marketplace from the command line.

The commands import web3 and the devnet modules only when they run, so `gpu-provider --help`
stays fast. Every `DevnetError` becomes one `Error: ...` line and exit status 1.
"""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

import click

from gpu_provider.devnet.cliutil import (
    CONTEXT_SETTINGS,
    friendly_errors,
    log_to_stderr,
    run,
    state_file_option,
)
from gpu_provider.devnet.paths import log_file_for, pid_file_for
from gpu_provider.devnet.provider_commands import provider
from gpu_provider.devnet.tenant_commands import tenant

__all__ = ["devnet"]

DEFAULT_BLOCK_TIME = 2.0
DEFAULT_BID_WINDOW = 10
DEFAULT_PROVIDER_TIER = 4


@click.group(
    context_settings=CONTEXT_SETTINGS,
    short_help="Local marketplace: anvil, contracts, matchmaker, tenant.",
)
def devnet() -> None:
    """Local marketplace for development: anvil, the devnet contracts, matchmaker, tenant.

    Everything a provider meets on Spheron's chain, on your machine: `up` starts a chain with
    the marketplace contracts, `matchmaker` matches orders to bids, `verifier` approves
    providers' attributes, `tenant` plays a customer. The tools share .local/devnet.json
    (chain, accounts by role, every contract address).

    \b
    A full round trip, in three terminals:
      gpu-provider devnet up                                # 1: chain + contracts
      gpu-provider devnet matchmaker                        # 2: matches orders
      gpu-provider devnet tenant deposit --amount 100       # 3: fund escrow
      gpu-provider devnet tenant order manifests/examples/order.yaml
      gpu-provider devnet tenant wait-lease 1               #    (after a provider bids)
      gpu-provider devnet tenant send-manifest 1 manifests/examples/manifest.yaml
      gpu-provider devnet tenant close 1

    See docs/devnet.md for the account roles and the devnet.json format.
    """


@devnet.command(
    "up", context_settings=CONTEXT_SETTINGS, short_help="Start anvil and deploy the marketplace."
)
@click.option(
    "--block-time",
    type=click.FloatRange(min=0),
    default=DEFAULT_BLOCK_TIME,
    show_default=True,
    help="seconds per block, like the real chain's 2 s; 0 mines one block per transaction",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    help="RPC port on 127.0.0.1  [default: a free one]",
)
@click.option(
    "--bid-window",
    type=click.IntRange(min=1),
    default=DEFAULT_BID_WINDOW,
    show_default=True,
    help="blocks after an order during which providers may bid",
)
@click.option(
    "--mint",
    type=click.IntRange(min=0),
    default=1_000_000,
    show_default=True,
    help="test tokens (1 token = 1 USD) minted to each provider and tenant account",
)
@click.option(
    "--provider-tier",
    type=click.IntRange(1, 7),
    default=DEFAULT_PROVIDER_TIER,
    show_default=True,
    help="trust tier a newly registered provider starts in (4: the first `community` tier, "
    "which Spheron's SDK orders by default; `devnet provider set-tier` changes it later)",
)
@click.option(
    "--detach",
    is_flag=True,
    help="leave anvil running in the background and return (stop it with `devnet down`)",
)
@state_file_option
def up(
    block_time: float,
    port: int,
    bid_window: int,
    mint: int,
    provider_tier: int,
    detach: bool,
    state_file: Path,
) -> None:
    """Start anvil, deploy the marketplace, grant roles, fund accounts, write devnet.json.

    Deploys the ten devnet contracts, grants MATCHMAKER_ROLE and VERIFIER_ROLE to their
    well-known accounts, lists the test token (USDT, 18 decimals) and mints it to the
    provider and tenant accounts. Then it prints where everything is and which account plays
    which role (never a private key). anvil's output goes to anvil.log next to the state file.

    By default it stays in the foreground until Ctrl-C, then stops anvil and removes the
    state file. With --detach it returns at once and leaves anvil running (its pid is in
    anvil.pid next to the state file).

    \b
    Examples:
      gpu-provider devnet up                        # 2 s blocks, until Ctrl-C
      gpu-provider devnet up --detach               # background; `devnet down` stops it
      gpu-provider devnet up --block-time 0 --bid-window 3
      jq -r .contracts.OrderRequest .local/devnet.json
    """
    from gpu_provider.devnet.up import describe, start_devnet

    with friendly_errors(state_file):
        node, state = start_devnet(
            state_file=state_file,
            block_time=block_time,
            port=port,
            bid_window_blocks=bid_window,
            mint_tokens=mint,
            provider_tier=provider_tier,
            log_file=log_file_for(state_file),
        )
    if detach:
        try:
            click.echo(describe(state, run(_balances(state), state_file), state_file))
        except BaseException:
            _stop_foreground(node, state_file)
            raise
        assert node.process is not None
        click.echo(
            f"\nanvil runs in the background (pid {node.process.pid}); "
            f"stop it with `gpu-provider devnet down --state-file {state_file}`"
        )
        return
    # From here on Ctrl-C (or SIGTERM) is the normal way out: stop anvil, exit 0.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        click.echo(describe(state, run(_balances(state), state_file), state_file))
        click.echo("\nanvil runs until you press Ctrl-C.")
        while node.running:
            time.sleep(0.2)
        raise click.ClickException(
            f"anvil stopped on its own; see {log_file_for(state_file)} for why"
        )
    except KeyboardInterrupt:
        click.echo("stopping anvil")
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop_foreground(node, state_file)


async def _balances(state: Any) -> Any:
    from gpu_provider.devnet.session import open_devnet
    from gpu_provider.devnet.up import token_balances

    async with await open_devnet(state) as chain:
        return await token_balances(chain)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _stop_foreground(node: Any, state_file: Path) -> None:
    node.stop()
    pid_file_for(state_file).unlink(missing_ok=True)
    state_file.unlink(missing_ok=True)


@devnet.command(
    "down", context_settings=CONTEXT_SETTINGS, short_help="Stop a detached devnet anvil."
)
@state_file_option
def down(state_file: Path) -> None:
    """Stop the anvil that `devnet up --detach` left running and remove its devnet.json.

    \b
    Example:
      gpu-provider devnet down
    """
    from gpu_provider.devnet.up import stop_devnet

    pid = stop_devnet(state_file)
    if pid is None:
        click.echo(f"no devnet was running for {state_file}")
    else:
        click.echo(f"stopped anvil (pid {pid}) and removed {state_file}")


@devnet.command(
    "matchmaker",
    context_settings=CONTEXT_SETTINGS,
    short_help="Match each order to its cheapest eligible bid.",
)
@click.option("--once", is_flag=True, help="process what is pending now (windows closed) and exit")
@click.option(
    "--eager",
    is_flag=True,
    help="match as soon as an order has an eligible bid instead of waiting for its window. "
    "The default waits because Spheron's SDK starts listening for OrderMatched only after "
    "createOrder's receipt (4-8 s later): an eager match that lands sooner is missed and "
    "the SDK tenant times out",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.05),
    default=None,
    help="seconds between polls  [default: the devnet's block time, at least 0.5 s]",
)
@click.option(
    "--from-block",
    type=click.IntRange(min=0),
    default=None,
    help="first block to scan for orders  [default: the deployment block]",
)
@state_file_option
def matchmaker(
    once: bool, eager: bool, poll_interval: float | None, from_block: int | None, state_file: Path
) -> None:
    """Collect bids for each order during its window and match the cheapest eligible one.

    Signs with the devnet's matchmaker account (MATCHMAKER_ROLE). For every new order it
    waits until the bid window closes, then picks the cheapest bid from a provider that is
    Active and in one of the order's trust tiers, at most the order's max price (ties go to
    the earliest bid), and calls Bid.matchOrder at the bid's price: the lease starts. Each
    decision is logged with the reason every other bid lost. An order with no eligible bid
    is left open for its tenant to cancel.

    \b
    Examples:
      gpu-provider devnet matchmaker                 # runs until Ctrl-C
      gpu-provider devnet matchmaker --eager         # no waiting for the window
      gpu-provider devnet matchmaker --once          # one pass, e.g. in a script
    """
    from gpu_provider.devnet.state import load_state

    log_to_stderr()
    with friendly_errors(state_file):
        state = load_state(state_file)
    interval = poll_interval or max(0.5, state.block_time or 1.0)
    with contextlib.suppress(KeyboardInterrupt):
        run(_matchmaker(state, once, eager, from_block, interval), state_file)


async def _matchmaker(
    state: Any, once: bool, eager: bool, from_block: int | None, interval: float
) -> None:
    from gpu_provider.devnet.accounts import Role
    from gpu_provider.devnet.matchmaker import Matchmaker
    from gpu_provider.devnet.session import open_devnet

    async with await open_devnet(state) as chain:
        engine = Matchmaker(
            chain=chain,
            account=state.signer(Role.MATCHMAKER),
            eager=eager,
            from_block=from_block,
            poll_interval=interval,
        )
        if once:
            decisions = await engine.poll_once()
            matched = sum(1 for decision in decisions if decision.matched)
            waiting = len(engine.pending_orders)
            click.echo(f"matched {matched} order(s); {waiting} still in their bid window")
            return
        await engine.run()


@devnet.command(
    "verifier",
    context_settings=CONTEXT_SETTINGS,
    short_help="Approve (or reject) providers' submitted GPU/CPU attributes.",
)
@click.option(
    "--delay",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="seconds a submission waits before it is decided, as Spheron's verifier takes time",
)
@click.option(
    "--reject",
    is_flag=True,
    help="reject every submission (adminRemoveAttributes) instead of approving it",
)
@click.option("--once", is_flag=True, help="decide what is due now and exit")
@click.option(
    "--from-block",
    type=click.IntRange(min=0),
    default=None,
    help="first block to scan for submissions  [default: the deployment block]",
)
@state_file_option
def verifier(
    delay: float, reject: bool, once: bool, from_block: int | None, state_file: Path
) -> None:
    """Play Spheron's attribute verifier on the devnet.

    Signs with the devnet's verifier account (VERIFIER_ROLE). Each submitAttributes of a
    provider is pending until the verifier approves it; this waits --delay seconds after the
    newest submission of a provider and category, then approves what is pending, or with
    --reject withdraws it, so a provider's rejected path can be tried.

    \b
    Examples:
      gpu-provider devnet verifier                   # approves after 5 s, until Ctrl-C
      gpu-provider devnet verifier --delay 0 --once  # approve what is pending now
      gpu-provider devnet verifier --reject          # reject every submission
    """
    from gpu_provider.devnet.state import load_state

    log_to_stderr()
    with friendly_errors(state_file):
        state = load_state(state_file)
    with contextlib.suppress(KeyboardInterrupt):
        run(_verifier(state, delay, reject, once, from_block), state_file)


async def _verifier(
    state: Any, delay: float, reject: bool, once: bool, from_block: int | None
) -> None:
    from gpu_provider.devnet.accounts import Role
    from gpu_provider.devnet.session import open_devnet
    from gpu_provider.devnet.verifier import Verifier

    async with await open_devnet(state) as chain:
        engine = Verifier(
            chain=chain,
            account=state.signer(Role.VERIFIER),
            delay=delay,
            reject=reject,
            from_block=from_block,
            poll_interval=max(0.5, state.block_time or 1.0),
        )
        if once:
            done = await engine.poll_once()
            click.echo(f"decided {len(done)} submission(s); {len(engine.waiting)} still waiting")
            return
        await engine.run()


devnet.add_command(tenant)
devnet.add_command(provider)
