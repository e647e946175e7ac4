"""NetworkPolicies of a lease namespace: nothing in or out but what a tenant's workload needs.

- `deny-all`: every Pod, both directions, no rule: what no other policy allows is dropped.
- `allow-same-lease`: the lease's own Pods talk to each other (its services, any port).
- `allow-dns`: to the cluster DNS Pods only (kube-system, `k8s-app: kube-dns`, 53 UDP/TCP).
- `allow-internet`: egress to 0.0.0.0/0 and ::/0 except private, shared (CGNAT), loopback and
  link-local ranges (the cloud metadata address 169.254.169.254 among them), the cluster's
  service and Pod CIDRs, and any CIDR the provider adds. Other lease namespaces are blocked by
  these excepts: a namespaceSelector rule cannot "except", so only ipBlock excepts can.
- `expose-<service>`: ingress to the service's global ports, from anywhere but the Pod CIDRs
  (other leases' Pods), plus the ingress controller's namespace for HTTP ports.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from gpu_provider.render.labels import LEASE_ID_LABEL, SERVICE_LABEL
from gpu_provider.render.namespace import LeaseScope

__all__ = [
    "BLOCKED_V4",
    "BLOCKED_V6",
    "ClusterNetwork",
    "ExposedPorts",
    "egress_excepts",
    "render_network_policies",
]

BLOCKED_V4: Final = (
    "10.0.0.0/8",  # private
    "100.64.0.0/10",  # shared address space (CGNAT; some clusters' Pod networks)
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local, with the cloud metadata service at 169.254.169.254
    "172.16.0.0/12",  # private
    "192.168.0.0/16",  # private
)
BLOCKED_V6: Final = (
    "::1/128",  # loopback
    "fc00::/7",  # unique local
    "fe80::/10",  # link-local
)
_DNS_PORTS: Final = ({"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class ClusterNetwork:
    """Facts about the cluster the policies need (read by the caller; passed in here).

    `blocked_cidrs` tightens egress further: the API server's and the Nodes' public addresses
    belong here when they are not in a private range (a lease must not reach a kubelet).
    `ingress_namespace` is where the ingress controller runs: its Pods are in the Pod CIDR,
    which is otherwise refused, so HTTP ports admit that namespace by name.
    """

    service_cidrs: tuple[str, ...]
    pod_cidrs: tuple[str, ...]
    blocked_cidrs: tuple[str, ...] = ()
    dns_namespace: str = "kube-system"
    dns_pod_labels: Mapping[str, str] = field(default_factory=lambda: {"k8s-app": "kube-dns"})
    ingress_namespace: str | None = None


@dataclass(frozen=True, slots=True)
class ExposedPorts:
    """A service's ports reachable from outside the lease (container ports)."""

    service: str
    ports: tuple[tuple[int, str], ...]
    """(port, protocol) pairs."""
    http: bool = False


def _networks(cidrs: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]


def egress_excepts(network: ClusterNetwork) -> tuple[list[str], list[str]]:
    """The IPv4 and IPv6 excepts of the internet egress rule: the fixed ranges plus the
    cluster's, each cluster range left out when a fixed one already covers it (an except must
    lie inside its cidr; a repeat is noise), sorted, de-duplicated."""
    extra = _networks((*network.service_cidrs, *network.pod_cidrs, *network.blocked_cidrs))
    v4: list[Network] = list(_networks(BLOCKED_V4))
    v6: list[Network] = list(_networks(BLOCKED_V6))
    for net in extra:
        family = v4 if net.version == 4 else v6
        if net.prefixlen == 0:
            raise ValueError(f"{net} would block the whole internet; name a smaller range")
        if not any(_within(net, known) for known in family):
            family.append(net)
    return [str(n) for n in _sorted(v4)], [str(n) for n in _sorted(v6)]


def _within(net: Network, other: Network) -> bool:
    return net.version == other.version and net.subnet_of(other)  # type: ignore[arg-type]


def _sorted(nets: Sequence[Network]) -> list[Network]:
    return sorted(set(nets), key=lambda n: (int(n.network_address), n.prefixlen))


def _policy(scope: LeaseScope, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": scope.metadata(name, "network-policy"),
        "spec": spec,
    }


def _lease_pods(scope: LeaseScope) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": {LEASE_ID_LABEL: str(scope.lease_id)}}}


def render_network_policies(
    scope: LeaseScope, network: ClusterNetwork, exposed: Sequence[ExposedPorts]
) -> list[dict[str, Any]]:
    """All policies of the namespace, deny-all first."""
    v4, v6 = egress_excepts(network)
    pod_v4, pod_v6 = _split(network.pod_cidrs)
    dns_peer = {
        "namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": network.dns_namespace}
        },
        "podSelector": {"matchLabels": dict(network.dns_pod_labels)},
    }
    policies = [
        _policy(scope, "deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        _policy(
            scope,
            "allow-same-lease",
            {
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                # A bare podSelector matches this namespace only: the lease's own Pods.
                "ingress": [{"from": [_lease_pods(scope)]}],
                "egress": [{"to": [_lease_pods(scope)]}],
            },
        ),
        _policy(
            scope,
            "allow-dns",
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [{"to": [dns_peer], "ports": [dict(p) for p in _DNS_PORTS]}],
            },
        ),
        _policy(
            scope,
            "allow-internet",
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {"ipBlock": {"cidr": "0.0.0.0/0", "except": v4}},
                            {"ipBlock": {"cidr": "::/0", "except": v6}},
                        ]
                    }
                ],
            },
        ),
    ]
    for ports in exposed:
        if not ports.ports:
            continue
        peers: list[dict[str, Any]] = [
            _block("0.0.0.0/0", pod_v4),
            _block("::/0", pod_v6),
        ]
        if ports.http and network.ingress_namespace:
            peers.append(
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": network.ingress_namespace}
                    }
                }
            )
        policies.append(
            _policy(
                scope,
                f"expose-{ports.service}"[:63].rstrip("-"),
                {
                    "podSelector": {
                        "matchLabels": {
                            LEASE_ID_LABEL: str(scope.lease_id),
                            SERVICE_LABEL: ports.service,
                        }
                    },
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": peers,
                            "ports": [
                                {"protocol": proto, "port": port} for port, proto in ports.ports
                            ],
                        }
                    ],
                },
            )
        )
    return policies


def _split(cidrs: Iterable[str]) -> tuple[list[str], list[str]]:
    nets = _sorted(_networks(cidrs))
    return [str(n) for n in nets if n.version == 4], [str(n) for n in nets if n.version == 6]


def _block(cidr: str, excepts: list[str]) -> dict[str, Any]:
    block: dict[str, Any] = {"cidr": cidr}
    if excepts:
        block["except"] = excepts
    return {"ipBlock": block}
