"""The tenant's manifest upload, as Spheron's SDK does it: PUT to the host the provider
registered on chain, port 8443 (here a test port), the JSON array of groups, signed with
Auth-Spheron; only HTTP 200 counts as accepted.

The provider is a stand-in HTTPS server with a self-signed certificate for 127.0.0.1 that
records every request and answers with the status a test chooses.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

from e2e.chain.conftest import TOKEN, Market
from gpu_provider.cli import main
from gpu_provider.devnet.errors import DevnetError
from gpu_provider.devnet.manifest import parse_manifest_yaml
from gpu_provider.devnet.orderfile import parse_order_yaml
from gpu_provider.devnet.session import DevnetChain
from gpu_provider.devnet.state import DevnetState
from gpu_provider.devnet.tenant import Tenant
from gpu_provider.devnet.upload import TlsOptions, send_manifest
from gpu_provider.market.auth import AUTH_HEADER, AuthError, verify_auth_header

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).parents[2] / "manifests/examples"
PRICE = 4 * TOKEN // 1800 // 2


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Gateway:
    """A provider's gateway stand-in: what it received, and what it answers."""

    port: int = 0
    ca_file: Path = Path()
    status: int = 200
    received: list[Received] = field(default_factory=list)
    tenant: str = ""


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (in subjectAltName, as TLS verification requires)."""
    cert, key = directory / "provider.crt", directory / "provider.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    cert, key = _self_signed(tmp_path)
    state = Gateway(ca_file=cert)

    async def anything(request: web.Request) -> web.Response:
        body = await request.read()
        state.received.append(Received(request.method, request.path, dict(request.headers), body))
        try:
            verify_auth_header(
                request.headers.get(AUTH_HEADER), now=int(time.time()), expected_signer=state.tenant
            )
        except AuthError as error:
            return web.json_response({"reason": error.reason}, status=401)
        return web.json_response({"status": "accepted"}, status=state.status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    runner = web.AppRunner(app)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    state.port = runner.addresses[0][1]
    try:
        yield state
    finally:
        await runner.cleanup()


async def _leased(market: Market, devnet: DevnetChain, host_uri: str = "127.0.0.1") -> int:
    """The example order, leased to a provider registered with `host_uri`."""
    people = market.people
    tenant = Tenant(chain=devnet, account=people.tenant)
    await tenant.deposit(Decimal(10))
    order = parse_order_yaml((EXAMPLES / "order.yaml").read_text(), "order.yaml")
    placed = await tenant.create_order(order)
    params = (
        people.provider.address,
        [market.addresses.test_token],
        '{"Name":"devnet-provider","Region":"eu-west","Attributes":[]}',
        host_uri,
        "-----BEGIN CERTIFICATE-----\ndevnet\n-----END CERTIFICATE-----",
        people.provider.address,
    )
    market.send(market.providers.functions.addProvider(params), people.provider)
    market.activate(people.provider)
    market.bid(people.provider, placed.order_id, PRICE)
    market.match(placed.order_id, people.provider, PRICE)
    return placed.order_id


def _manifest() -> list[dict[str, Any]]:
    return parse_manifest_yaml((EXAMPLES / "manifest.yaml").read_text())


async def test_the_manifest_is_put_to_the_registered_host_signed_by_the_lease_tenant(
    market: Market, devnet: DevnetChain, gateway: Gateway
) -> None:
    lease_id = await _leased(market, devnet)
    tenant = Tenant(chain=devnet, account=market.people.tenant)
    gateway.tenant = tenant.account.address

    reply = await send_manifest(
        tenant, lease_id, _manifest(), port=gateway.port, tls=TlsOptions(ca_file=gateway.ca_file)
    )

    assert reply.status == 200
    assert reply.url == f"https://127.0.0.1:{gateway.port}/deployment/{lease_id}/manifest"
    (received,) = gateway.received
    assert received.method == "PUT"
    assert received.path == f"/deployment/{lease_id}/manifest"
    assert received.headers["Content-Type"] == "application/json"
    token = verify_auth_header(
        received.headers[AUTH_HEADER], now=int(time.time()), expected_signer=gateway.tenant
    )
    assert token.address == market.people.tenant.address
    # The body is the JSON array of groups itself, as Spheron's SDK sends it.
    assert json.loads(received.body) == _manifest()


@pytest.mark.parametrize("status", [201, 202, 204, 422])
async def test_any_answer_but_200_is_a_failure(
    market: Market, devnet: DevnetChain, gateway: Gateway, status: int
) -> None:
    lease_id = await _leased(market, devnet)
    tenant = Tenant(chain=devnet, account=market.people.tenant)
    gateway.tenant, gateway.status = tenant.account.address, status
    with pytest.raises(DevnetError, match=f"did not accept the manifest: HTTP {status} from"):
        await send_manifest(
            tenant, lease_id, _manifest(), port=gateway.port, tls=TlsOptions(gateway.ca_file)
        )
    assert len(gateway.received) == 1


async def test_refusals_say_why_and_some_are_stopped_before_sending(
    market: Market, devnet: DevnetChain, gateway: Gateway
) -> None:
    lease_id = await _leased(market, devnet)
    people = market.people
    tenant = Tenant(chain=devnet, account=people.tenant)
    gateway.tenant = tenant.account.address
    manifest = _manifest()

    # The provider's certificate is checked by default: a self-signed one needs its CA file.
    with pytest.raises(DevnetError, match=r"did not prove its identity.*--ca-file"):
        await send_manifest(tenant, lease_id, manifest, port=gateway.port)
    assert gateway.received == []
    # --insecure skips the check (devnet providers only).
    insecure = await send_manifest(
        tenant, lease_id, manifest, port=gateway.port, tls=TlsOptions(insecure=True)
    )
    assert insecure.status == 200

    # A token signed 60 s ago is refused by the provider, and the tool says why.
    with pytest.raises(DevnetError, match=r"HTTP 401 .*Expired"):
        await send_manifest(
            tenant,
            lease_id,
            manifest,
            port=gateway.port,
            tls=TlsOptions(gateway.ca_file),
            now=lambda: time.time() - 60,
        )

    # Someone else's wallet, or a manifest for other services, is stopped before sending.
    stranger = Tenant(chain=devnet, account=people.stranger)
    with pytest.raises(DevnetError, match=f"belongs to {people.tenant.address}"):
        await send_manifest(stranger, lease_id, manifest, port=gateway.port)
    other = _manifest()
    for service in other[0]["services"]:
        service["name"] = f"not-{service['name']}"
    with pytest.raises(DevnetError, match=r"not-vllm.*the provider would refuse it"):
        await send_manifest(tenant, lease_id, other, port=gateway.port)
    assert len(gateway.received) == 2

    # Nobody listens on that port: a clear error, not a traceback.
    with pytest.raises(DevnetError, match=r"cannot reach the provider at https://127\.0\.0\.1:1/"):
        await send_manifest(tenant, lease_id, manifest, port=1)


async def test_a_host_uri_with_a_port_cannot_be_reached_the_way_the_sdk_builds_urls(
    market: Market, devnet: DevnetChain
) -> None:
    lease_id = await _leased(market, devnet, host_uri="127.0.0.1:8443")
    tenant = Tenant(chain=devnet, account=market.people.tenant)
    with pytest.raises(DevnetError, match=r"'127\.0\.0\.1:8443' is not a bare host name"):
        await send_manifest(tenant, lease_id, _manifest())


async def test_send_manifest_from_the_cli(
    market: Market,
    devnet: DevnetChain,
    devnet_state: DevnetState,
    gateway: Gateway,
    tmp_path: Path,
) -> None:
    lease_id = await _leased(market, devnet)
    gateway.tenant = market.people.tenant.address
    state_file = tmp_path / "devnet.json"
    state_file.write_text(devnet_state.to_json())
    argv = [
        "devnet",
        "tenant",
        "send-manifest",
        str(lease_id),
        str(EXAMPLES / "manifest.yaml"),
        "--ca-file",
        str(gateway.ca_file),
        "--provider-port",
        str(gateway.port),
        "--state-file",
        str(state_file),
    ]
    # The CLI runs its own event loop: give it a thread, and this loop serves the gateway.
    sent = await asyncio.to_thread(CliRunner().invoke, main, argv)
    assert sent.exit_code == 0, sent.output
    url = f"https://127.0.0.1:{gateway.port}/deployment/{lease_id}/manifest"
    assert f"manifest accepted by {url} (HTTP 200)" in sent.output
    assert [(r.method, r.path) for r in gateway.received] == [
        ("PUT", f"/deployment/{lease_id}/manifest")
    ]

    gateway.status = 201
    refused = await asyncio.to_thread(CliRunner().invoke, main, argv)
    assert refused.exit_code == 1
    assert f"Error: the provider did not accept the manifest: HTTP 201 from {url}" in (
        refused.output
    )
    assert "Traceback" not in refused.output
