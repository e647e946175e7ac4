"""Lease start latency: manifest written → all Pods Running → GpuLease `Running`, next to a
bare script that makes the same API writes and waits for the same Pod states.

One kwokctl cluster with `--nodes` H100 nodes (8 GPUs each, kwok marks scheduled Pods Running)
and `gpu-provider run` as a subprocess (its chain points nowhere: the GpuLease controller reads
only the cluster). For each of `--leases` leases, one after the other, alternating with the
bare script so both see the same cluster:

- operator: the GpuLease is created as the chain daemon creates it (`AwaitingManifest`, the
  bid's placement), then `spec.manifest` is written as the gateway writes it; t0 is when that
  write returns. `pods` is when the lease's Pod is seen Running, `lease` when the GpuLease is
  seen `Running` (a watch each, timestamps taken on arrival in this process);
- bare: the same objects (`render_lease_objects` with the same inputs) server-side applied in
  the same order with the same wait for the quota to be counted, from t0 = the first write,
  until its Pod is seen Running by the same watch.

Each lease is then closed (operator: phase `Closing`; bare: the namespace deleted) so its GPU
comes back. Results: p50, p99 and max per column; the ratio is operator `lease` over bare.

Run: `.venv/bin/python -m bench.workload.start_latency --leases 200 --nodes 30`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import yaml
from e2e.harness.stack import LOCAL, KwokCluster, apply_objects, build_tools
from e2e.harness.topology import NodeSpec, build_node, load_topology
from kubernetes import client, config, watch
from tests.render.leasefixtures import readme_lease

from gpu_provider.api.crd import all_crds
from gpu_provider.api.v1alpha1 import GPU_LEASE_PLURAL, GROUP, VERSION
from gpu_provider.api.v1alpha1.gpulease import GpuLeaseSpec, Placement
from gpu_provider.api.v1alpha1.providernode import LeaseDefaults
from gpu_provider.kube.apply import apply_object, wait_quota_counted
from gpu_provider.render.labels import LEASE_ID_LABEL, lease_labels
from gpu_provider.render.network import ClusterNetwork
from gpu_provider.render.objects import render_lease_objects

RUN = (sys.executable, "-m", "gpu_provider", "run")
EXAMPLE = "manifests/examples/providernode-devnet.yaml"
NETWORK = ClusterNetwork(service_cidrs=("10.0.0.0/24",), pod_cidrs=("10.0.0.0/16",))


class Seen:
    """First time each lease's Pod was Running and its GpuLease `Running` (monotonic)."""

    def __init__(self) -> None:
        self.pods: dict[str, float] = {}
        self.leases: dict[str, float] = {}
        self.lock = threading.Lock()

    def watch_pods(self, api: client.ApiClient) -> None:
        _forever(self._watch_pods, api)

    def watch_leases(self, api: client.ApiClient, namespace: str) -> None:
        _forever(self._watch_leases, api, namespace)

    def _watch_pods(self, api: client.ApiClient) -> None:
        core = client.CoreV1Api(api)
        for event in watch.Watch().stream(
            core.list_pod_for_all_namespaces, label_selector=LEASE_ID_LABEL, timeout_seconds=300
        ):
            pod = event["object"]
            if pod.status and pod.status.phase == "Running":
                with self.lock:
                    self.pods.setdefault(pod.metadata.namespace, time.monotonic())

    def _watch_leases(self, api: client.ApiClient, namespace: str) -> None:
        custom = client.CustomObjectsApi(api)
        for event in watch.Watch().stream(
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            GPU_LEASE_PLURAL,
            timeout_seconds=300,
        ):
            body = event["object"]
            if (body.get("status") or {}).get("phase") == "Running":
                with self.lock:
                    self.leases.setdefault(body["metadata"]["name"], time.monotonic())

    def wait(self, table: dict[str, float], key: str, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if key in table:
                    return table[key]
            time.sleep(0.005)
        raise TimeoutError(f"{key} not seen within {timeout} s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _forever(stream: Any, *args: Any) -> None:
    """A watch again whenever one ends (the server closes them; a re-list resends what is)."""
    while True:
        try:
            stream(*args)
        except Exception:  # a dropped watch is simply watched again
            continue


def lease_spec(lease_id: int, provider_node: str) -> GpuLeaseSpec:
    """The README's one-GPU lease, ordered for an H100."""
    spec, _ = readme_lease(lease_id)
    service = spec.resources.services[0]
    gpu = service.gpu.model_copy(update={"models": ["h100"]})
    resources = spec.resources.model_copy(
        update={"services": [service.model_copy(update={"gpu": gpu})]}
    )
    return spec.model_copy(update={"resources": resources, "provider_node": provider_node})


def operator_lease(
    custom: client.CustomObjectsApi, seen: Seen, home: str, spec: GpuLeaseSpec, node: str
) -> tuple[float, float]:
    name = f"lease-{spec.lease_id}"
    wire = spec.to_wire()
    manifest = wire.pop("manifest")
    labels = lease_labels(int(spec.lease_id), spec.tenant, spec.provider_node, "lease")
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GpuLease",
        "metadata": {"name": name, "labels": labels},
        "spec": wire,
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, home, GPU_LEASE_PLURAL, body)
    status = {
        "phase": "AwaitingManifest",
        "placement": Placement(node=node, gpus=1, model="h100").to_wire(),
        "matchedAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, home, GPU_LEASE_PLURAL, name, {"status": status},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    time.sleep(0.2)  # the daemon's own writes settle, as before a tenant's upload
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, home, GPU_LEASE_PLURAL, name, {"spec": {"manifest": manifest}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    t0 = time.monotonic()
    pods = seen.wait(seen.pods, name) - t0
    lease = seen.wait(seen.leases, name) - t0
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, home, GPU_LEASE_PLURAL, name,
        {"status": {"phase": "Closing", "closeReason": "TenantClosed"}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    return pods, lease


def bare_lease(api: client.ApiClient, seen: Seen, spec: GpuLeaseSpec, node: str) -> float:
    objects = render_lease_objects(
        spec,
        Placement(node=node, gpus=1, model="h100"),
        LeaseDefaults.model_validate({"runtimeClassName": "nvidia"}),
        NETWORK,
    ).ordered()
    namespace = f"lease-{spec.lease_id}"

    async def writes() -> None:
        counted = False
        for obj in objects:
            if obj["kind"] in ("Deployment", "StatefulSet") and not counted:
                await wait_quota_counted(api, namespace, "lease")
                counted = True
            await apply_object(api, obj)

    t0 = time.monotonic()
    asyncio.run(writes())
    pods = seen.wait(seen.pods, namespace) - t0
    client.CoreV1Api(api).delete_namespace(namespace)
    return pods


def _summary(values: list[float]) -> str:
    ordered = sorted(values)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"{p50 * 1000:.0f} ms | {p99 * 1000:.0f} ms | {ordered[-1] * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leases", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=30)
    args = parser.parse_args()
    build_tools()
    name = f"bench-workload-{os.getpid()}"
    cluster = KwokCluster(name=name, kubeconfig=LOCAL / f"{name}.kubeconfig")
    cluster.create()
    operator: subprocess.Popen[bytes] | None = None
    try:
        topology = load_topology()
        h100 = next(n for n in topology.nodes if n.name == "gpu-h100-0")
        nodes = [
            build_node(
                NodeSpec.model_validate({**h100.model_dump(by_alias=True), "name": f"h100-{i}"}),
                topology.defaults,
            )
            for i in range(args.nodes)
        ]
        api = config.new_client_from_config(str(cluster.kubeconfig))
        provider: dict[str, Any] = yaml.safe_load(open(EXAMPLE).read())  # noqa: SIM115
        provider["spec"]["wallet"]["secretName"] = "no-such-wallet"
        provider["spec"]["leaseDefaults"] = {"runtimeClassName": "nvidia"}
        home = f"bench-{uuid.uuid4().hex[:6]}"
        runtime = {
            "apiVersion": "node.k8s.io/v1",
            "kind": "RuntimeClass",
            "metadata": {"name": "nvidia"},
            "handler": "nvidia",
        }
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": home}}
        apply_objects([*nodes, *all_crds(), runtime, namespace], kubeconfig=cluster.kubeconfig)
        time.sleep(3)  # the CRDs become established
        apply_objects([provider], kubeconfig=cluster.kubeconfig)
        settings = {
            "namespace": home,
            "chain": {"rpc_urls": ["http://127.0.0.1:9"]},
            "metrics_port": _free_port(),
            "operator": {
                "probe_port": _free_port(),
                "reconcile_interval_seconds": 60,
                "debounce_seconds": 0.3,
                "lease_name": "bench",
                "service_cidrs": list(NETWORK.service_cidrs),
                "pod_cidrs": list(NETWORK.pod_cidrs),
            },
        }
        workdir = LOCAL / name
        workdir.mkdir(exist_ok=True)
        (workdir / "operator.yaml").write_text(yaml.safe_dump(settings))
        env = {k: v for k, v in os.environ.items() if not k.startswith("GPU_PROVIDER_")}
        with (workdir / "operator.log").open("ab") as out:
            operator = subprocess.Popen(
                [*RUN, "--config", str(workdir / "operator.yaml"),
                 "--kubeconfig", str(cluster.kubeconfig)],
                stdout=out, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
        seen = Seen()
        threading.Thread(target=seen.watch_pods, args=(api,), daemon=True).start()
        threading.Thread(target=seen.watch_leases, args=(api, home), daemon=True).start()
        custom = client.CustomObjectsApi(api)
        time.sleep(8)  # the operator elects itself
        pods, leases, bare = [], [], []
        for i in range(args.leases + 5):
            node = f"h100-{i % args.nodes}"
            op_pods, op_lease = operator_lease(
                custom, seen, home, lease_spec(10_000 + i, provider["metadata"]["name"]), node
            )
            bare_pods = bare_lease(api, seen, lease_spec(20_000 + i, "bare"), node)
            if i >= 5:  # the first leases warm the watches and caches up
                pods.append(op_pods)
                leases.append(op_lease)
                bare.append(bare_pods)
        print(f"| operator: Pods Running | {_summary(pods)} |")
        print(f"| operator: GpuLease Running | {_summary(leases)} |")
        print(f"| bare script: Pods Running | {_summary(bare)} |")
        ratio_50 = statistics.median(leases) / statistics.median(bare)
        print(f"ratio (GpuLease Running / bare, p50): {ratio_50:.2f}x over {len(leases)} leases")
    finally:
        if operator is not None:
            operator.terminate()
            operator.wait(timeout=60)
        cluster.delete()
        cluster.kubeconfig.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
