"""A provider applies the devnet ProviderNode and the chain follows the cluster.

One operator process for the module. Every check reads the contracts (what a tenant's
marketplace client sees) and the ProviderNode status (what `kubectl get pn` shows).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from e2e.operator.conftest import (
    PN_GROUP,
    PN_PLURAL,
    PN_VERSION,
    RECONCILE_INTERVAL,
    Chain,
    OperatorLauncher,
    OperatorProcess,
    approved_gpus,
    condition,
    delete_provider_node,
    example_provider,
    provider_node,
    wait_for,
)
from gpu_provider.api.nodefacts import GPU_FACTS_ANNOTATION, GpuFacts, NodeGpuFacts
from gpu_provider.market.advertise import ProviderStatus

H100, A100, RTX4090 = 51, 50, 36
FULL_OFFER = {H100: 16, A100: 8, RTX4090: 2}
"""e2e/topology.yaml: two H100 nodes x 8, two A100 nodes x 4, one 4090 node x 2 offered;
the cordoned H100 node is not."""
NAME = "devnet-provider"
# A change must show on chain within one reconcile interval, plus the transactions' blocks
# and the verifier's delay on a busy 2-core machine.
WITHIN = RECONCILE_INTERVAL + 25


def offer_in_status(custom: client.CustomObjectsApi) -> dict[int, int]:
    inventory = (provider_node(custom, NAME).get("status") or {}).get("inventory") or {}
    return {m["resourceId"]: m["offered"] for m in inventory.get("models", []) if m["offered"]}


def chain_shows(chain: Chain, custom: client.CustomObjectsApi, offer: dict[int, int]) -> bool:
    return approved_gpus(chain) == offer and offer_in_status(custom) == offer


@pytest.fixture(scope="module")
def operator(operators: OperatorLauncher) -> OperatorProcess:
    return operators.start()


@pytest.fixture(scope="module")
def registered(
    operator: OperatorProcess, custom: client.CustomObjectsApi, chain: Chain
) -> Iterator[str]:
    custom.create_cluster_custom_object(PN_GROUP, PN_VERSION, PN_PLURAL, example_provider(NAME))
    try:
        wait_for(
            lambda: condition(custom, NAME, "Registered").get("status") == "True",
            "the provider registered",
            timeout=90,
        )
        yield NAME
    finally:
        delete_provider_node(custom, NAME)


def test_a_missing_wallet_secret_sends_nothing_and_names_the_secret(
    operator: OperatorProcess, custom: client.CustomObjectsApi, chain: Chain
) -> None:
    before = chain.nonce()
    body = example_provider(
        "no-wallet", wallet={"secretName": "no-such-wallet", "privateKeyKey": "private-key"}
    )
    custom.create_cluster_custom_object(PN_GROUP, PN_VERSION, PN_PLURAL, body)
    try:
        ready = wait_for(
            lambda: condition(custom, "no-wallet", "Ready") or None, "a Ready condition"
        )
        assert ready["status"] == "False"
        assert ready["reason"] == "WalletSecretMissing"
        assert "gpu-provider-system/no-such-wallet" in ready["message"]
        assert condition(custom, "no-wallet", "Registered")["reason"] == "WalletSecretMissing"
        # The inventory is still reported: only the chain side waits for the key.
        assert (provider_node(custom, "no-wallet")["status"]["inventory"]["offeredGpus"]) == 26
    finally:
        delete_provider_node(custom, "no-wallet")
    assert chain.nonce() == before
    assert not chain.read().registered


def test_applying_the_provider_node_registers_it_with_the_offer(
    registered: str, custom: client.CustomObjectsApi, chain: Chain
) -> None:
    wait_for(lambda: chain_shows(chain, custom, FULL_OFFER), "the full offer on chain", WITHIN)
    on_chain = chain.read()
    assert on_chain.status is ProviderStatus.ACTIVE
    assert on_chain.host_uri == "localhost"
    pn = wait_for(
        lambda: (p := provider_node(custom, NAME))["status"].get("providerId") and p,
        "the registry's provider id in status",
    )
    assert pn["status"]["providerId"] >= 1
    assert pn["status"]["address"] == chain.provider
    cpu = pn["status"]["inventory"]
    assert cpu["offeredGpus"] == sum(FULL_OFFER.values())
    wait_for(
        lambda: condition(custom, NAME, "Ready").get("status") == "True",
        "Ready once the verifier approved the offer",
        WITHIN,
    )


def test_cordoning_a_node_shrinks_the_offer_and_uncordoning_grows_it(
    registered: str, custom: client.CustomObjectsApi, core: client.CoreV1Api, chain: Chain
) -> None:
    wait_for(lambda: chain_shows(chain, custom, FULL_OFFER), "the full offer on chain", WITHIN)
    core.patch_node("gpu-a100-0", {"spec": {"unschedulable": True}})
    try:
        wait_for(
            lambda: chain_shows(chain, custom, {**FULL_OFFER, A100: 4}),
            "4 A100s on chain after the cordon",
            WITHIN,
        )
    finally:
        core.patch_node("gpu-a100-0", {"spec": {"unschedulable": None}})
    wait_for(lambda: chain_shows(chain, custom, FULL_OFFER), "8 A100s again", WITHIN)


def _facts(unhealthy: set[int]) -> str:
    gpus = tuple(
        GpuFacts(
            index=i,
            uuid=f"GPU-e2e-h100-0-{i}",
            name="NVIDIA H100 80GB HBM3",
            pci_device_id="2330",
            memory_mib=81559,
            healthy=i not in unhealthy,
            problems=("xid 79",) if i in unhealthy else (),
        )
        for i in range(8)
    )
    return NodeGpuFacts(driver_version="570.124.06", cuda_version="12.8", gpus=gpus).to_annotation()


def test_a_gpu_the_agent_marks_unhealthy_is_withdrawn_until_it_recovers(
    registered: str, custom: client.CustomObjectsApi, core: client.CoreV1Api, chain: Chain
) -> None:
    wait_for(lambda: chain_shows(chain, custom, FULL_OFFER), "the full offer on chain", WITHIN)
    annotate = {"metadata": {"annotations": {GPU_FACTS_ANNOTATION: _facts({3})}}}
    core.patch_node("gpu-h100-0", annotate)
    try:
        wait_for(
            lambda: chain_shows(chain, custom, {**FULL_OFFER, H100: 15}),
            "15 H100s on chain with one unhealthy",
            WITHIN,
        )
    finally:
        healthy = {"metadata": {"annotations": {GPU_FACTS_ANNOTATION: _facts(set())}}}
        core.patch_node("gpu-h100-0", healthy)
    wait_for(lambda: chain_shows(chain, custom, FULL_OFFER), "16 H100s again", WITHIN)
    core.patch_node("gpu-h100-0", {"metadata": {"annotations": {GPU_FACTS_ANNOTATION: None}}})


def test_a_gpu_pod_takes_its_gpus_off_the_offer(
    registered: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    chain: Chain,
    namespace: str,
) -> None:
    wait_for(lambda: chain_shows(chain, custom, FULL_OFFER), "the full offer on chain", WITHIN)
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="training"),
        spec=client.V1PodSpec(
            node_name="gpu-4090-0",
            containers=[
                client.V1Container(
                    name="main",
                    image="example.invalid/train:1",
                    resources=client.V1ResourceRequirements(limits={"nvidia.com/gpu": "2"}),
                )
            ],
        ),
    )
    core.create_namespaced_pod(namespace, pod)
    without_4090 = {H100: 16, A100: 8}
    wait_for(
        lambda: chain_shows(chain, custom, without_4090),
        "no RTX 4090 offered while the pod holds both",
        WITHIN,
    )
    core.delete_namespaced_pod("training", namespace, grace_period_seconds=0)
    wait_for(lambda: chain_shows(chain, custom, FULL_OFFER), "the 4090s offered again", WITHIN)


def test_maintenance_round_trips(
    registered: str, custom: client.CustomObjectsApi, chain: Chain
) -> None:
    def maintenance(enabled: bool) -> None:
        custom.patch_cluster_custom_object(
            PN_GROUP, PN_VERSION, PN_PLURAL, NAME, {"spec": {"maintenance": {"enabled": enabled}}}
        )

    maintenance(True)
    wait_for(
        lambda: chain.read().status is ProviderStatus.MAINTENANCE,
        "Maintenance on chain",
        WITHIN,
    )
    wait_for(
        lambda: condition(custom, NAME, "Maintenance").get("reason") == "MaintenanceOnChain",
        "the Maintenance condition",
    )
    maintenance(False)
    wait_for(lambda: chain.read().status is ProviderStatus.ACTIVE, "Active on chain", WITHIN)
    wait_for(
        lambda: condition(custom, NAME, "Maintenance").get("status") == "False",
        "Maintenance condition False",
    )


def test_events_tell_the_story(
    registered: str, core: client.CoreV1Api, operator: OperatorProcess
) -> None:
    def reasons() -> set[str]:
        events = core.list_namespaced_event(
            "default", field_selector=f"involvedObject.name={NAME}"
        ).items
        return {e.reason for e in events}

    wanted = {"Registered", "OfferChanged", "GpuUnhealthy", "MaintenanceOn", "MaintenanceOff"}
    wait_for(lambda: wanted <= reasons(), f"Events {sorted(wanted)}")
    assert operator.metric("gpu_provider_leader") == 1
    assert operator.metric("gpu_provider_gpus", provider=NAME, model="h100", state="offered") == 16
