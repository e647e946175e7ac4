"""The same comparison as `recompute.py`, with Nodes and Pods listed from a real kwok cluster.

Starts its own kwokctl cluster (binary runtime, the locally built Kubernetes), registers N kwok
GPU Nodes x 8 GPUs shaped as `dataset.py` makes them (GFD labels, the agent's facts, every 50th
cordoned, every 20th with an unhealthy GPU) and 0 to 2 GPU Pods per Node (1 on average) bound with
`nodeName`, waits until kwok reports them Ready/Running, then times, alternately: the bare script
(GET /api/v1/nodes and /api/v1/pods, decode, sum) and the inventory (the same two GETs, decode,
`build_inventory`, `to_status`). The cluster is deleted at the end, also on failure.

Run: `.venv/bin/python -m bench.inventory.kwok_list --nodes 100 1000`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.inventory.dataset import node, pods_for
from bench.inventory.recompute import _spec, floor_sum, recompute
from e2e.harness.stack import LOCAL, KwokCluster, apply_objects, build_tools
from kubernetes import client, config

from gpu_provider.inventory import build_inventory

CHUNK = 250


def _strip(obj: dict[str, Any]) -> dict[str, Any]:
    """What a client sends: no server-set metadata, no status for Pods."""
    meta = {
        k: v
        for k, v in obj["metadata"].items()
        if k
        not in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "ownerReferences")
    }
    out = {
        "apiVersion": "v1",
        "kind": obj.get("kind", "Pod"),
        "metadata": meta,
        "spec": obj["spec"],
    }
    if out["kind"] == "Node":
        out["status"] = {k: obj["status"][k] for k in ("capacity", "allocatable")}
    return out


def _wait(what: str, check: Callable[[], int], want: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        seen = check()
        if seen >= want:
            return
        time.sleep(1)
    raise TimeoutError(f"only {seen} of {want} {what} after {timeout:.0f} s")


def _populate(cluster: KwokCluster, core: client.CoreV1Api, count: int) -> int:
    nodes = [_strip({**node(i), "kind": "Node"}) for i in range(count)]
    for start in range(0, count, CHUNK):
        apply_objects(nodes[start : start + CHUNK], kubeconfig=cluster.kubeconfig)
    _wait(
        "Nodes Ready",
        lambda: sum(
            any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
            for n in core.list_node().items
        ),
        count,
        timeout=300,
    )
    core.create_namespace({"metadata": {"name": "lease-1"}})
    pods = [
        _strip({**p, "kind": "Pod"})
        for i in range(count)
        for p in pods_for(i)
        if p["metadata"]["namespace"] == "lease-1" and p["status"]["phase"] == "Running"
    ]
    for start in range(0, len(pods), CHUNK):
        apply_objects(pods[start : start + CHUNK], kubeconfig=cluster.kubeconfig)
    _wait(
        "Pods Running",
        lambda: sum(p.status.phase == "Running" for p in core.list_pod_for_all_namespaces().items),
        len(pods),
        timeout=600,
    )
    return len(pods)


def measure(core: client.CoreV1Api, rounds: int) -> dict[str, float]:
    spec = _spec()

    def listed() -> tuple[list[Any], list[Any]]:
        nodes = core.list_node(_preload_content=False).data
        pods = core.list_pod_for_all_namespaces(_preload_content=False).data
        return json.loads(nodes)["items"], json.loads(pods)["items"]

    nodes, pods = listed()
    report = build_inventory(nodes, pods, spec)
    cordoned = {f"gpu-h100-{i:04d}" for i in range(49, len(nodes), 50)}
    # The Nodes as the apiserver returns them are recognised: no unknown card, only the
    # cordoned ones excluded, every healthy free H100 offered.
    assert report.unknown == (), report.unknown
    assert {e.name for e in report.excluded} == cordoned, report.excluded
    assert set(report.offer_units()) == {51}
    floor_times, inventory_times, list_times = [], [], []
    for _ in range(rounds):
        start = time.perf_counter()
        nodes, pods = listed()
        list_times.append(time.perf_counter() - start)
        floor_sum(nodes, pods)
        floor_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        nodes, pods = listed()
        recompute(nodes, pods, spec)
        inventory_times.append(time.perf_counter() - start)
    return {
        "list": statistics.median(list_times),
        "floor": statistics.median(floor_times),
        "inventory": statistics.median(inventory_times),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    build_tools()
    print(
        "| nodes x 8 GPUs | GPU pods | list + decode | floor: list + sum "
        "| inventory: list + recompute | ratio |"
    )
    print("|---|---|---|---|---|---|")
    for count in args.nodes:
        name = f"bench-inventory-{os.getpid()}"
        cluster = KwokCluster(name=name, kubeconfig=LOCAL / f"{name}.kubeconfig")
        try:
            cluster.create()
            core = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig)))
            pods = _populate(cluster, core, count)
            r = measure(core, args.rounds)
            print(
                f"| {count:,} | {pods:,} | {r['list'] * 1e3:.0f} ms | {r['floor'] * 1e3:.0f} ms "
                f"| {r['inventory'] * 1e3:.0f} ms | {r['inventory'] / r['floor']:.2f}x |",
                flush=True,
            )
        finally:
            cluster.delete()
            cluster.kubeconfig.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
