"""The local stack is real: CRDs, validation, scheduling, namespaces, GC and the chain."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.samples import InvalidSample, invalid_samples, load_example

from gpu_provider.api.v1alpha1 import GROUP, VERSION
from gpu_provider.devnet.anvil import Anvil, rpc_call

PLURALS = {"ProviderNode": "providernodes", "GpuLease": "gpuleases"}


def _create(api_client: client.ApiClient, obj: dict[str, Any], namespace: str) -> None:
    custom = client.CustomObjectsApi(api_client)
    plural = PLURALS[obj["kind"]]
    # Strict field validation is what `kubectl apply` does by default: unknown fields fail.
    if obj["kind"] == "ProviderNode":
        custom.create_cluster_custom_object(
            GROUP, VERSION, plural, obj, dry_run="All", field_validation="Strict"
        )
    else:
        obj["metadata"]["namespace"] = namespace
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, obj, dry_run="All", field_validation="Strict"
        )


def _wait(predicate: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


def test_crds_are_served_with_short_names(api_client: client.ApiClient, crds: list[str]) -> None:
    resources = client.CustomObjectsApi(api_client).get_api_resources(GROUP, VERSION).resources
    short = {r.name: r.short_names for r in resources if "/" not in r.name}
    assert short == {"providernodes": ["pn"], "gpuleases": ["gl"]}
    categories = {r.name: r.categories for r in resources if "/" not in r.name}
    assert categories["gpuleases"] == ["gpuprovider"]


@pytest.mark.parametrize("name", ["providernode.yaml", "gpulease.yaml"])
def test_examples_are_accepted(
    api_client: client.ApiClient, crds: list[str], namespace: str, name: str
) -> None:
    _create(api_client, load_example(name), namespace)


@pytest.mark.parametrize("sample", invalid_samples(), ids=lambda s: s.id)
def test_apiserver_rejects_invalid_sample(
    api_client: client.ApiClient, crds: list[str], namespace: str, sample: InvalidSample
) -> None:
    with pytest.raises(ApiException) as caught:
        _create(api_client, sample.build(), namespace)
    assert caught.value.status in (400, 422)
    message = json.loads(caught.value.body)["message"]
    assert sample.field in message, message
    assert sample.apiserver in message, message


def _gpu_pod(name: str, gpus: int, node: str | None = None) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            node_selector={"kubernetes.io/hostname": node} if node else None,
            containers=[
                client.V1Container(
                    name="main",
                    image="busybox",
                    resources=client.V1ResourceRequirements(limits={"nvidia.com/gpu": str(gpus)}),
                )
            ],
        ),
    )


def _free_gpus(core: client.CoreV1Api, node: str) -> int:
    allocatable = int(core.read_node(node).status.allocatable.get("nvidia.com/gpu", "0"))
    pods = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
    used = sum(
        int((c.resources.limits or {}).get("nvidia.com/gpu", "0"))
        for p in pods
        if p.status.phase not in ("Succeeded", "Failed")
        for c in p.spec.containers
    )
    return allocatable - used


def _unschedulable_message(core: client.CoreV1Api, namespace: str, name: str) -> str:
    pod = core.read_namespaced_pod(name, namespace)
    for condition in pod.status.conditions or []:
        if condition.type == "PodScheduled" and condition.reason == "Unschedulable":
            return str(condition.message)
    return ""


def test_four_gpu_pod_lands_on_node_with_room_and_runs(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _gpu_pod("train", 4))
    pod = _wait(
        lambda: (p := core.read_namespaced_pod("train", namespace)).status.phase == "Running" and p,
        what="pod Running",
    )
    node = pod.spec.node_name
    allocatable = int(core.read_node(node).status.allocatable["nvidia.com/gpu"])
    assert allocatable >= 4
    assert node != "gpu-h100-cordoned"
    assert _free_gpus(core, node) >= 0


def test_sixteen_gpu_pod_stays_pending_with_scheduler_reason(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _gpu_pod("too-big", 16))
    message = _wait(
        lambda: _unschedulable_message(core, namespace, "too-big"), what="scheduler verdict"
    )
    assert "Insufficient nvidia.com/gpu" in message
    pod = core.read_namespaced_pod("too-big", namespace)
    assert pod.status.phase == "Pending"
    assert pod.spec.node_name is None


def test_cordoned_node_receives_nothing(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_pod(namespace, _gpu_pod("pinned", 1, node="gpu-h100-cordoned"))
    message = _wait(
        lambda: _unschedulable_message(core, namespace, "pinned"), what="scheduler verdict"
    )
    assert "unschedulable" in message
    on_cordoned = core.list_pod_for_all_namespaces(
        field_selector="spec.nodeName=gpu-h100-cordoned"
    ).items
    assert on_cordoned == []


def test_cpu_only_pod_never_gets_a_gpu_node_it_cannot_use(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _gpu_pod("on-cpu-node", 1, node="cpu-0"))
    message = _wait(
        lambda: _unschedulable_message(core, namespace, "on-cpu-node"), what="scheduler verdict"
    )
    assert "Insufficient nvidia.com/gpu" in message


def test_deleting_a_namespace_removes_it_and_its_pods(core: client.CoreV1Api) -> None:
    name = "t-delete-me"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    _wait(lambda: core.list_namespaced_service_account(name).items, what="default SA")
    core.create_namespaced_pod(name, _gpu_pod("doomed", 1))
    core.delete_namespace(name)

    def gone() -> bool:
        try:
            core.read_namespace(name)
        except ApiException as exc:
            return exc.status == 404
        return False

    _wait(gone, timeout=60, what="namespace deletion")
    assert core.list_pod_for_all_namespaces(field_selector="metadata.name=doomed").items == []


def test_owner_references_are_garbage_collected(core: client.CoreV1Api, namespace: str) -> None:
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    ref = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="child", owner_references=[ref])),
    )
    core.delete_namespaced_config_map("owner", namespace)

    def child_gone() -> bool:
        names = [c.metadata.name for c in core.list_namespaced_config_map(namespace).items]
        return "child" not in names

    _wait(child_gone, timeout=60, what="garbage collection")


def test_anvil_answers_and_mines_a_transaction(anvil: Anvil) -> None:
    assert rpc_call(anvil.url, "eth_chainId") == hex(31337)
    accounts = rpc_call(anvil.url, "eth_accounts")
    assert isinstance(accounts, list)
    tx_hash = rpc_call(
        anvil.url,
        "eth_sendTransaction",
        [{"from": accounts[0], "to": accounts[1], "value": hex(10**18)}],
    )
    receipt = _wait(
        lambda: rpc_call(anvil.url, "eth_getTransactionReceipt", [tx_hash]),
        what="receipt",
    )
    assert isinstance(receipt, dict)
    assert receipt["status"] == "0x1"
    balance = int(str(rpc_call(anvil.url, "eth_getBalance", [accounts[1], "latest"])), 16)
    assert balance == 10_001 * 10**18
