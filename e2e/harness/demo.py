"""`make demo`: the provider's whole job on the local stack, from nothing, out loud.

Stack → GPUs → the operator, gateway and matchmaker → the provider registered with its offer →
a tenant's orders → bids and matches → SDK manifests → Pods on the reserved nodes → the
leases and the shrunk offer → a tenant close and an expiry → the offer back → earnings
withdrawn. Each step prints its timing; the stack stays up until `make demo-down`.
"""

from __future__ import annotations

import asyncio
import copy
import json
import traceback
from typing import Any, Final

import yaml

from e2e.harness import demo_processes
from e2e.harness.demo_earnings import read_money, reward_wallet, show_earnings
from e2e.harness.demo_market import Market
from e2e.harness.demo_operator import (
    show_provider,
    start_provider,
    wait_advertised,
    wait_gateway,
)
from e2e.harness.demo_steps import DemoFailed, Steps, log_tail, say, table
from e2e.harness.stack import DEVNET_JSON, KUBECONFIG, apply_objects, kubectl
from gpu_provider.devnet.accounts import Role
from gpu_provider.devnet.session import open_devnet
from gpu_provider.devnet.state import DevnetState
from gpu_provider.market import default_catalog

NAMESPACE: Final = "gpu-provider-system"
EXAMPLE: Final = "manifests/examples/providernode-devnet.yaml"
VERIFIER_DELAY: Final = 2.0
"""The devnet verifier approves a new offer this long after it is submitted."""
WITHDRAW_THRESHOLD: Final = "0.000001"
INGRESS_DOMAIN: Final = "leases.localhost"


def _gpu_nodes_table() -> str:
    nodes = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
    catalog = default_catalog()
    rows: list[tuple[Any, ...]] = [
        ("NODE", "GPUS", "PRODUCT", "VRAM MiB", "CATALOG", "DRIVER", "SCHEDULABLE")
    ]
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
    return table(rows, indent="")


def demo_provider() -> dict[str, Any]:
    """The example ProviderNode with the demo's two changes (printed when applied)."""
    with open(EXAMPLE) as handle:
        provider: dict[str, Any] = yaml.safe_load(handle)
    for token in provider["spec"]["acceptedTokens"]:
        token["withdrawThreshold"] = WITHDRAW_THRESHOLD
    provider["spec"]["leaseDefaults"] = {"ingressDomain": INGRESS_DOMAIN}
    return provider


def run_demo(block_time: float) -> int:
    from e2e.harness.__main__ import stack_up

    steps = Steps()
    steps.step(
        "Local stack: kube-apiserver + scheduler + controller-manager (kwok nodes), anvil, "
        "the devnet verifier"
    )
    state = stack_up(block_time, verifier_delay=VERIFIER_DELAY)
    steps.step(
        "The cluster's GPUs as the device plugin and GPU Feature Discovery report them",
        _gpu_nodes_table(),
    )
    steps.step(
        "The provider's wallet is in a Secret (`make stack` put the devnet provider's key "
        "there; it is never printed)",
        kubectl("get", "secret", "-n", NAMESPACE, "provider-wallet"),
    )
    try:
        gateway_port = asyncio.run(_provider_and_market(steps, state))
    except DemoFailed:
        say("\nThe stack is left up for a look (`make demo-down` stops it).")
        return 1
    except Exception:
        # Anything else (a refused transaction, kubectl failing) gets the same explanation.
        say(f"\nDEMO FAILED in step {steps.number}:\n{traceback.format_exc()}{log_tail()}")
        say("\nThe stack is left up for a look (`make demo-down` stops it).")
        return 1
    total = steps.done()
    say("\n" + kubectl("get", "pn,gl", "-A"))
    say(
        f"\n=== Done in {total:.0f} s. The stack keeps running (operator, gateway, matchmaker, "
        "verifier, anvil, the kwok cluster):\n"
        f"  export KUBECONFIG={KUBECONFIG}\n"
        "  .local/bin/kubectl get pn,gl -A                    # the provider and its leases\n"
        "  .venv/bin/gpu-provider devnet tenant lease <id>    # a lease on chain (docs/devnet.md)\n"
        f"  curl -sk https://127.0.0.1:{gateway_port}/status             # the gateway's offer\n"
        "  tail -f .local/operator.log\n"
        "  make demo-down                                     # stop all of it"
    )
    return 0


async def _provider_and_market(steps: Steps, state: DevnetState) -> int:
    """Steps 4 onwards; the gateway's port."""
    async with await open_devnet(state) as chain:
        contracts = "\n".join(
            f"  {name:<26} {address}" for name, address in state.contracts.items()
        )
        steps.step(
            f"The marketplace on anvil {state.rpc_url} (chain id {state.chain_id}, "
            f"a block every {state.block_time:g} s, head block {await chain.head()}); "
            "the devnet matchmaker starts",
            contracts,
        )
        matchmaker = demo_processes.start(
            "matchmaker", "devnet", "matchmaker", "--state-file", str(DEVNET_JSON)
        )
        say(f"gpu-provider devnet matchmaker (pid {matchmaker.pid}, log .local/matchmaker.log)")

        provider_body = demo_provider()
        name = provider_body["metadata"]["name"]
        steps.step(
            "The operator (`gpu-provider run`) and the gateway start; the ProviderNode "
            f"({EXAMPLE}) is applied and the operator registers the provider",
            f"(the demo sets acceptedTokens[].withdrawThreshold to {WITHDRAW_THRESHOLD} USDT "
            "so earnings are withdrawn at once,\n and leaseDefaults.ingressDomain to "
            f"{INGRESS_DOMAIN} so HTTP ports get a URI)",
        )
        provider = start_provider(state, name)
        apply_objects([provider_body])
        await wait_advertised(name, provider)
        await wait_gateway(provider)
        offer = await show_provider(state, name)

        steps.step("A malformed ProviderNode is refused by the apiserver, naming the field")
        _refuse_malformed(provider_body)

        address = state.account_address(Role.PROVIDER)
        wallet = await reward_wallet(state)
        before = await read_money(chain, state, address, wallet)
        market = Market(
            steps,
            state,
            chain,
            provider,
            offer,
            watched=(*provider.processes, matchmaker),
        )
        await market.run()
        await show_earnings(
            steps, chain, state, name, before, address, wallet, watched=market.watched
        )
        return provider.gateway_port


def _refuse_malformed(provider: dict[str, Any]) -> None:
    bad = copy.deepcopy(provider)
    bad["metadata"]["name"] = "broken"
    bad["spec"]["pricing"]["gpu"][0]["usdPerHour"] = "-1"
    try:
        apply_objects([bad])
    except RuntimeError as exc:
        say(str(exc).split("failed: ", 1)[-1])
    else:
        say("DEMO FAILED: the malformed ProviderNode was accepted")
        raise DemoFailed("a malformed ProviderNode refused")
