"""Pure builders: chain facts and CR models in, Kubernetes objects out (no I/O).

Everything here returns plain dicts ready for the API server; `gpu_provider.kube` applies them.
Golden files under `tests/render/golden/` pin the exact output.
"""

from gpu_provider.render.gpulease import (
    LeaseNotRepresentable,
    ProviderNodeRef,
    RenderedLease,
    build_gpulease,
    build_terms_patch,
    gpulease_name,
    lease_resources,
    placement_status,
)
from gpu_provider.render.labels import (
    LEASE_ID_LABEL,
    PROVIDER_NODE_LABEL,
    TENANT_LABEL,
    lease_labels,
)
from gpu_provider.render.leasestatus import closed_status, closing_status, lease_facts

__all__ = [
    "LEASE_ID_LABEL",
    "PROVIDER_NODE_LABEL",
    "TENANT_LABEL",
    "LeaseNotRepresentable",
    "ProviderNodeRef",
    "RenderedLease",
    "build_gpulease",
    "build_terms_patch",
    "closed_status",
    "closing_status",
    "gpulease_name",
    "lease_facts",
    "lease_labels",
    "lease_resources",
    "placement_status",
]
