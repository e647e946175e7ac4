"""Who may touch a lease: the `Auth-Spheron` check and the GpuLease lookup every tenant
endpoint shares.

Order of checks, each with its own answer:

1. the token itself (signature, 20 s freshness, at most 5 s in the future): 401;
2. the lease exists at this provider: 404;
3. the signer is the lease's tenant (`spec.tenant`): 401 (lease ids are public on chain, so
   saying the lease exists leaks nothing; saying whose token it wants helps the tenant).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web
from kubernetes import client
from pydantic import ValidationError

from gpu_provider.api.v1alpha1 import ProviderNodeSpec
from gpu_provider.api.v1alpha1.gpulease import GpuLeaseSpec, GpuLeaseStatus
from gpu_provider.gateway.errors import GatewayError
from gpu_provider.kube import leases, reads
from gpu_provider.market.auth import AUTH_HEADER, AuthError, AuthToken, ReplayCache
from gpu_provider.market.auth import verify_auth_header as verify
from gpu_provider.render.gpulease import gpulease_name

__all__ = [
    "LEASE_ID",
    "TENANT_CONTEXT",
    "LeaseView",
    "TenantContext",
    "authenticate",
    "lease_for_tenant",
    "lease_namespace",
    "provider_spec",
]

LEASE_ID: Final = r"{lease_id:(0|[1-9][0-9]{0,77})}"
"""A lease id in a route path: a uint256 in decimal, as the chain writes it."""


@dataclass
class TenantContext:
    """What the tenant routes need: the apiserver, where GpuLeases live, the replay cache."""

    api: client.ApiClient
    namespace: str
    """The operator's namespace: GpuLeases and the credentials Secrets are there."""
    replay: ReplayCache = field(default_factory=ReplayCache)
    clock: Callable[[], float] = time.time
    follow_limit_seconds: float = 3600.0
    """How long one follow stream (logs, events) may stay open."""

    def now(self) -> int:
        return int(self.clock())


TENANT_CONTEXT: Final = web.AppKey("tenant_context", TenantContext)


@dataclass(frozen=True)
class LeaseView:
    """A GpuLease as read, with its spec and status parsed."""

    lease_id: int
    body: dict[str, Any]
    spec: GpuLeaseSpec
    status: GpuLeaseStatus

    @property
    def resource_version(self) -> str:
        return str(self.body["metadata"].get("resourceVersion", ""))


def lease_namespace(lease_id: int) -> str:
    """The namespace the GpuLease controller runs the lease's workload in."""
    return f"lease-{lease_id}"


def authenticate(request: web.Request, context: TenantContext) -> tuple[str, AuthToken]:
    """The raw header and the verified token, or a 401 with the reason."""
    header = request.headers.get(AUTH_HEADER, "")
    try:
        return header, verify(header, now=context.now())
    except AuthError as error:
        raise _unauthorized(error) from None


def _unauthorized(error: AuthError) -> GatewayError:
    return GatewayError(
        401,
        f"{AUTH_HEADER} refused ({error.reason}): {error}",
        headers={"WWW-Authenticate": AUTH_HEADER},
    )


async def lease_for_tenant(
    request: web.Request, context: TenantContext, token: AuthToken
) -> LeaseView:
    """The lease in the path, if `token`'s signer is its tenant: else 404 or 401."""
    lease_id = int(request.match_info["lease_id"])
    body = await leases.read_gpulease(context.api, context.namespace, gpulease_name(lease_id))
    if body is None:
        raise GatewayError(404, f"lease {lease_id} is not a lease of this provider")
    try:
        spec = GpuLeaseSpec.model_validate(body.get("spec") or {})
        status = GpuLeaseStatus.model_validate(body.get("status") or {})
    except ValidationError:
        raise GatewayError(
            500, f"lease {lease_id} is stored in a shape this gateway cannot read"
        ) from None
    if spec.tenant.lower() != token.address.lower():
        raise _unauthorized(
            AuthError(
                "WrongSigner",
                f"the token is signed by {token.address}, which is not the tenant of lease "
                f"{lease_id}",
            )
        )
    return LeaseView(lease_id=lease_id, body=body, spec=spec, status=status)


async def provider_spec(context: TenantContext, name: str) -> ProviderNodeSpec:
    """The lease's ProviderNode spec (its leaseDefaults and hostUri); 503 if unreadable."""
    found = await reads.read_provider_node(context.api, name)
    if found is None:
        raise GatewayError(
            503, f"the provider's configuration (ProviderNode {name}) cannot be read; retry"
        )
    try:
        return ProviderNodeSpec.model_validate(found.get("spec") or {})
    except ValidationError:
        raise GatewayError(503, f"ProviderNode {name} has an invalid spec") from None
