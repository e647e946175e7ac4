"""Services and Ingresses of a lease, and what the tenant is told about them.

Which `expose` entry becomes what (the rule of the Akash-derived provider Spheron's SDK talks
to; the SDK sends `httpOptions` with every port, so its presence says nothing):

- HTTP: TCP, `global`, and exposed as port 80 (`externalPort`, or `port` when that is unset):
  an Ingress at `<service>-<leaseId>.<ingressDomain>`; when the ProviderNode has no
  `ingressDomain`, a NodePort instead (the tenant paid for a public port; the controller
  reports that it has no host name);
- any other `global` port, TCP or UDP: a NodePort Service `<service>-np`;
- every exposed port: the ClusterIP Service `<service>` (the lease's services reach each other
  by name, and the Ingress routes through it).

NodePorts are allocated by Kubernetes, not by us: a deterministic choice would need every
other lease's ports (not pure), and the API server already refuses a port in use. The cluster's
`--service-node-port-range` should equal `leaseDefaults.nodePortRange`; `node_ports_outside`
tells the controller when an allocated port is not within it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from gpu_provider.api.v1alpha1.gpulease import ExposedPort, ForwardedPort, ManifestService
from gpu_provider.api.v1alpha1.providernode import LeaseDefaults, PortRange
from gpu_provider.render.labels import SERVICE_LABEL, service_selector
from gpu_provider.render.namespace import LeaseScope
from gpu_provider.render.network import ExposedPorts

__all__ = [
    "HTTP_PORT",
    "exposed_ports",
    "forwarded_ports",
    "ingress_host",
    "is_http",
    "is_node_port",
    "lease_uris",
    "node_port_count",
    "node_ports_outside",
    "render_ingress",
    "render_services",
]

HTTP_PORT: Final = 80
NODE_PORT_SUFFIX: Final = "-np"


def _public_port(port: ExposedPort) -> int:
    return port.external_port or port.port


def is_http(port: ExposedPort) -> bool:
    return port.proto == "TCP" and port.global_ and _public_port(port) == HTTP_PORT


def is_node_port(port: ExposedPort, *, with_ingress: bool = True) -> bool:
    """A global port published on the nodes: every one but HTTP ports that get an Ingress."""
    return port.global_ and not (with_ingress and is_http(port))


def _unique(ports: Iterable[ExposedPort]) -> list[ExposedPort]:
    seen: set[tuple[int, str]] = set()
    kept = []
    for port in ports:
        if (_public_port(port), port.proto) not in seen:
            seen.add((_public_port(port), port.proto))
            kept.append(port)
    return kept


def exposed_ports(service: ManifestService, *, with_ingress: bool) -> ExposedPorts:
    """The container ports open to outside the lease: NodePorts, and HTTP ports when they
    get an Ingress."""
    ports = [p for p in service.expose if p.global_]
    pairs = tuple(dict.fromkeys((p.port, p.proto) for p in ports))
    return ExposedPorts(
        service=service.name, ports=pairs, http=with_ingress and any(map(is_http, ports))
    )


def node_port_count(services: Sequence[ManifestService], *, with_ingress: bool = True) -> int:
    return sum(
        len(_unique(p for p in s.expose if is_node_port(p, with_ingress=with_ingress)))
        for s in services
    )


def _service_port(port: ExposedPort) -> dict[str, Any]:
    public = _public_port(port)
    return {
        "name": f"{port.proto.lower()}-{public}",
        "protocol": port.proto,
        "port": public,
        "targetPort": port.port,
    }


def render_services(
    scope: LeaseScope, service: ManifestService, *, with_ingress: bool = True
) -> list[dict[str, Any]]:
    """The ClusterIP Service `<service>` (every exposed port) and, when the service has global
    non-HTTP ports, the NodePort Service `<service>-np`; none for a service exposing nothing.
    `with_ingress=False` (no ingressDomain): HTTP ports are published as NodePorts too."""
    ports = _unique(service.expose)
    if not ports:
        return []
    selector = service_selector(scope.lease_id, service.name)
    labels = {SERVICE_LABEL: service.name}
    rendered = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": scope.metadata(service.name, "service", **labels),
            "spec": {
                "type": "ClusterIP",
                "selector": selector,
                "ports": [_service_port(p) for p in ports],
            },
        }
    ]
    public = [p for p in ports if is_node_port(p, with_ingress=with_ingress)]
    if public:
        name = f"{service.name[: 63 - len(NODE_PORT_SUFFIX)].rstrip('-')}{NODE_PORT_SUFFIX}"
        rendered.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": scope.metadata(name, "service", **labels),
                "spec": {
                    "type": "NodePort",
                    # Local: the client's address reaches the Pod (the NetworkPolicy sees who
                    # calls), and the port answers on the reserved node, the one we report.
                    "externalTrafficPolicy": "Local",
                    "selector": selector,
                    "ports": [_service_port(p) for p in public],
                },
            }
        )
    return rendered


def ingress_host(service: str, lease_id: int, domain: str) -> str:
    return f"{service}-{lease_id}.{domain}"


def render_ingress(
    scope: LeaseScope, service: ManifestService, defaults: LeaseDefaults
) -> dict[str, Any] | None:
    """The Ingress of the service's HTTP port, or None (no HTTP port, or no ingressDomain).
    Tenant-chosen `hosts` are not served: a tenant could claim another's name."""
    http = next((p for p in service.expose if is_http(p)), None)
    if http is None or not defaults.ingress_domain:
        return None
    spec: dict[str, Any] = {
        "rules": [
            {
                "host": ingress_host(service.name, scope.lease_id, defaults.ingress_domain),
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {
                                "service": {
                                    "name": service.name,
                                    "port": {"number": _public_port(http)},
                                }
                            },
                        }
                    ]
                },
            }
        ]
    }
    if defaults.ingress_class_name:
        spec = {"ingressClassName": defaults.ingress_class_name, **spec}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": scope.metadata(service.name, "ingress", **{SERVICE_LABEL: service.name}),
        "spec": spec,
    }


def _service_name(obj: Mapping[str, Any]) -> str | None:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    name = labels.get(SERVICE_LABEL)
    return name if isinstance(name, str) else None


def forwarded_ports(
    services: Iterable[Mapping[str, Any]], hosts: Mapping[str, str] | str
) -> dict[str, list[ForwardedPort]]:
    """Per manifest service, its published ports as `status.services[].forwardedPorts`
    records them, from the NodePort Services as the API server returns them (`nodePort`
    allocated). `gateway.leasestatus` turns these into the SDK's `forwarded_ports`
    (`{<service>: [{host, port, externalPort, proto, name}]}`).

    `hosts` is the address tenants reach: one for all, or per manifest service (the address
    of the node its Pods run on: with `externalTrafficPolicy: Local` the ports answer there).
    A port not yet allocated, or a service with no known host, is left out rather than
    reported wrong.
    """
    found: dict[str, list[ForwardedPort]] = {}
    for obj in services:
        spec = obj.get("spec") or {}
        name = _service_name(obj)
        if spec.get("type") != "NodePort" or name is None:
            continue
        host = hosts if isinstance(hosts, str) else hosts.get(name)
        if not host:
            continue
        for port in spec.get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            if not port.get("nodePort") or not isinstance(target, int):
                continue
            found.setdefault(name, []).append(
                ForwardedPort(
                    port=target,
                    external_port=port["nodePort"],
                    proto=port.get("protocol", "TCP"),
                    host=host,
                )
            )
    return found


def lease_uris(ingresses: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Per manifest service, its URIs (`status.services[].uris`, the SDK's `uris`): the host
    names of its Ingress rules, without a scheme, as the Akash-derived provider reports them."""
    found: dict[str, list[str]] = {}
    for obj in ingresses:
        name = _service_name(obj)
        if name is None:
            continue
        for rule in (obj.get("spec") or {}).get("rules") or []:
            if rule.get("host"):
                found.setdefault(name, []).append(rule["host"])
    return found


def node_ports_outside(services: Iterable[Mapping[str, Any]], allowed: PortRange) -> list[str]:
    """`<service>/<port>: nodePort N outside min-max` for each allocated NodePort outside
    the ProviderNode's range (the cluster's range and `nodePortRange` disagree)."""
    problems = []
    for obj in services:
        spec = obj.get("spec") or {}
        for port in spec.get("ports") or []:
            node_port = port.get("nodePort")
            if node_port and not allowed.min <= node_port <= allowed.max:
                problems.append(
                    f"{(obj.get('metadata') or {}).get('name')}/{port.get('port')}: nodePort "
                    f"{node_port} outside {allowed.min}-{allowed.max}"
                )
    return problems
