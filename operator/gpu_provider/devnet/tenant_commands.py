"""`gpu-provider devnet tenant ...`: play a customer of the devnet marketplace.

Each command opens the devnet through the chain layer, does one thing as the tenant, and
closes it again (`asyncio.run` per command). Amounts are USD: the devnet token is a USD
stablecoin.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from gpu_provider.devnet.cliutil import CONTEXT_SETTINGS, run, state_file_option

if TYPE_CHECKING:
    from gpu_provider.devnet.tenant import LeaseInfo, Tenant

__all__ = ["tenant"]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


@click.group(
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


def _as_tenant(
    state_file: Path,
    private_key_file: Path | None,
    action: Callable[[Tenant], Awaitable[T]],
) -> T:
    """Run `action` as the tenant on the devnet of `state_file`; errors as one line."""

    async def session() -> T:
        from gpu_provider.devnet.accounts import Role
        from gpu_provider.devnet.session import open_devnet
        from gpu_provider.devnet.state import load_state
        from gpu_provider.devnet.tenant import Tenant, load_private_key

        state = load_state(state_file)
        account = (
            load_private_key(private_key_file)
            if private_key_file is not None
            else state.signer(Role.TENANT)
        )
        async with await open_devnet(state) as chain:
            return await action(Tenant(chain=chain, account=account))

    return run(session(), state_file)


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
    _as_tenant(state_file, private_key_file, _echo_balances)


async def _echo_balances(client: Tenant) -> None:
    balances = await client.balances()
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

    async def action(client: Tenant) -> None:
        await client.deposit(amount)
        click.echo(f"deposited {amount} USD")
        await _echo_balances(client)

    _as_tenant(state_file, private_key_file, action)


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
    from gpu_provider.devnet.cliutil import friendly_errors
    from gpu_provider.devnet.orderfile import parse_order_yaml

    with friendly_errors(state_file):
        parsed = parse_order_yaml(file.read_text(encoding="utf-8"), str(file))

    async def action(client: Tenant) -> None:
        placed = await client.create_order(parsed)
        terms = placed.terms
        click.echo(f"order {placed.order_id} created in block {placed.block}")
        click.echo(f"  spec        {placed.spec}")
        click.echo(f"  duration    {parsed.duration_seconds} s = {terms.num_blocks} blocks")
        click.echo(
            f"  max price   {parsed.max_usd_per_hour} USD/h = {terms.max_price_per_block} per block"
        )
        click.echo(f"  escrow      {client.amount(terms.escrow)} locked")
        click.echo(f"next: gpu-provider devnet tenant wait-lease {placed.order_id}")

    _as_tenant(state_file, private_key_file, action)


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

    async def action(client: Tenant) -> None:
        await client.cancel(order_id)
        click.echo(f"order {order_id} cancelled")
        await _echo_balances(client)

    _as_tenant(state_file, private_key_file, action)


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

    async def action(client: Tenant) -> None:
        poll = max(0.2, min(1.0, client.chain.state.block_time or 0.5))
        info = await client.wait_for_lease(order_id, within=timeout, poll_interval=poll)
        _echo_lease(client, info, as_json)

    _as_tenant(state_file, private_key_file, action)


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

    async def action(client: Tenant) -> None:
        _echo_lease(client, await client.lease(lease_id), as_json)

    _as_tenant(state_file, private_key_file, action)


def _echo_lease(client: Tenant, info: LeaseInfo, as_json: bool) -> None:
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
    short_help="PUT the manifest to the lease's provider.",
)
@click.argument("lease_id", type=click.IntRange(min=1))
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--ca-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="PEM file of the CA that signed the provider's certificate  [default: system CAs]",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="accept any certificate, e.g. a devnet provider's self-signed one (never on Base)",
)
@click.option(
    "--provider-port",
    type=click.IntRange(1, 65535),
    default=8443,
    show_default=True,
    help="for testing only: Spheron's SDK always uses 8443",
)
@tenant_options
def send_manifest(
    lease_id: int,
    file: Path,
    ca_file: Path | None,
    insecure: bool,
    provider_port: int,
    state_file: Path,
    private_key_file: Path | None,
) -> None:
    """Upload the deployment manifest (images, commands, ports) to the lease's provider.

    As Spheron's SDK does: reads the lease's provider and its hostUri from the chain, and
    PUTs the manifest (a JSON array of groups) to
    https://<hostUri>:8443/deployment/<leaseId>/manifest with the Auth-Spheron header, a
    signature by the tenant's wallet over the current time that the provider checks against
    the lease's tenant. The manifest's services must be the order's. Any answer but HTTP 200
    is a failure, as it is for Spheron's proxy.

    \b
    Example:
      gpu-provider devnet tenant send-manifest 1 manifests/examples/manifest.yaml --insecure
    """
    from gpu_provider.devnet.cliutil import friendly_errors
    from gpu_provider.devnet.manifest import parse_manifest_yaml

    with friendly_errors(state_file):
        manifest = parse_manifest_yaml(file.read_text(encoding="utf-8"), str(file))

    async def action(client: Tenant) -> None:
        from gpu_provider.devnet.upload import TlsOptions, send_manifest

        reply = await send_manifest(
            client,
            lease_id,
            manifest,
            port=provider_port,
            tls=TlsOptions(ca_file=ca_file, insecure=insecure),
        )
        click.echo(f"manifest accepted by {reply.url} (HTTP {reply.status})")
        if reply.body.strip():
            click.echo(reply.body.strip())

    _as_tenant(state_file, private_key_file, action)


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

    async def action(client: Tenant) -> None:
        closed = await client.close(lease_id)
        click.echo(
            f"lease {lease_id} closed in block {closed.block}; "
            f"{client.amount(closed.paid)} paid to the provider at closing"
        )
        await _echo_balances(client)

    _as_tenant(state_file, private_key_file, action)
