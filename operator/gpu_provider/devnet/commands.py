"""`gpu-provider devnet ...`: the local marketplace from the command line.

The commands import web3 and the devnet modules only when they run, so `gpu-provider --help`
stays fast. Every `DevnetError` becomes one `Error: ...` line and exit status 1.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

import click

from gpu_provider.devnet.paths import DEFAULT_STATE_FILE, log_file_for, pid_file_for

if TYPE_CHECKING:
    from gpu_provider.devnet.tenant import Tenant

__all__ = ["devnet"]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
DEFAULT_BLOCK_TIME = 2.0
DEFAULT_BID_WINDOW = 10

F = TypeVar("F", bound=Callable[..., Any])


def state_file_option(function: F) -> F:
    return click.option(
        "--state-file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=DEFAULT_STATE_FILE,
        show_default=True,
        help="the devnet description `devnet up` writes and every other command reads",
    )(function)


@contextlib.contextmanager
def _friendly_errors(state_file: Path | None = None) -> Iterator[None]:
    """DevnetError, a lost RPC connection or a file problem become one line and exit status 1."""
    from requests.exceptions import RequestException

    from gpu_provider.devnet.errors import DevnetError

    try:
        yield
    except DevnetError as error:
        raise click.ClickException(str(error)) from None
    except RequestException as error:
        where = f" (described in {state_file})" if state_file else ""
        raise click.ClickException(
            f"lost the connection to the devnet{where}: {error.__class__.__name__}; "
            "is anvil still running?"
        ) from None
    except OSError as error:
        what = f"{error.filename}: " if error.filename else ""
        raise click.ClickException(f"{what}{error.strerror or error}") from None


@click.group(
    context_settings=CONTEXT_SETTINGS,
    short_help="Local marketplace: anvil, contracts, matchmaker, tenant.",
)
def devnet() -> None:
    """Local marketplace for development: anvil, the devnet contracts, matchmaker, tenant.

    Everything a provider meets on Spheron's chain, on your machine: `up` starts a chain with
    the marketplace contracts, `matchmaker` matches orders to bids, `tenant` plays a customer.
    The tools share .local/devnet.json (chain, accounts by role, every contract address).

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
    "--detach",
    is_flag=True,
    help="leave anvil running in the background and return (stop it with `devnet down`)",
)
@state_file_option
def up(
    block_time: float, port: int, bid_window: int, mint: int, detach: bool, state_file: Path
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
    from gpu_provider.devnet.client import connect
    from gpu_provider.devnet.up import describe, start_devnet, token_balances

    with _friendly_errors(state_file):
        node, state = start_devnet(
            state_file=state_file,
            block_time=block_time,
            port=port,
            bid_window_blocks=bid_window,
            mint_tokens=mint,
            log_file=log_file_for(state_file),
        )
    if detach:
        try:
            with _friendly_errors(state_file):
                click.echo(describe(state, token_balances(connect(state)), state_file))
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
        with _friendly_errors(state_file):
            click.echo(describe(state, token_balances(connect(state)), state_file))
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
    help="match as soon as an order has an eligible bid instead of waiting for its window",
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
    from gpu_provider.devnet.accounts import Role
    from gpu_provider.devnet.client import connect
    from gpu_provider.devnet.matchmaker import Matchmaker
    from gpu_provider.devnet.state import load_state

    _log_to_stderr()
    with _friendly_errors(state_file):
        state = load_state(state_file)
        client = connect(state)
        engine = Matchmaker(
            client=client,
            account=state.signer(Role.MATCHMAKER),
            eager=eager,
            from_block=from_block,
        )
        if once:
            decisions = engine.poll_once()
            matched = sum(1 for decision in decisions if decision.matched)
            waiting = len(engine.pending_orders)
            click.echo(f"matched {matched} order(s); {waiting} still in their bid window")
            return
        interval = poll_interval or max(0.5, state.block_time or 1.0)
        with contextlib.suppress(KeyboardInterrupt):
            engine.run(interval)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (test runners swap it per invocation)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _log_to_stderr() -> None:
    logger = logging.getLogger("gpu_provider.devnet")
    if not any(isinstance(handler, _StderrHandler) for handler in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


# --- tenant ------------------------------------------------------------------------------


@devnet.group(
    "tenant",
    context_settings=CONTEXT_SETTINGS,
    short_help="Act as a tenant: deposit, order, manifest, close.",
)
def tenant() -> None:
    """Act as a tenant: deposit, create an order from YAML, upload a manifest, close a lease.

    Signs with the devnet's tenant account (from devnet.json's mnemonic) unless a command is
    given --private-key-file. Amounts are in USD: the devnet token is a USD stablecoin.

    \b
    Examples:
      gpu-provider devnet tenant deposit --amount 100
      gpu-provider devnet tenant order manifests/examples/order.yaml
      gpu-provider devnet tenant wait-lease 1
      gpu-provider devnet tenant send-manifest 1 manifests/examples/manifest.yaml
      gpu-provider devnet tenant lease 1
      gpu-provider devnet tenant close 1
    """


def tenant_options(function: F) -> F:
    function = click.option(
        "--private-key-file",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        default=None,
        help="file holding the tenant's hex private key  [default: the devnet's tenant]",
    )(function)
    return state_file_option(function)


def _tenant(state_file: Path, private_key_file: Path | None) -> Tenant:
    from gpu_provider.devnet.accounts import Role
    from gpu_provider.devnet.client import connect
    from gpu_provider.devnet.state import load_state
    from gpu_provider.devnet.tenant import Tenant, load_private_key

    state = load_state(state_file)
    account = (
        load_private_key(private_key_file)
        if private_key_file is not None
        else state.signer(Role.TENANT)
    )
    return Tenant(client=connect(state), account=account)


def _usd(_: click.Context, __: click.Parameter, value: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not a number of USD") from None
    if not amount.is_finite() or amount <= 0:
        raise click.BadParameter("must be more than zero")
    return amount


@tenant.command(
    "balance",
    context_settings=CONTEXT_SETTINGS,
    short_help="Show wallet, free and locked escrow balances.",
)
@tenant_options
def balance(state_file: Path, private_key_file: Path | None) -> None:
    """Show the tenant's test tokens: in the wallet, and in escrow (locked and free).

    \b
    Example:
      gpu-provider devnet tenant balance
    """
    with _friendly_errors(state_file):
        client = _tenant(state_file, private_key_file)
        _echo_balances(client)


def _echo_balances(client: Tenant) -> None:
    balances = client.balances()
    click.echo(f"tenant {client.account.address}")
    click.echo(f"  wallet           {client.amount(balances.wallet)}")
    click.echo(f"  escrow, free     {client.amount(balances.unlocked)}")
    click.echo(f"  escrow, locked   {client.amount(balances.locked)}")


@tenant.command(
    "deposit", context_settings=CONTEXT_SETTINGS, short_help="Move test tokens into escrow."
)
@click.option(
    "--amount",
    required=True,
    callback=_usd,
    metavar="USD",
    help="how much to move from the wallet into escrow, in USD (e.g. 100 or 12.5)",
)
@tenant_options
def deposit(amount: Decimal, state_file: Path, private_key_file: Path | None) -> None:
    """Fund escrow: approve the EscrowUser contract and deposit test tokens into it.

    Orders lock their maximum cost (max price per block x blocks) from the free escrow; a
    lease then pays the provider block by block from it, and closing it frees the rest.

    \b
    Example:
      gpu-provider devnet tenant deposit --amount 100
    """
    with _friendly_errors(state_file):
        client = _tenant(state_file, private_key_file)
        client.deposit(amount)
        click.echo(f"deposited {amount} USD")
        _echo_balances(client)


@tenant.command(
    "order", context_settings=CONTEXT_SETTINGS, short_help="Create an order from a YAML spec."
)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@tenant_options
def order(file: Path, state_file: Path, private_key_file: Path | None) -> None:
    """Create an order from a YAML spec: GPUs, CPU, memory, storage, duration, budget.

    The services are encoded in the marketplace's compressed spec notation; the duration
    becomes a number of blocks (rounded up) and maxUsdPerHour a max price per block
    (rounded down), at the devnet's block time. The order locks max price x blocks of free
    escrow. Prints the order id; the lease, once matched, has the same id.

    \b
    Example:
      gpu-provider devnet tenant order manifests/examples/order.yaml
    """
    from gpu_provider.devnet.orderfile import parse_order_yaml

    with _friendly_errors(state_file):
        parsed = parse_order_yaml(file.read_text(encoding="utf-8"), str(file))
        client = _tenant(state_file, private_key_file)
        placed = client.create_order(parsed)
        terms = placed.terms
        click.echo(f"order {placed.order_id} created in block {placed.block}")
        click.echo(f"  spec        {placed.spec}")
        click.echo(f"  duration    {parsed.duration_seconds} s = {terms.num_blocks} blocks")
        click.echo(
            f"  max price   {parsed.max_usd_per_hour} USD/h = {terms.max_price_per_block} per block"
        )
        click.echo(f"  escrow      {client.amount(terms.escrow)} locked")
        click.echo(f"next: gpu-provider devnet tenant wait-lease {placed.order_id}")


@tenant.command(
    "cancel",
    context_settings=CONTEXT_SETTINGS,
    short_help="Cancel an unmatched order, freeing its escrow.",
)
@click.argument("order_id", type=click.IntRange(min=1))
@tenant_options
def cancel(order_id: int, state_file: Path, private_key_file: Path | None) -> None:
    """Cancel an order that has no lease yet and free its escrow.

    \b
    Example:
      gpu-provider devnet tenant cancel 3
    """
    with _friendly_errors(state_file):
        client = _tenant(state_file, private_key_file)
        client.cancel(order_id)
        click.echo(f"order {order_id} cancelled")
        _echo_balances(client)


@tenant.command(
    "wait-lease",
    context_settings=CONTEXT_SETTINGS,
    short_help="Wait for the match and show the lease.",
)
@click.argument("order_id", type=click.IntRange(min=1))
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="seconds to wait for the matchmaker",
)
@click.option("--json", "as_json", is_flag=True, help="print the lease as JSON")
@tenant_options
def wait_lease(
    order_id: int, timeout: float, as_json: bool, state_file: Path, private_key_file: Path | None
) -> None:
    """Wait until the order is matched, then show its lease (the lease id is the order id).

    \b
    Example:
      gpu-provider devnet tenant wait-lease 1 --timeout 120
    """
    with _friendly_errors(state_file):
        client = _tenant(state_file, private_key_file)
        poll = max(0.2, min(1.0, client.client.state.block_time or 0.5))
        _echo_lease(
            client, client.wait_for_lease(order_id, timeout=timeout, poll_interval=poll), as_json
        )


@tenant.command(
    "lease",
    context_settings=CONTEXT_SETTINGS,
    short_help="Show a lease: state, provider, price, blocks.",
)
@click.argument("lease_id", type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="print the lease as JSON")
@tenant_options
def lease(lease_id: int, as_json: bool, state_file: Path, private_key_file: Path | None) -> None:
    """Show a lease: state, provider, price, blocks run so far, escrow still locked.

    \b
    Examples:
      gpu-provider devnet tenant lease 1
      gpu-provider devnet tenant lease 1 --json | jq .state
    """
    with _friendly_errors(state_file):
        client = _tenant(state_file, private_key_file)
        _echo_lease(client, client.lease(lease_id), as_json)


def _echo_lease(client: Tenant, info: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(info.as_json(), indent=2))
        return
    ran = max(0, min(info.head, info.end_block) - info.start_block)
    click.echo(f"lease {info.lease_id}: {info.state}")
    click.echo(f"  provider    {info.provider} (host {info.provider_host_uri or '-'})")
    click.echo(f"  tenant      {info.tenant}")
    click.echo(f"  price       {info.accepted_price} per block = {info.usd_per_hour} USD/h")
    click.echo(
        f"  blocks      {info.start_block} .. {info.end_block} ({info.num_blocks}); "
        f"head {info.head}, {ran} run"
    )
    click.echo(f"  escrow      {client.amount(info.locked_remaining)} still locked")


@tenant.command(
    "send-manifest",
    context_settings=CONTEXT_SETTINGS,
    short_help="Upload the manifest with the Auth-Spheron header.",
)
@click.argument("lease_id", type=click.IntRange(min=1))
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--provider-url",
    default=None,
    help="the provider's gateway, e.g. https://127.0.0.1:8443  "
    "[default: https://<hostUri> from the provider registry]",
)
@click.option(
    "--insecure", is_flag=True, help="accept a self-signed certificate (devnet providers only)"
)
@tenant_options
def send_manifest(
    lease_id: int,
    file: Path,
    provider_url: str | None,
    insecure: bool,
    state_file: Path,
    private_key_file: Path | None,
) -> None:
    """Upload the deployment manifest (images, commands, ports) to the lease's provider.

    POSTs it as JSON to <provider>/deployment/<leaseId>/manifest with the Auth-Spheron
    header: a signature by the tenant's wallet over the current time, valid for 20 s, which
    the provider checks against the lease's tenant. The manifest's services must be the
    order's.

    \b
    Example:
      gpu-provider devnet tenant send-manifest 1 manifests/examples/manifest.yaml \\
          --provider-url https://127.0.0.1:8443 --insecure
    """
    from gpu_provider.devnet.manifest import parse_manifest_yaml

    with _friendly_errors(state_file):
        manifest = parse_manifest_yaml(file.read_text(encoding="utf-8"), str(file))
        client = _tenant(state_file, private_key_file)
        reply = client.send_manifest(
            lease_id, manifest, provider_url=provider_url, insecure=insecure
        )
        click.echo(f"manifest accepted by {reply.url} (HTTP {reply.status})")
        if reply.body.strip():
            click.echo(reply.body.strip())


@tenant.command(
    "close", context_settings=CONTEXT_SETTINGS, short_help="Close a lease and settle the escrow."
)
@click.argument("lease_id", type=click.IntRange(min=1))
@tenant_options
def close(lease_id: int, state_file: Path, private_key_file: Path | None) -> None:
    """Close a lease: pay the provider for the blocks it ran and free the rest of the escrow.

    \b
    Example:
      gpu-provider devnet tenant close 1
    """
    with _friendly_errors(state_file):
        client = _tenant(state_file, private_key_file)
        closed = client.close(lease_id)
        click.echo(
            f"lease {lease_id} closed in block {closed.block}; "
            f"{client.amount(closed.paid)} paid to the provider at closing"
        )
        _echo_balances(client)
