"""The lease namespace and what makes it a tenant's own: Pod Security, a token-less
ServiceAccount and the copies of the registry pull Secrets.

Every object of a lease lives in `lease-<leaseId>` (the namespace itself is cluster-scoped and
labelled). Namespaced children carry no ownerReference: deleting the namespace deletes them,
which is how a lease is torn down, and Kopf's annotations are never rendered here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from gpu_provider.api.v1alpha1.gpulease import GpuLeaseSpec
from gpu_provider.render.labels import lease_labels
from gpu_provider.render.pullsecret import PULL_SECRET_COMPONENT, PULL_SECRET_TYPE

__all__ = [
    "POD_SECURITY_LEVEL",
    "SERVICE_ACCOUNT",
    "LeaseScope",
    "lease_namespace_name",
    "render_namespace",
    "render_pull_secret",
    "render_service_account",
]

POD_SECURITY_LEVEL: Final = "restricted"
POD_SECURITY_BASELINE: Final = "baseline"
# `latest`: the cluster's own version of the standard; our Pods meet the restricted profile
# as written today, and a stricter future profile should be warned about, not ignored.
POD_SECURITY_VERSION: Final = "latest"
SERVICE_ACCOUNT: Final = "lease"
_MAX_NAME: Final = 63


@dataclass(frozen=True, slots=True)
class LeaseScope:
    """Who a lease's objects belong to: its id, tenant and ProviderNode, and its namespace."""

    lease_id: int
    tenant: str
    provider_node: str

    @classmethod
    def of(cls, spec: GpuLeaseSpec) -> LeaseScope:
        return cls(
            lease_id=int(spec.lease_id), tenant=spec.tenant, provider_node=spec.provider_node
        )

    @property
    def namespace(self) -> str:
        return lease_namespace_name(self.lease_id)

    def labels(self, component: str, **extra: str) -> dict[str, str]:
        return {
            **lease_labels(self.lease_id, self.tenant, self.provider_node, component),
            **extra,
        }

    def metadata(self, name: str, component: str, **extra: str) -> dict[str, Any]:
        """`metadata` of a namespaced child: name, the lease namespace, the lease's labels."""
        return {
            "name": name,
            "namespace": self.namespace,
            "labels": self.labels(component, **extra),
        }


def lease_namespace_name(lease_id: int) -> str:
    """`lease-<leaseId>`; a lease id too long for a DNS label (63 characters) is refused."""
    name = f"lease-{lease_id}"
    if lease_id < 0 or len(name) > _MAX_NAME:
        raise ValueError(f"lease id {lease_id} makes no namespace name (63 characters at most)")
    return name


def render_namespace(scope: LeaseScope, *, restricted: bool = True) -> dict[str, Any]:
    """The lease namespace, with Pod Security `restricted` enforced, audited and warned.

    `restricted=False` enforces `baseline` (still warning and auditing `restricted`): what a
    provider who runs root images must choose, since `restricted` refuses runAsNonRoot false.
    """
    enforce = POD_SECURITY_LEVEL if restricted else POD_SECURITY_BASELINE
    labels = scope.labels("namespace")
    labels.update(
        {
            "pod-security.kubernetes.io/enforce": enforce,
            "pod-security.kubernetes.io/enforce-version": POD_SECURITY_VERSION,
            "pod-security.kubernetes.io/audit": POD_SECURITY_LEVEL,
            "pod-security.kubernetes.io/audit-version": POD_SECURITY_VERSION,
            "pod-security.kubernetes.io/warn": POD_SECURITY_LEVEL,
            "pod-security.kubernetes.io/warn-version": POD_SECURITY_VERSION,
        }
    )
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": scope.namespace, "labels": labels},
    }


def render_service_account(scope: LeaseScope) -> dict[str, Any]:
    """The lease's only identity: no token is mounted, and no Role names it, so a tenant's
    process cannot talk to the API server as anyone."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": scope.metadata(SERVICE_ACCOUNT, "identity"),
        "automountServiceAccountToken": False,
    }


def render_pull_secret(scope: LeaseScope, stored: Mapping[str, Any]) -> dict[str, Any]:
    """The lease namespace's copy of a pull Secret the gateway stored (`render.pullsecret`,
    in the operator's namespace, owned by the GpuLease): same name, type and data, the
    lease's labels, no ownerReference (the namespace owns what is in it)."""
    name = (stored.get("metadata") or {}).get("name")
    if stored.get("type") != PULL_SECRET_TYPE or not name:
        raise ValueError(f"{name or 'a Secret'} is not a {PULL_SECRET_TYPE} pull Secret")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": scope.metadata(name, PULL_SECRET_COMPONENT),
        "type": PULL_SECRET_TYPE,
        "data": dict(stored.get("data") or {}),
    }
