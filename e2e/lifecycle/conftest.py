"""The whole lease lifecycle through the real `gpu-provider run`: the devnet tenant orders, the
operator's chain daemon bids, the devnet matchmaker matches, the daemon takes the lease in as
a GpuLease on the kwok cluster, closes it, and withdraws the earnings.

The chain (anvil mining a block a second, the marketplace, the verifier approving) and the
operator launcher come from e2e/operator/conftest.py; the tenant and the matchmaker are the
devnet's own tools, run in the test's event loop.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client

from e2e.harness.operator_process import OperatorProcess, start_operator
from e2e.harness.operator_setup import OPERATOR_NAMESPACE, operator_settings
from e2e.harness.stack import KwokCluster, apply_objects
from e2e.operator.conftest import (  # noqa: F401 - fixtures shared with the operator tests
    PN_GROUP,
    PN_PLURAL,
    PN_VERSION,
    Chain,
    _logs_dir,
    chain,
    custom,
    delete_provider_node,
    example_provider,
    operator_namespace,
    provider_node,
)
from gpu_provider.chain.contracts import Contracts
from gpu_provider.chain.registry import read_provider
from gpu_provider.devnet.accounts import Role
from gpu_provider.devnet.matchmaker import Matchmaker
from gpu_provider.devnet.orderfile import TenantOrder
from gpu_provider.devnet.session import DevnetChain, open_devnet
from gpu_provider.devnet.tenant import PlacedOrder, Tenant
from gpu_provider.market.advertise import ProviderStatus
from gpu_provider.market.spec import GpuModelRef, GpuRequest, OrderSpec, Placement, Service

T = TypeVar("T")
GIB = 2**30
ANY_TIER = (1, 2, 3, 4, 5, 6, 7)
REGION = "us-west"
GL_PLURAL = "gpuleases"
MANIFEST_DEADLINE = 40


async def until(check: Callable[[], T | None], what: str, within: float = 60.0) -> T:
    """Poll `check` (without blocking the loop) until it returns something truthy."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"within {within:.0f} s: {what}")
        await asyncio.sleep(0.2)


def gpu_order(
    units: int,
    model: str,
    *,
    max_usd: str = "4",
    seconds: int = 3600,
    placement: Placement | None = None,
) -> TenantOrder:
    service = Service(
        name="py",
        resource_id=1,
        replicas=1,
        cpu_millicores=4000,
        memory_bytes=16 * GIB,
        gpu=GpuRequest(units=units, models=(GpuModelRef(vendor="nvidia", model=model),)),
    )
    spec = OrderSpec(
        name="ml", placement=placement or Placement(region=REGION), services=(service,)
    )
    return TenantOrder(
        spec=spec, duration_seconds=seconds, max_usd_per_hour=Decimal(max_usd), tiers=ANY_TIER
    )


@dataclass
class Operators:
    """`gpu-provider run` processes with one Lease name, started with a settings file."""

    kubeconfig: Path
    chain: Chain
    workdir: Path
    lease_name: str
    started: list[OperatorProcess] = field(default_factory=list)
    providers: list[str] = field(default_factory=list)
    """ProviderNodes applied for this module (deleted after it)."""

    def apply(self, body: dict[str, Any]) -> None:
        self.providers.append(body["metadata"]["name"])
        apply_objects([body], kubeconfig=self.kubeconfig)

    def start(self, **chain_settings: Any) -> OperatorProcess:
        """`chain_settings`: what to change (`rpc_urls`, `confirmations`). Returns once its
        liveness probe answers (a standby answers too: it need not lead yet)."""
        settings = operator_settings(
            self.chain.state,
            reconcile_interval_seconds=3,
            debounce_seconds=0.3,
            lease_name=self.lease_name,
            lease_duration_seconds=4,
            lease_renew_seconds=1,
            stop_timeout_seconds=10,
            lease_check_interval_seconds=1,
            earnings_interval_seconds=2,
        )
        settings["chain"].update(chain_settings)
        settings["log_level"] = "DEBUG"
        operator = start_operator(
            settings,
            kubeconfig=self.kubeconfig,
            workdir=self.workdir,
            name=f"operator-{len(self.started)}",
        )
        self.started.append(operator)
        return operator

    def stop_all(self) -> None:
        for operator in self.started:
            if operator.process.poll() is None:
                operator.stop()


def forget_provider(api: client.ApiClient, name: str) -> None:
    """Delete a ProviderNode with its GpuLeases and bid journal: the next module's chain is a
    new deployment, which a journal or checkpoint of this one must not meet."""
    objects = client.CustomObjectsApi(api)
    delete_provider_node(objects, name)
    selector = f"gpuprovider.dev/provider-node={name}"
    found = objects.list_namespaced_custom_object(
        PN_GROUP, PN_VERSION, OPERATOR_NAMESPACE, GL_PLURAL, label_selector=selector
    )
    for item in found.get("items") or []:
        lease = item["metadata"]["name"]
        try:  # the garbage collector may take it first (the ProviderNode owns it)
            objects.patch_namespaced_custom_object(
                PN_GROUP,
                PN_VERSION,
                OPERATOR_NAMESPACE,
                GL_PLURAL,
                lease,
                {"metadata": {"finalizers": None}},
            )
            objects.delete_namespaced_custom_object(
                PN_GROUP, PN_VERSION, OPERATOR_NAMESPACE, GL_PLURAL, lease
            )
        except client.ApiException as error:
            if error.status != 404:
                raise
    core = client.CoreV1Api(api)
    try:
        core.delete_namespaced_config_map(f"gpu-provider-bids-{name}", OPERATOR_NAMESPACE)
    except client.ApiException as error:
        if error.status != 404:
            raise


@pytest.fixture(scope="module")
def operators(
    kwok_cluster: KwokCluster,
    operator_namespace: str,  # noqa: F811
    chain: Chain,  # noqa: F811
    api_client: client.ApiClient,
) -> Iterator[Operators]:
    launcher = Operators(
        kwok_cluster.kubeconfig, chain, _logs_dir(), f"gpu-provider-life-{uuid.uuid4().hex[:6]}"
    )
    try:
        yield launcher
    finally:
        launcher.stop_all()
        for name in launcher.providers:
            forget_provider(api_client, name)


def metric(operator: OperatorProcess, name: str, **labels: str) -> float:
    """A sample of the operator's /metrics; 0 while it does not serve them yet."""
    try:
        return operator.metric(name, **labels)
    except OSError:
        return 0.0


def lifecycle_provider(name: str = "devnet-provider", **spec: Any) -> dict[str, Any]:
    body = example_provider(name, **spec)
    body["spec"]["region"] = REGION
    body["spec"]["leaseDefaults"] = {"manifestDeadlineSeconds": MANIFEST_DEADLINE}
    for token in body["spec"]["acceptedTokens"]:
        token["withdrawThreshold"] = "0.000000000000000001"
    return body


@dataclass
class Market:
    devnet: DevnetChain
    tenant: Tenant
    matchmaker: Matchmaker


@pytest.fixture(scope="module")
async def market(
    chain: Chain,  # noqa: F811
    request: pytest.FixtureRequest,
) -> AsyncIterator[Market]:
    """The devnet tenant (with a deposit) and the devnet matchmaker, matching as it runs
    (unless the test module sets `MATCH_BY_HAND = True`: then it matches on `poll_once`)."""
    devnet = await open_devnet(chain.state)
    tenant = Tenant(chain=devnet, account=chain.state.signer(Role.TENANT))
    await tenant.deposit(Decimal(5000))
    matchmaker = Matchmaker(
        chain=devnet,
        account=chain.state.signer(Role.MATCHMAKER),
        from_block=await devnet.head(),
        poll_interval=0.2,
    )
    by_hand = getattr(request.module, "MATCH_BY_HAND", False)
    task = asyncio.create_task(asyncio.sleep(0) if by_hand else matchmaker.run())
    try:
        yield Market(devnet, tenant, matchmaker)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await devnet.close()


def call(market: Market, contract: str, function: str, *args: Any) -> Any:
    """`contract.function(*args)` of the devnet's marketplace, to `.call()` or send."""
    return getattr(market.devnet.contract(contract).functions, function)(*args)


async def start_serving(
    operators: Operators,
    chain: Chain,  # noqa: F811
    market: Market,
    custom: client.CustomObjectsApi,  # noqa: F811
    body: dict[str, Any],
) -> OperatorProcess:
    """Start an operator and apply the ProviderNode `body`; return once the provider is
    registered and approved on chain (ACTIVE) and its chain daemon follows the chain
    (`status.chain` is set)."""
    running = operators.start()
    operators.apply(body)
    name = body["metadata"]["name"]
    contracts = Contracts(market.devnet.w3, chain.state.chain_settings().contracts)
    deadline = time.monotonic() + 120
    while (await read_provider(contracts, chain.provider)).status is not ProviderStatus.ACTIVE:
        assert time.monotonic() < deadline, "the provider registered and approved"
        await asyncio.sleep(0.5)
    await until(
        lambda: (provider_node(custom, name).get("status") or {}).get("chain"),
        "the chain daemon following the chain (status.chain)",
    )
    return running


async def assert_caught_up(
    api: client.ApiClient,
    market: Market,
    chain: Chain,  # noqa: F811
    provider: str,
    matched: PlacedOrder,
    closed: PlacedOrder,
    when: str,
) -> None:
    """After the chain was out of reach (`when`, e.g. "during the outage"): the lease of the
    order `matched` meanwhile is taken in, the tenant's close of `closed` is recorded, and the
    GpuLeases are exactly the provider's leases on chain (no event missed, no phantom)."""
    await until(
        lambda: gpuleases(api, provider).get(matched.order_id),
        f"the lease matched {when} taken in",
        within=90,
    )
    reason = await until(
        lambda: gpuleases(api, provider)[closed.order_id]["status"].get("closeReason"),
        f"the tenant's close {when} recorded",
    )
    assert reason == "TenantClosed"
    lease = market.devnet.contract("ComputeLease")
    _active, every = await lease.functions.getProviderLeases(chain.provider).call()
    assert set(gpuleases(api, provider)) == {int(i) for i in every}


def gpuleases(
    api: client.ApiClient, provider: str = "devnet-provider"
) -> dict[int, dict[str, Any]]:
    """The GpuLeases of a ProviderNode in the operator namespace, by lease id."""
    found = client.CustomObjectsApi(api).list_namespaced_custom_object(
        PN_GROUP,
        PN_VERSION,
        OPERATOR_NAMESPACE,
        GL_PLURAL,
        label_selector=f"gpuprovider.dev/provider-node={provider}",
    )
    return {int(item["spec"]["leaseId"]): item for item in found.get("items") or []}


__all__ = [
    "PN_PLURAL",
    "Market",
    "Operators",
    "assert_caught_up",
    "call",
    "delete_provider_node",
    "forget_provider",
    "gpu_order",
    "gpuleases",
    "lifecycle_provider",
    "metric",
    "provider_node",
    "start_serving",
    "until",
]
