"""What `make demo` reads from the cluster about leases: GpuLeases, their Pods and namespaces.

Everything comes from `kubectl ... -o json`, the data behind `kubectl get gl -A`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from e2e.harness.demo_steps import table
from e2e.harness.stack import kubectl


def gpuleases() -> dict[int, dict[str, Any]]:
    """Every GpuLease in the cluster, by lease id."""
    try:
        found = json.loads(kubectl("get", "gpuleases", "-A", "-o", "json"))
    except RuntimeError:
        return {}
    return {int(item["spec"]["leaseId"]): item for item in found.get("items") or []}


def status_of(lease_id: int) -> dict[str, Any]:
    return dict((gpuleases().get(lease_id) or {}).get("status") or {})


def namespace_exists(name: str) -> bool:
    try:
        kubectl("get", "namespace", name, "-o", "name")
    except RuntimeError:
        return False
    return True


def _uris(status: Mapping[str, Any]) -> str:
    shown = []
    for service in status.get("services") or []:
        shown += [f"http://{uri}" for uri in service.get("uris") or []]
        shown += [
            f"{p.get('host') or '?'}:{p['externalPort']}->{p['port']}/{p.get('proto', 'TCP')}"
            for p in service.get("forwardedPorts") or []
        ]
    return ", ".join(shown) or "-"


def lease_rows(leases: Mapping[int, Mapping[str, Any]], ids: Iterable[int]) -> str:
    rows: list[tuple[Any, ...]] = [("LEASE", "PHASE", "NODE", "GPUS", "MODEL", "URIS", "REASON")]
    for lease_id in ids:
        lease = leases.get(lease_id)
        if lease is None:
            rows.append((lease_id, "(no GpuLease)", "-", "-", "-", "-", "-"))
            continue
        status = lease.get("status") or {}
        placement = status.get("placement") or {}
        rows.append(
            (
                lease_id,
                status.get("phase", "-"),
                placement.get("node", "-"),
                placement.get("gpus", lease["spec"]["resources"].get("totalGpus", "-")),
                placement.get("model", "-"),
                _uris(status),
                status.get("closeReason") or "-",
            )
        )
    return table(rows)


def open_gpus(leases: Mapping[int, Mapping[str, Any]]) -> Counter[str]:
    """GPUs held by leases not Closed, by model: what the offer leaves out."""
    held: Counter[str] = Counter()
    for lease in leases.values():
        status = lease.get("status") or {}
        placement = status.get("placement") or {}
        if status.get("phase") != "Closed" and placement.get("model"):
            held[placement["model"]] += int(placement.get("gpus") or 0)
    return held


def lease_pods(lease_ids: Iterable[int]) -> list[dict[str, Any]]:
    wanted = {f"lease-{i}" for i in lease_ids}
    found = json.loads(kubectl("get", "pods", "-A", "-o", "json"))
    return [p for p in found.get("items") or [] if p["metadata"]["namespace"] in wanted]


def pods_table(pods: list[dict[str, Any]], leases: Mapping[int, Mapping[str, Any]]) -> str:
    rows: list[tuple[Any, ...]] = [
        ("NAMESPACE", "POD", "PHASE", "NODE", "nvidia.com/gpu", "RUNTIME", "RESERVED NODE")
    ]
    for pod in sorted(pods, key=lambda p: p["metadata"]["namespace"]):
        namespace = pod["metadata"]["namespace"]
        lease = leases.get(int(namespace.removeprefix("lease-"))) or {}
        reserved = ((lease.get("status") or {}).get("placement") or {}).get("node")
        node = pod["spec"].get("nodeName", "-")
        limits = [
            (c.get("resources") or {}).get("limits", {}).get("nvidia.com/gpu", "0")
            for c in pod["spec"]["containers"]
        ]
        rows.append(
            (
                namespace,
                pod["metadata"]["name"],
                pod["status"].get("phase", "-"),
                node,
                "+".join(limits),
                pod["spec"].get("runtimeClassName") or "-",
                "same" if reserved == node else f"DIFFERENT: {reserved}",
            )
        )
    return table(rows)


def pods_running(lease_ids: Iterable[int]) -> list[dict[str, Any]] | None:
    """The leases' Pods once each lease has one and all are Running."""
    ids = list(lease_ids)
    pods = lease_pods(ids)
    namespaces = {p["metadata"]["namespace"] for p in pods}
    if len(namespaces) < len(ids) or any(p["status"].get("phase") != "Running" for p in pods):
        return None
    return pods
