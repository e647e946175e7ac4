"""`make demo`: bring up the local stack and run what the operator can do so far, out loud."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from decimal import Decimal
from typing import Any

import yaml

from e2e.harness.demo_operator import running_operator, show_provider, wait_advertised
from e2e.harness.stack import KUBECONFIG, apply_objects, kubectl
from gpu_provider.chain.contracts import load_abi
from gpu_provider.chain.events import Checkpoint, EventSource, EventStream
from gpu_provider.devnet.accounts import Role
from gpu_provider.devnet.orderfile import TenantOrder, parse_order_yaml
from gpu_provider.devnet.session import DevnetChain, open_devnet
from gpu_provider.devnet.state import DevnetState
from gpu_provider.devnet.tenant import PlacedOrder, Tenant
from gpu_provider.market import decode, default_catalog
from gpu_provider.market.pricing import PriceTable, quote_order

NAMESPACE = "gpu-provider-system"


def say(title: str, body: str = "") -> None:
    print(f"\n=== {title}", flush=True)
    if body:
        print(body.rstrip(), flush=True)


def _gpu_nodes_table() -> str:
    nodes = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
    catalog = default_catalog()
    rows = [("NODE", "GPUS", "PRODUCT", "VRAM MiB", "CATALOG", "DRIVER", "SCHEDULABLE")]
    for node in nodes:
        labels = node["metadata"]["labels"]
        gpus = node["status"]["allocatable"].get("nvidia.com/gpu", "0")
        driver = ".".join(
            labels.get(f"nvidia.com/cuda.driver.{part}", "") for part in ("major", "minor", "rev")
        ).strip(".")
        product = labels.get("nvidia.com/gpu.product")
        memory = labels.get("nvidia.com/gpu.memory")
        model = (
            catalog.by_gfd_product(product, int(memory) if memory else None) if product else None
        )
        rows.append(
            (
                node["metadata"]["name"],
                gpus,
                product or "-",
                memory or "-",
                f"{model.short_name} (id {model.resource_id})" if model else "-",
                driver or "-",
                "no (cordoned)" if node["spec"].get("unschedulable") else "yes",
            )
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows
    )


def _example_provider() -> dict[str, Any]:
    with open("manifests/examples/providernode-devnet.yaml") as handle:
        provider: dict[str, Any] = yaml.safe_load(handle)
    return provider


def _price_table(provider: dict[str, Any]) -> PriceTable:
    pricing = provider["spec"]["pricing"]
    return PriceTable(
        gpu_usd_per_hour={g["model"]: Decimal(g["usdPerHour"]) for g in pricing["gpu"]},
        cpu_core_usd_per_hour=Decimal(pricing["cpuCoreUsdPerHour"]),
        memory_gib_usd_per_hour=Decimal(pricing["memoryGiBUsdPerHour"]),
        storage_gib_usd_per_hour=Decimal(pricing.get("storageGiBUsdPerHour", "0")),
    )


def _cluster_models() -> set[str]:
    catalog = default_catalog()
    models = set()
    for node in json.loads(kubectl("get", "nodes", "-o", "json"))["items"]:
        labels = node["metadata"]["labels"]
        product = labels.get("nvidia.com/gpu.product")
        memory = labels.get("nvidia.com/gpu.memory")
        model = catalog.by_gfd_product(product, int(memory)) if product and memory else None
        if model and not node["spec"].get("unschedulable"):
            models.add(model.short_name)
    return models


def run_demo(block_time: float) -> int:
    from e2e.harness.__main__ import stack_up

    started = time.monotonic()
    say("1. Local stack: kube-apiserver + scheduler + controller-manager (kwok nodes), anvil")
    state = stack_up(block_time)
    say(
        "2. The cluster's GPUs as the device plugin and GPU Feature Discovery report them",
        _gpu_nodes_table(),
    )

    say(
        "3. The provider's wallet is in a Secret (`make stack` put the devnet provider's key "
        "there; it is never printed)"
    )
    print(kubectl("get", "secret", "-n", NAMESPACE, "provider-wallet"))

    say(
        "4. The operator (`gpu-provider run`, as `make operator` runs it) and the ProviderNode "
        "(manifests/examples/providernode-devnet.yaml)"
    )
    provider = _example_provider()
    with running_operator() as operator:
        apply_objects([provider])
        if not wait_advertised(state, provider["metadata"]["name"], operator):
            return 1
        show_provider(state, provider["metadata"]["name"])
    say("5. A malformed ProviderNode is refused by the apiserver, naming the field")
    bad = copy.deepcopy(provider)
    bad["metadata"]["name"] = "broken"
    bad["spec"]["pricing"]["gpu"][0]["usdPerHour"] = "-1"
    try:
        apply_objects([bad])
    except RuntimeError as exc:
        print(str(exc).split("failed: ", 1)[-1])
    else:
        print("UNEXPECTED: the malformed ProviderNode was accepted")
        return 1

    with open("manifests/examples/order.yaml") as handle:
        order = parse_order_yaml(handle.read(), "manifests/examples/order.yaml")
    tenant, placed, spec = asyncio.run(_marketplace(state, order))
    _price(state, provider, tenant, spec, placed.terms)

    say(
        f"Done in {time.monotonic() - started:.0f} s. The stack keeps running:",
        f"  export KUBECONFIG={KUBECONFIG}\n"
        "  .local/bin/kubectl get pn,gl\n"
        "  .venv/bin/gpu-provider devnet tenant lease <id>    # the devnet CLI (docs/devnet.md)\n"
        "  make demo-down        # stop the cluster and anvil",
    )
    return 0


async def _marketplace(state: DevnetState, order: TenantOrder) -> tuple[Tenant, PlacedOrder, Any]:
    async with await open_devnet(state) as chain:
        contracts = "\n".join(
            f"  {name:<26} {address}" for name, address in state.contracts.items()
        )
        say(
            f"6. The marketplace on anvil {state.rpc_url} (chain id {state.chain_id}, "
            f"head block {await chain.head()})",
            contracts,
        )

        say("7. A tenant deposits and places an order (manifests/examples/order.yaml)")
        tenant = Tenant(chain=chain, account=state.signer(Role.TENANT))
        balances = await tenant.deposit(Decimal(10))
        placed = await tenant.create_order(order)
        locked = (await tenant.balances()).locked
        print(
            f"order {placed.order_id} in block {placed.block}: {placed.terms.num_blocks} blocks "
            f"at most {tenant.amount(placed.terms.max_price_per_block)} per block; escrow "
            f"locked {tenant.amount(locked)} of {tenant.amount(balances.unlocked)}"
        )
        print(f"on-chain spec: {placed.spec}")

        say("8. The provider decodes the order from the chain and prices it with its ProviderNode")
        created = await _order_created(chain, placed.block, placed.order_id)
        return tenant, placed, decode(str(created["specs"]))


async def _order_created(chain: DevnetChain, block: int, order_id: int) -> dict[str, Any]:
    """The order's OrderCreated event, read with the operator's event stream."""
    source = EventSource(
        chain.state.address("OrderRequest"), load_abi("OrderRequest"), ["OrderCreated"]
    )
    stream = EventStream(chain.w3, [source], Checkpoint.start_at(block), confirmations=0)
    try:
        async for delivery in stream:
            event = delivery.event
            if event is not None and int(event.args["orderId"]) == order_id:
                return event.args
    finally:
        await stream.aclose()
    raise AssertionError("the event stream ended")  # pragma: no cover - it never ends


def _price(
    state: DevnetState, provider: dict[str, Any], tenant: Tenant, spec: Any, terms: Any
) -> None:
    offered = _cluster_models()
    for need in spec.gpu_needs():
        wanted = ", ".join(m.model for m in need.models) or "any"
        print(
            f"service {need.service}: {need.total} GPU(s) of [{wanted}], "
            f"VRAM {need.vram.text() if need.vram else 'any'}"
        )
    usable = sorted(m for m in offered if spec.accepts_model(m))
    print(f"cluster GPU models the order accepts: {', '.join(usable) or 'none'}")
    region = spec.placement.region or "any"
    print(f"order region: {region}; this provider: {provider['spec']['region']}")
    if usable:
        quote = quote_order(spec, _price_table(provider), state.token_terms(), gpu_models=usable[0])
        print(
            f"at this provider's prices on {usable[0]}: {quote.usd_per_hour} USD/hour = "
            f"{tenant.amount(quote.price_per_block)} per block "
            f"(tenant's max {tenant.amount(terms.max_price_per_block)})"
        )
    print("(bidding on it is the operator's job: it lands with the ProviderNode controller)")
