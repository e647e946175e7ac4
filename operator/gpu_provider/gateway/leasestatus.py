"""The lease status JSON Spheron's SDK reads, and its event lines: pure builders.

`lease_status` answers `GET /lease/{id}/1/1/status` in the Akash-derived shape:

    {"services": {<name>: {name, available, total, uris, observed_generation, replicas,
                           updated_replicas, ready_replicas, available_replicas}},
     "forwarded_ports": {<name>: [{host, port, externalPort, proto, name}]}}

from the GpuLease (its manifest says which services and how many replicas; its status holds
the URIs and forwarded ports the controller recorded) and the objects in the lease namespace
(Deployments / StatefulSets for the replica counts, NodePort / LoadBalancer Services for the
ports). A workload object belongs to service S when its label `gpuprovider.dev/service` is S,
or, without that label, when its name is S. A service not deployed yet is listed with zeros.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from gpu_provider.api.v1alpha1.gpulease import GpuLeaseSpec, GpuLeaseStatus
from gpu_provider.render.labels import SERVICE_LABEL  # set by the workload renderer

__all__ = ["SERVICE_LABEL", "event_line", "lease_status", "object_service", "service_status"]

JsonObject = dict[str, Any]
_PUBLISHED: Final = frozenset({"NodePort", "LoadBalancer"})


def object_service(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    return str((metadata.get("labels") or {}).get(SERVICE_LABEL) or metadata.get("name", ""))


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def service_status(
    name: str, desired: int, workload: Mapping[str, Any] | None, uris: list[str]
) -> JsonObject:
    """One service's entry; `workload` is its Deployment or StatefulSet (None: not yet)."""
    status = (workload or {}).get("status") or {}
    spec = (workload or {}).get("spec") or {}
    total = _int(spec.get("replicas")) if workload is not None and "replicas" in spec else desired
    available = _int(status.get("availableReplicas"))
    return {
        "name": name,
        "available": available,
        "total": total,
        "uris": uris,
        "observed_generation": _int(status.get("observedGeneration")),
        "replicas": _int(status.get("replicas")),
        "updated_replicas": _int(status.get("updatedReplicas")),
        "ready_replicas": _int(status.get("readyReplicas")),
        "available_replicas": available,
    }


def _published_ports(
    service: str, host: str, objects: Iterable[Mapping[str, Any]]
) -> list[JsonObject]:
    ports = []
    for obj in objects:
        spec = obj.get("spec") or {}
        if spec.get("type") not in _PUBLISHED:
            continue
        for port in spec.get("ports") or []:
            if not port.get("nodePort"):
                continue
            target = port.get("targetPort")
            ports.append(
                {
                    "host": host,
                    "port": target if isinstance(target, int) else _int(port.get("port")),
                    "externalPort": _int(port.get("nodePort")),
                    "proto": str(port.get("protocol") or "TCP"),
                    "name": service,
                }
            )
    return ports


def lease_status(
    spec: GpuLeaseSpec,
    status: GpuLeaseStatus,
    *,
    host: str,
    workloads: Iterable[Mapping[str, Any]] = (),
    services: Iterable[Mapping[str, Any]] = (),
) -> JsonObject:
    """The whole status document. `workloads`: Deployments and StatefulSets of the lease
    namespace; `services`: its Kubernetes Services; `host`: the provider's public host."""
    by_service: dict[str, Mapping[str, Any]] = {}
    for workload in workloads:
        by_service.setdefault(object_service(workload), workload)
    published: dict[str, list[Mapping[str, Any]]] = {}
    for obj in services:
        published.setdefault(object_service(obj), []).append(obj)
    recorded = {service.name: service for service in status.services}
    desired = {s.name: s.replicas for s in (spec.manifest.services if spec.manifest else [])}
    names = list(desired) or [name for name in recorded]
    document: JsonObject = {"services": {}, "forwarded_ports": {}}
    for name in names:
        record = recorded.get(name)
        uris = list(record.uris) if record is not None else []
        found: Mapping[str, Any] | None = by_service.get(name)
        if found is None and record is not None:
            # Not seen in the namespace (not yet, or not readable): what the controller
            # recorded in the GpuLease status is the next best account.
            found = {
                "spec": {"replicas": desired.get(name, record.replicas)},
                "status": {
                    "replicas": record.replicas,
                    "readyReplicas": record.ready_replicas,
                    "availableReplicas": record.ready_replicas,
                },
            }
        document["services"][name] = service_status(name, desired.get(name, 1), found, uris)
        ports = _published_ports(name, host, published.get(name, []))
        if not ports and record is not None:
            ports = [
                {
                    "host": port.host or host,
                    "port": port.port,
                    "externalPort": port.external_port,
                    "proto": port.proto,
                    "name": name,
                }
                for port in record.forwarded_ports
            ]
        if ports:
            document["forwarded_ports"][name] = ports
    return document


def event_line(event: Mapping[str, Any]) -> JsonObject:
    """One Kubernetes Event as a tenant sees it (Akash's lease event shape)."""
    involved = event.get("involvedObject") or {}
    return {
        "type": event.get("type") or "Normal",
        "reason": event.get("reason") or "",
        "note": event.get("message") or event.get("note") or "",
        "reportingController": event.get("reportingComponent")
        or (event.get("source") or {}).get("component")
        or "",
        "reportingInstance": event.get("reportingInstance") or "",
        "object": {"kind": involved.get("kind") or "", "name": involved.get("name") or ""},
        "lastTimestamp": event.get("lastTimestamp") or event.get("eventTime") or "",
    }
