"""`make demo`: bring up the local stack and run what the operator can do so far, out loud."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import yaml

from e2e.harness.stack import KUBECONFIG, apply_objects, kubectl
from gpu_provider.devnet.anvil import rpc_call
from gpu_provider.market import default_catalog

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


def _example_provider(devnet: dict[str, Any]) -> dict[str, Any]:
    with open("manifests/examples/providernode.yaml") as handle:
        provider: dict[str, Any] = yaml.safe_load(handle)
    provider = copy.deepcopy(provider)
    token = devnet.get("contracts", {}).get("testToken")
    if token:
        provider["spec"]["acceptedTokens"][0]["address"] = token
    provider["spec"]["hostUri"] = "127.0.0.1:8443"
    provider["spec"].pop("certificateSecretRef", None)
    return provider


def run_demo(block_time: float) -> int:
    from e2e.harness.__main__ import stack_up

    started = time.monotonic()
    say("1. Local stack: kube-apiserver + scheduler + controller-manager (kwok nodes), anvil")
    devnet = stack_up(block_time)
    say(
        "2. The cluster's GPUs as the device plugin and GPU Feature Discovery report them",
        _gpu_nodes_table(),
    )

    say("3. The provider's wallet goes into a Secret (the key is never printed)")
    kubectl("create", "namespace", NAMESPACE)
    # anvil's account #1 (well-known test key, holds nothing outside this devnet).
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    wallet = Account.from_mnemonic(str(devnet["mnemonic"]), account_path="m/44'/60'/0'/0/1")
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "provider-wallet", "namespace": NAMESPACE},
        "type": "Opaque",
        "stringData": {"private-key": wallet.key.hex()},
    }
    apply_objects([secret])
    print(f"secret/{NAMESPACE}/provider-wallet for address {wallet.address}")

    say("4. Declare the ProviderNode (manifests/examples/providernode.yaml)")
    provider = _example_provider(devnet)
    provider["spec"]["wallet"] = {"secretName": "provider-wallet", "privateKeyKey": "private-key"}
    apply_objects([provider])
    print(kubectl("get", "providernodes", "-o", "wide"))

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

    head = int(str(rpc_call(str(devnet["rpcUrl"]), "eth_blockNumber")), 16)
    say(
        "6. Chain",
        f"anvil {devnet['rpcUrl']} chain id {devnet['chainId']}, head block {head}\n"
        f"devnet description: .local/devnet.json",
    )
    say(
        f"Done in {time.monotonic() - started:.0f} s. The stack keeps running:",
        f"  export KUBECONFIG={KUBECONFIG}\n"
        "  .local/bin/kubectl get pn,gl\n"
        "  make demo-down        # stop the cluster and anvil",
    )
    return 0
