"""Inventory recompute time, peak RSS and status size, next to a bare list-and-sum script.

Both sides start from the same NodeList and PodList response bodies (synthetic kwok GPU Nodes
x 8 GPUs, `dataset.py`) and decode them with `json.loads`, as a list call must. The floor then
sums allocatable `nvidia.com/gpu` on the selected Nodes minus the GPU limits of their
non-finished Pods. The inventory runs `build_inventory` and `to_status()`. "Cold" clears the
inventory's memo caches (parsed quantities and agent facts) first, as after a restart; "warm"
is every later recompute. Peak RSS is measured in a fresh child process per side.

Run: `.venv/bin/python -m bench.inventory.recompute` (from the repository root).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SELECT_LABEL = "gpuprovider.dev/offer"


def floor(node_body: bytes, pod_body: bytes) -> int:
    """The bare script: decode both lists, sum free GPUs on the selected Nodes."""
    return floor_sum(json.loads(node_body)["items"], json.loads(pod_body)["items"])


def _spec() -> Any:
    from gpu_provider.api.v1alpha1.providernode import ProviderNodeSpec

    return ProviderNodeSpec.model_validate(
        {
            "wallet": {"secretName": "provider-wallet", "privateKeyKey": "key"},
            "region": "us-west",
            "hostUri": "gpu.example.com",
            "acceptedTokens": [
                {"symbol": "USDT", "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3"}
            ],
            "pricing": {"token": "USDT", "gpu": [{"model": "h100", "usdPerHour": "2"}]},
            "nodeSelector": {"matchLabels": {SELECT_LABEL: "true"}},
        }
    )


def floor_sum(nodes: list[dict[str, Any]], pods: list[dict[str, Any]]) -> int:
    """The floor's arithmetic alone, on lists already decoded."""
    free = {
        n["metadata"]["name"]: int(n["status"]["allocatable"].get("nvidia.com/gpu", 0))
        for n in nodes
        if n["metadata"].get("labels", {}).get(SELECT_LABEL) == "true"
    }
    for p in pods:
        where = p["spec"].get("nodeName")
        if where not in free or p["status"].get("phase") in ("Succeeded", "Failed"):
            continue
        for c in p["spec"]["containers"]:
            free[where] -= int(c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0))
    return sum(max(0, v) for v in free.values())


def recompute(nodes: list[dict[str, Any]], pods: list[dict[str, Any]], spec: Any) -> int:
    """What the operator does on every recompute from its watch indexes."""
    from gpu_provider.inventory import build_inventory

    report = build_inventory(nodes, pods, spec)
    report.to_status()
    return report.offered_gpus


def inventory(node_body: bytes, pod_body: bytes) -> int:
    nodes = json.loads(node_body)["items"]
    pods = json.loads(pod_body)["items"]
    return recompute(nodes, pods, _spec())


def _clear_caches() -> None:
    from gpu_provider.inventory.gpus import _by_facts, _by_product, _facts
    from gpu_provider.inventory.objects import _scaled

    for memo in (_facts, _scaled, _by_facts, _by_product):
        memo.cache_clear()


def _time(fn: Callable[[], object], rounds: int) -> float:
    """Median wall time of `rounds` calls."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _high_water_kib() -> int:
    """VmHWM: this process's peak RSS. Not ru_maxrss, which a child inherits from its parent
    across fork and exec, so it would report the benchmark driver's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def _child(side: str, node_file: str, pod_file: str) -> None:
    node_body, pod_body = Path(node_file).read_bytes(), Path(pod_file).read_bytes()
    if side == "inventory":
        import gpu_provider.inventory  # noqa: F401 - imports count in the operator's RSS too
    before = _high_water_kib()
    result = (inventory if side == "inventory" else floor)(node_body, pod_body)
    peak = _high_water_kib()
    print(json.dumps({"result": result, "before_kib": before, "peak_kib": peak}))


def _rss(side: str, node_body: bytes, pod_body: bytes) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as tmp:
        nf, pf = Path(tmp, "nodes.json"), Path(tmp, "pods.json")
        nf.write_bytes(node_body)
        pf.write_bytes(pod_body)
        out = subprocess.run(
            [sys.executable, "-m", "bench.inventory.recompute", "--child", side, str(nf), str(pf)],
            check=True,
            capture_output=True,
            text=True,
        )
    data: dict[str, int] = json.loads(out.stdout)
    return data


def _paired(a: Callable[[], object], b: Callable[[], object], rounds: int) -> tuple[float, float]:
    """Median times of `a` and `b`, run alternately so that load on a shared machine hits both."""
    times_a, times_b = [], []
    for _ in range(rounds):
        times_a.append(_time(a, 1))
        times_b.append(_time(b, 1))
    return statistics.median(times_a), statistics.median(times_b)


def measure(count: int, rounds: int) -> dict[str, Any]:
    from bench.inventory.dataset import list_bodies

    from gpu_provider.inventory import build_inventory

    node_body, pod_body = list_bodies(count)
    decode = _time(lambda: (json.loads(node_body), json.loads(pod_body)), rounds)
    _clear_caches()
    cold_floor, cold = _paired(
        lambda: floor(node_body, pod_body), lambda: inventory(node_body, pod_body), 1
    )
    floor_s, warm = _paired(
        lambda: floor(node_body, pod_body), lambda: inventory(node_body, pod_body), rounds
    )
    nodes, pods = json.loads(node_body)["items"], json.loads(pod_body)["items"]
    spec = _spec()
    sum_only, build_only = _paired(
        lambda: floor_sum(nodes, pods), lambda: recompute(nodes, pods, spec), rounds
    )
    report = build_inventory(nodes, pods, spec)
    status_bytes = len(json.dumps(report.to_status().to_wire(), separators=(",", ":")))
    assert floor(node_body, pod_body) >= report.offered_gpus  # the floor ignores health/cordon
    return {
        "nodes": count,
        "pods": len(pods),
        "list_mb": (len(node_body) + len(pod_body)) / 1e6,
        "decode": decode,
        "floor": floor_s,
        "cold_floor": cold_floor,
        "cold": cold,
        "warm": warm,
        "sum_only": sum_only,
        "build_only": build_only,
        "offered": report.offered_gpus,
        "floor_free": floor(node_body, pod_body),
        "status_bytes": status_bytes,
        "rows": len(report.to_status().nodes),
        "rss_floor": _rss("floor", node_body, pod_body),
        "rss_inventory": _rss("inventory", node_body, pod_body),
    }


def worst_status_bytes(count: int) -> int:
    """Status size when every Node deviates (an unhealthy GPU on each)."""
    from bench.inventory.dataset import list_bodies

    from gpu_provider.inventory import build_inventory

    node_body, pod_body = list_bodies(count, unhealthy_every=1)
    nodes, pods = json.loads(node_body)["items"], json.loads(pod_body)["items"]
    status = build_inventory(nodes, pods, _spec()).to_status()
    return len(json.dumps(status.to_wire(), separators=(",", ":")))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--child", nargs=3, metavar=("SIDE", "NODES", "PODS"))
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    print(f"Python {platform.python_version()}, {platform.machine()}, rounds={args.rounds}")
    print()
    print(
        "| nodes x 8 GPUs | pods | list bodies | decode (both) | floor: decode + sum "
        "| inventory: decode + recompute, warm | ratio | cold | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    results = [measure(n, args.rounds) for n in args.nodes]
    for r in results:
        print(
            f"| {r['nodes']:,} | {r['pods']:,} | {r['list_mb']:.1f} MB "
            f"| {r['decode'] * 1e3:.0f} ms "
            f"| {r['floor'] * 1e3:.0f} ms | {r['warm'] * 1e3:.0f} ms "
            f"| {r['warm'] / r['floor']:.2f}x | {r['cold'] * 1e3:.0f} ms "
            f"| {r['cold'] / r['cold_floor']:.2f}x |"
        )
    print()
    print("| nodes | floor: sum only | inventory: recompute only (build + status) | ratio |")
    print("|---|---|---|---|")
    for r in results:
        print(
            f"| {r['nodes']:,} | {r['sum_only'] * 1e3:.1f} ms | {r['build_only'] * 1e3:.0f} ms "
            f"| {r['build_only'] / r['sum_only']:.1f}x |"
        )
    print()
    print("| nodes | floor peak RSS | inventory peak RSS | inventory RSS before the lists |")
    print("|---|---|---|---|")
    for r in results:
        f, i = r["rss_floor"], r["rss_inventory"]
        print(
            f"| {r['nodes']:,} | {f['peak_kib'] / 1024:.0f} MiB | {i['peak_kib'] / 1024:.0f} MiB "
            f"| {i['before_kib'] / 1024:.0f} MiB |"
        )
    print()
    print("| nodes | offered (inventory) | free by the floor | status.inventory | node rows |")
    print("|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['nodes']:,} | {r['offered']:,} | {r['floor_free']:,} "
            f"| {r['status_bytes'] / 1024:.1f} KiB | {r['rows']} |"
        )
    worst = worst_status_bytes(max(args.nodes))
    print()
    at = f"{max(args.nodes):,}"
    print(f"status.inventory at {at} Nodes, every Node deviating: {worst / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
