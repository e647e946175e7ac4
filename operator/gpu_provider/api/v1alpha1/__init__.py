"""API version v1alpha1 of `gpuprovider.dev`: ProviderNode and GpuLease."""

from gpu_provider.api.v1alpha1.common import (
    API_VERSION,
    CATEGORY,
    GROUP,
    VERSION,
    Condition,
    ConditionStatus,
    LabelSelector,
    find_condition,
    set_condition,
)
from gpu_provider.api.v1alpha1.gpulease import (
    GPU_LEASE_KIND,
    GPU_LEASE_PLURAL,
    GpuLeaseSpec,
    GpuLeaseStatus,
    LeaseConditionType,
    LeasePhase,
)
from gpu_provider.api.v1alpha1.providernode import (
    PROVIDER_NODE_KIND,
    PROVIDER_NODE_PLURAL,
    ProviderConditionType,
    ProviderNodeSpec,
    ProviderNodeStatus,
)

__all__ = [
    "API_VERSION",
    "CATEGORY",
    "GPU_LEASE_KIND",
    "GPU_LEASE_PLURAL",
    "GROUP",
    "PROVIDER_NODE_KIND",
    "PROVIDER_NODE_PLURAL",
    "VERSION",
    "Condition",
    "ConditionStatus",
    "GpuLeaseSpec",
    "GpuLeaseStatus",
    "LabelSelector",
    "LeaseConditionType",
    "LeasePhase",
    "ProviderConditionType",
    "ProviderNodeSpec",
    "ProviderNodeStatus",
    "find_condition",
    "set_condition",
]
