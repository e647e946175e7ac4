"""Operator RSS and reconcile time with N kwok GPU Nodes x 8 GPUs, next to a bare script.

Per N: a kwokctl cluster (binary runtime) with N Nodes and about N GPU Pods shaped as
`bench/inventory/dataset.py` makes them, an anvil devnet with the marketplace, the wallet
Secret and one ProviderNode selecting every GPU Node. Then `gpu-provider run` (a subprocess,
reconcile interval 5 s) is started and, once the provider is registered and `rounds`
reconciles are done, we read:

- its RSS (`VmRSS`) and peak (`VmHWM`) from /proc;
- the reconcile time (inventory + prerequisites + chain reads + status) and the inventory
  time alone, as the mean of the operator's own histograms (`/metrics`) over the reconciles
  after the first `rounds` (which register the provider and wait for its blocks);
- the size of the ProviderNode's status as stored.

The floor is a bare Python script that lists Nodes and Pods with the `kubernetes` client,
decodes them and sums free GPUs per Node: its peak RSS is the memory any Python process
needs to hold the same objects once.

Run: `.venv/bin/python -m bench.operator.rss --nodes 100 1000`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from bench.inventory.kwok_list import _populate
from e2e.harness.operator_setup import operator_settings, wallet_objects
from e2e.harness.stack import LOCAL, KwokCluster, apply_objects, build_tools
from kubernetes import client, config

from gpu_provider.api.crd import all_crds
from gpu_provider.devnet.anvil import Anvil
from gpu_provider.devnet.up import deploy_to

RUN = (sys.executable, "-m", "gpu_provider", "run")
EXAMPLE = Path(__file__).parents[2] / "manifests/examples/providernode-devnet.yaml"
FLOOR = """
import json, resource, sys
from kubernetes import client, config
core = client.CoreV1Api(config.new_client_from_config(sys.argv[1]))
nodes = json.loads(core.list_node(_preload_content=False).data)["items"]
pods = json.loads(core.list_pod_for_all_namespaces(_preload_content=False).data)["items"]
free = {n["metadata"]["name"]: int(n["status"]["allocatable"].get("nvidia.com/gpu", 0))
        for n in nodes}
for p in pods:
    for c in p["spec"]["containers"]:
        want = int((c.get("resources", {}).get("limits") or {}).get("nvidia.com/gpu", 0))
        if p["spec"].get("nodeName") in free:
            free[p["spec"]["nodeName"]] -= want
print(sum(free.values()), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _proc_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _metrics(port: int) -> dict[str, float]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        key, value = line.rsplit(" ", 1)
        out[key.split("{")[0]] = out.get(key.split("{")[0], 0.0) + float(value)
    return out


def _mean_ms(before: dict[str, float], after: dict[str, float], histogram: str) -> float:
    """Mean of the observations between two scrapes of a histogram, in ms."""
    total = after[f"{histogram}_sum"] - before[f"{histogram}_sum"]
    count = after[f"{histogram}_count"] - before[f"{histogram}_count"]
    return 1e3 * total / count


def _wait(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_one(count: int, rounds: int, workdir: Path) -> dict[str, Any]:
    name = f"bench-operator-{os.getpid()}"
    cluster = KwokCluster(name=name, kubeconfig=LOCAL / f"{name}.kubeconfig")
    anvil = Anvil(block_time=1.0, log_file=workdir / "anvil.log")
    operator: subprocess.Popen[bytes] | None = None
    try:
        cluster.create()
        api = config.new_client_from_config(str(cluster.kubeconfig))
        core = client.CoreV1Api(api)
        pods = _populate(cluster, core, count)
        apply_objects(all_crds(), kubeconfig=cluster.kubeconfig)
        anvil.start()
        state = deploy_to(anvil.url, block_time=1.0)
        apply_objects(wallet_objects(state), kubeconfig=cluster.kubeconfig)
        settings = operator_settings(state, reconcile_interval_seconds=5, debounce_seconds=1)
        settings["metrics_port"] = metrics_port = _free_port()
        settings["operator"]["probe_port"] = _free_port()
        config_file = workdir / "operator.yaml"
        config_file.write_text(yaml.safe_dump(settings))
        body: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
        body["spec"]["nodeSelector"] = {}
        custom = client.CustomObjectsApi(api)
        _wait(
            "the CRDs served",
            lambda: bool(
                custom.list_cluster_custom_object("gpuprovider.dev", "v1alpha1", "providernodes")
            ),
            60,
        )
        custom.create_cluster_custom_object("gpuprovider.dev", "v1alpha1", "providernodes", body)
        with (workdir / f"operator-{count}.log").open("wb") as out:
            operator = subprocess.Popen(
                [*RUN, "--config", str(config_file), "--kubeconfig", str(cluster.kubeconfig)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started = time.monotonic()

        def reconciles() -> float:
            try:
                return _metrics(metrics_port).get("gpu_provider_reconcile_seconds_count", 0.0)
            except OSError:
                return 0.0

        _wait("the first reconcile", lambda: reconciles() >= 1, 600)
        first = time.monotonic() - started
        # The first reconciles register the provider and wait for blocks; measure after them.
        _wait(f"{rounds} reconciles", lambda: reconciles() >= rounds, 600)
        settled = _metrics(metrics_port)
        _wait(f"{rounds} more reconciles", lambda: reconciles() >= 2 * rounds, 600)
        metrics = _metrics(metrics_port)
        stored = custom.get_cluster_custom_object(
            "gpuprovider.dev", "v1alpha1", "providernodes", body["metadata"]["name"]
        )
        floor = subprocess.run(
            [sys.executable, "-c", FLOOR, str(cluster.kubeconfig)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        return {
            "nodes": count,
            "pods": pods,
            "rss_mib": _proc_kib(operator.pid, "VmRSS") / 1024,
            "peak_mib": _proc_kib(operator.pid, "VmHWM") / 1024,
            "floor_peak_mib": int(floor[1]) / 1024,
            "first_reconcile_s": first,
            "reconcile_ms": _mean_ms(settled, metrics, "gpu_provider_reconcile_seconds"),
            "inventory_ms": _mean_ms(settled, metrics, "gpu_provider_inventory_seconds"),
            "status_kib": len(json.dumps(stored.get("status") or {})) / 1024,
            "offered": (stored.get("status") or {}).get("inventory", {}).get("offeredGpus"),
        }
    finally:
        if operator is not None and operator.poll() is None:
            operator.send_signal(signal.SIGTERM)
            operator.wait(timeout=120)
        anvil.stop()
        cluster.delete()
        cluster.kubeconfig.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    build_tools()
    workdir = LOCAL / f"bench-operator-{uuid.uuid4().hex[:6]}"
    workdir.mkdir(parents=True)
    print(
        "| nodes x 8 GPUs | GPU pods | operator RSS | operator peak RSS | floor peak RSS "
        "| ratio (peak) | first reconcile done | reconcile, settled (mean) | inventory (mean) "
        "| status |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for count in args.nodes:
        r = run_one(count, args.rounds, workdir)
        print(
            f"| {r['nodes']:,} | {r['pods']:,} | {r['rss_mib']:.0f} MiB | {r['peak_mib']:.0f} MiB "
            f"| {r['floor_peak_mib']:.0f} MiB | {r['peak_mib'] / r['floor_peak_mib']:.2f}x "
            f"| {r['first_reconcile_s']:.1f} s | {r['reconcile_ms']:.0f} ms "
            f"| {r['inventory_ms']:.0f} ms | {r['status_kib']:.1f} KiB |",
            flush=True,
        )


if __name__ == "__main__":
    main()
