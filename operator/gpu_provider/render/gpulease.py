"""`build_gpulease`: the GpuLease `lease-<leaseId>` for a lease matched to this provider.

The object lives in the operator's namespace, is owned by its ProviderNode (a namespaced
object may have a cluster-scoped owner), carries the lease's labels, and holds in `spec` the
lease's terms and the decoded order. Status is a subresource, so the initial status
(`AwaitingManifest`, the chain state, the placement reserved for the bid, `matchedAt`) is
returned apart: the caller creates the object, then writes the status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from gpu_provider.api.v1alpha1.common import API_VERSION
from gpu_provider.api.v1alpha1.gpulease import (
    GPU_LEASE_KIND,
    ChainLeaseState,
    EndpointRequest,
    GpuLeaseSpec,
    GpuLeaseStatus,
    GpuRequest,
    LeasePhase,
    LeaseResources,
    Placement,
    ServiceResources,
    StorageRequest,
)
from gpu_provider.api.v1alpha1.providernode import PROVIDER_NODE_KIND
from gpu_provider.market.capacity import OrderPlacement
from gpu_provider.market.leases import ChainLease, ChainOrder, LeaseState
from gpu_provider.market.spec import OrderSpec, Service, VramComparison
from gpu_provider.render.labels import lease_labels

__all__ = [
    "LeaseNotRepresentable",
    "ProviderNodeRef",
    "RenderedLease",
    "build_gpulease",
    "build_terms_patch",
    "gpulease_name",
    "lease_resources",
    "placement_status",
]

COMPONENT: Final = "lease"
# `>=` and `>` bound the free VRAM from below, which is what the spec's field records; the
# other comparisons are rare and were checked exactly by the bid engine before bidding.
_LOWER_BOUNDS: Final = (VramComparison.AT_LEAST, VramComparison.MORE_THAN)


class LeaseNotRepresentable(ValueError):
    """The lease's order cannot be a GpuLease (no GPUs, a name Kubernetes refuses, ...)."""


@dataclass(frozen=True, slots=True)
class ProviderNodeRef:
    """The owning ProviderNode, as its ownerReference needs it."""

    name: str
    uid: str


@dataclass(frozen=True, slots=True)
class RenderedLease:
    """The GpuLease to create (`body`) and the status to write once it exists."""

    name: str
    namespace: str
    body: dict[str, Any]
    status: dict[str, Any]


def gpulease_name(lease_id: int) -> str:
    return f"lease-{lease_id}"


def build_gpulease(
    lease: ChainLease,
    order: ChainOrder,
    provider_node: ProviderNodeRef,
    namespace: str,
    *,
    placement: Placement | None = None,
    taken_in_at: datetime,
) -> RenderedLease:
    """The GpuLease for `lease` (from `order`), owned by `provider_node`, in `namespace`.

    `taken_in_at` becomes `status.matchedAt`: when this provider took the lease in, from
    which the manifest deadline counts. Raises `LeaseNotRepresentable` with the reason.
    """
    if order.spec is None:
        raise LeaseNotRepresentable(
            f"lease {lease.lease_id}: its order's spec does not decode: {order.spec_error}"
        )
    if order.order_id != lease.order_id:
        raise ValueError(f"order {order.order_id} is not the order of lease {lease.lease_id}")
    try:
        spec = GpuLeaseSpec(
            lease_id=str(lease.lease_id),
            order_id=str(lease.order_id),
            provider_node=provider_node.name,
            tenant=lease.tenant,
            token=order.token,
            accepted_price=str(lease.accepted_price),
            start_block=lease.start_block,
            start_time=datetime.fromtimestamp(lease.start_time, UTC),
            num_of_blocks=order.num_of_blocks,
            resources=lease_resources(order.spec),
        )
        status = GpuLeaseStatus(
            phase=LeasePhase.AWAITING_MANIFEST,
            placement=placement,
            chain_state=(
                ChainLeaseState.ACTIVE
                if lease.state is LeaseState.ACTIVE
                else ChainLeaseState.TERMINATED
            ),
            matched_at=taken_in_at.astimezone(UTC),
        )
        labels = lease_labels(lease.lease_id, lease.tenant, provider_node.name, COMPONENT)
    except (ValidationError, ValueError) as error:
        if isinstance(error, LeaseNotRepresentable):
            raise
        raise LeaseNotRepresentable(f"lease {lease.lease_id}: {_first_error(error)}") from None
    name = gpulease_name(lease.lease_id)
    body = {
        "apiVersion": API_VERSION,
        "kind": GPU_LEASE_KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": PROVIDER_NODE_KIND,
                    "name": provider_node.name,
                    "uid": provider_node.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec.to_wire(),
    }
    return RenderedLease(name=name, namespace=namespace, body=body, status=status.to_wire())


def lease_resources(spec: OrderSpec) -> LeaseResources:
    """The order's services as `GpuLease.spec.resources` holds them."""
    if spec.total_gpus < 1:
        raise LeaseNotRepresentable("the order asks for no GPU")
    return LeaseResources(
        total_gpus=spec.total_gpus, services=[_service(service) for service in spec.services]
    )


def _service(service: Service) -> ServiceResources:
    vram = service.gpu.vram
    return ServiceResources(
        name=service.name,
        replicas=service.replicas,
        cpu_millis=service.cpu_millicores,
        memory_bytes=service.memory_bytes,
        storage=[
            StorageRequest(
                name=volume.name,
                size_bytes=volume.size_bytes,
                storage_class=volume.storage_class,
                persistent=bool(volume.persistent),
            )
            for volume in service.storage
        ],
        gpu=GpuRequest(
            units=service.gpu.units,
            # Catalog short names are lower case; the SDK's examples write `rtx3090Ti`.
            models=[ref.model.lower() for ref in service.gpu.models],
            min_free_vram_percent=vram.percent if vram and vram.op in _LOWER_BOUNDS else None,
        ),
        endpoints=[
            EndpointRequest(kind=int(endpoint.kind), sequence_number=endpoint.sequence_number)
            for endpoint in service.endpoints
        ],
    )


def _first_error(error: ValueError) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        # Named as the CR's fields are (camelCase), so the message matches `kubectl explain`.
        where = ".".join(
            to_camel(part) if isinstance(part, str) else str(part) for part in first["loc"]
        )
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    return str(error)


def build_terms_patch(lease: ChainLease, order: ChainOrder) -> dict[str, Any]:
    """A merge patch of the GpuLease spec after an accepted duration-only update: the new
    terms (the contract restarts the lease in the block it accepts the update), and nothing
    the workload is built from, so nothing restarts."""
    return {
        "spec": {
            "acceptedPrice": str(lease.accepted_price),
            "startBlock": lease.start_block,
            "startTime": datetime.fromtimestamp(lease.start_time, UTC)
            .isoformat()
            .replace("+00:00", "Z"),
            "numOfBlocks": order.num_of_blocks,
        }
    }


def placement_status(placement: OrderPlacement) -> Placement:
    """`status.placement` from the bid engine's reservation: the node when every GPU replica
    is on one node, the GPU model when all GPUs are of one model (unset otherwise: the
    status field holds one of each), and the GPUs in total."""
    gpu_replicas = [r for r in placement.replicas if r.gpus > 0] or list(placement.replicas)
    nodes = {r.node for r in gpu_replicas}
    models = {r.gpu_model for r in gpu_replicas if r.gpu_model is not None}
    return Placement(
        node=next(iter(nodes)) if len(nodes) == 1 else None,
        gpus=placement.gpus,
        model=next(iter(models)) if len(models) == 1 else None,
    )
