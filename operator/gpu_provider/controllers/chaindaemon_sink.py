"""`KubeLeaseSink`: lease intake's and lease updates' cluster side (GpuLeases).

It implements `chain.leases.LeaseSink` and `chain.leaseupdates.LeaseUpdateSink`:

- `ensure_lease`: render the GpuLease (`render.build_gpulease`) and create it if absent with
  its initial status (`kube.leasesink.create_gpulease`; 409 is success).
- A lease that cannot be a GpuLease (`LeaseNotRepresentable`) is logged and reported through
  `on_unrepresentable`, never raised, or intake would stop at that event for ever.
- `lease_updated`: a duration-only update patches only the terms: nothing restarts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from gpu_provider.chain.leases import LeaseToCreate
from gpu_provider.kube.api import ApiClient
from gpu_provider.kube.leases import patch_gpulease
from gpu_provider.kube.leasesink import create_gpulease
from gpu_provider.market.updates import UpdateDecision
from gpu_provider.render.gpulease import (
    LeaseNotRepresentable,
    ProviderNodeRef,
    build_gpulease,
    build_terms_patch,
    gpulease_name,
)

__all__ = ["KubeLeaseSink"]

log = logging.getLogger(__name__)


class KubeLeaseSink:
    """GpuLeases of one ProviderNode in the operator namespace."""

    def __init__(
        self,
        api: ApiClient,
        namespace: str,
        provider_node: ProviderNodeRef,
        *,
        on_created: Callable[[LeaseToCreate], None] = lambda _record: None,
        on_unrepresentable: Callable[[int, str], None] = lambda _lease, _why: None,
        on_declined: Callable[[int, UpdateDecision], None] = lambda _lease, _d: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.provider_node = provider_node
        self._on_created = on_created
        self._on_unrepresentable = on_unrepresentable
        self._on_declined = on_declined
        self._clock = clock

    async def ensure_lease(self, record: LeaseToCreate) -> bool:
        try:
            rendered = build_gpulease(
                record.lease,
                record.order,
                self.provider_node,
                self.namespace,
                placement=record.placement,
                taken_in_at=self._clock(),
            )
        except LeaseNotRepresentable as error:
            log.error("lease %d cannot be a GpuLease: %s", record.lease_id, error)
            self._on_unrepresentable(record.lease_id, str(error))
            return False
        created = await create_gpulease(self.api, rendered.body, rendered.status)
        if created:
            self._on_created(record)
        return created

    async def lease_updated(self, record: LeaseToCreate) -> None:
        """A duration-only update was accepted: only the terms change, nothing restarts."""
        name = gpulease_name(record.lease_id)
        await patch_gpulease(
            self.api,
            self.namespace,
            name,
            build_terms_patch(record.lease, record.order),
        )
        log.info("lease %d: terms updated (%d blocks)", record.lease_id, record.order.num_of_blocks)

    async def update_declined(self, lease_id: int, decision: UpdateDecision) -> None:
        log.info("lease %d: update declined: %s", lease_id, decision.reason)
        self._on_declined(lease_id, decision)
