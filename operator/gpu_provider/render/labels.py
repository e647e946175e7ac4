"""The labels every object of a lease carries: ours (`gpuprovider.dev/*`) and the
recommended `app.kubernetes.io/*` ones, so `kubectl get -l` finds a lease's objects."""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "COMPONENT_LABEL",
    "LEASE_ID_LABEL",
    "MANAGED_BY",
    "PROVIDER_NODE_LABEL",
    "SERVICE_LABEL",
    "TENANT_LABEL",
    "lease_labels",
    "service_selector",
]

LEASE_ID_LABEL: Final = "gpuprovider.dev/lease-id"
TENANT_LABEL: Final = "gpuprovider.dev/tenant"
PROVIDER_NODE_LABEL: Final = "gpuprovider.dev/provider-node"
SERVICE_LABEL: Final = "gpuprovider.dev/service"
"""On a lease's workload objects and Pods: the manifest service they run."""
COMPONENT_LABEL: Final = "app.kubernetes.io/component"
MANAGED_BY: Final = "gpu-provider"
PART_OF: Final = "gpu-provider-operator"

# A label value: at most 63 characters, alphanumeric at both ends.
_LABEL_VALUE: Final = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _value(value: str, what: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise ValueError(f"{what} {value!r} cannot be a label value (63 characters at most)")
    return value


def lease_labels(lease_id: int, tenant: str, provider_node: str, component: str) -> dict[str, str]:
    """Labels of an object that belongs to lease `lease_id` (tenant lower-cased: label
    selectors compare exactly, and addresses come in mixed case)."""
    return {
        "app.kubernetes.io/name": "gpu-provider",
        "app.kubernetes.io/instance": f"lease-{lease_id}",
        COMPONENT_LABEL: component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LEASE_ID_LABEL: _value(str(lease_id), "lease id"),
        TENANT_LABEL: _value(tenant.lower(), "tenant"),
        PROVIDER_NODE_LABEL: _value(provider_node, "ProviderNode name"),
    }


def service_selector(lease_id: int, service: str) -> dict[str, str]:
    """The Pods of one service of one lease: the selector of its workload and Services.
    Immutable on a Deployment/StatefulSet, so it names nothing that can change (no tenant)."""
    return {LEASE_ID_LABEL: _value(str(lease_id), "lease id"), SERVICE_LABEL: service}
