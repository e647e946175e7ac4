"""`PUT /deployment/{leaseId}/manifest` (and POST): the tenant's deployment manifest.

The body is what Spheron's SDK sends (the JSON array of groups), read by the one manifest
model, `gpu_provider.api.manifest`. A manifest is stored only when it passes every check:

| check | answer |
|---|---|
| `Auth-Spheron` valid, signer is the lease's tenant | 401 |
| the lease exists here | 404 |
| the lease takes a manifest (AwaitingManifest, Deploying, Running) | 410 closed, 409 failed |
| the body is JSON / fits the manifest model (no unknown field) | 400 / 422 |
| fits the order and the provider's policy (`api.manifest_policy`) | 422 |
| the token was not used before for another accepted body | 401 (`Replayed`) |

A valid manifest goes to `GpuLease.spec.manifest` with its sha256; registry credentials go
to Secrets (`render.pullsecret`), never into the GpuLease. The answer is exactly 200: Spheron's
proxy turns any other success code into a 500 for the tenant. The same manifest again (same
sha256) writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Final

from aiohttp import web
from kubernetes.client.exceptions import ApiException

from gpu_provider.api.manifest import Manifest, ManifestError, manifest_sha256, parse_manifest
from gpu_provider.api.manifest_policy import manifest_refusal
from gpu_provider.api.v1alpha1.gpulease import (
    ChainLeaseState,
    LeaseManifest,
    LeasePhase,
)
from gpu_provider.gateway.errors import GatewayError
from gpu_provider.gateway.leaseaccess import (
    LEASE_ID,
    TENANT_CONTEXT,
    LeaseView,
    TenantContext,
    authenticate,
    lease_for_tenant,
    provider_spec,
)
from gpu_provider.kube import leases
from gpu_provider.market.auth import AuthError
from gpu_provider.render.labels import COMPONENT_LABEL, LEASE_ID_LABEL
from gpu_provider.render.pullsecret import (
    PULL_SECRET_COMPONENT,
    pull_secret_namespace,
    pull_secrets,
)

__all__ = ["ACCEPTING_PHASES", "routes"]

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

ACCEPTING_PHASES: Final = frozenset(
    {None, LeasePhase.AWAITING_MANIFEST, LeasePhase.DEPLOYING, LeasePhase.RUNNING}
)
"""Phases in which a manifest is taken (None: the status is written right after creation)."""
_WRITE_ATTEMPTS: Final = 3


@routes.put(f"/deployment/{LEASE_ID}/manifest")
@routes.post(f"/deployment/{LEASE_ID}/manifest")
async def put_manifest(request: web.Request) -> web.Response:
    context = request.app[TENANT_CONTEXT]
    header, token = authenticate(request, context)
    body = await request.read()
    for _ in range(_WRITE_ATTEMPTS):
        lease = await lease_for_tenant(request, context, token)
        _check_phase(lease)
        manifest = await _validated(context, lease, body)
        # Only a manifest that would be accepted binds the token: a refused body is
        # not a use, and the tenant may fix it and resend with the same token.
        try:
            context.replay.check(
                header,
                f"manifest:{lease.lease_id}",
                hashlib.sha256(body).hexdigest(),
                now=context.now(),
            )
        except AuthError as error:
            raise GatewayError(401, f"Auth-Spheron refused ({error.reason}): {error}") from None
        sha = manifest_sha256(manifest)
        stored = lease.spec.manifest
        if stored is not None and stored.sha256 == sha:
            return _accepted(lease.lease_id, sha, changed=False)
        try:
            await _store(context, lease, manifest, sha)
        except leases.LeaseConflict:
            continue  # the lease changed meanwhile: read it again and decide again
        log.info("lease %d: manifest %s stored", lease.lease_id, sha[:12])
        return _accepted(lease.lease_id, sha, changed=True)
    raise GatewayError(503, "the lease kept changing while the manifest was stored; retry")


def _accepted(lease_id: int, sha: str, *, changed: bool) -> web.Response:
    # Exactly 200, never 201/202/204: Spheron's proxy fails the tenant on anything else.
    return web.json_response(
        {"leaseId": str(lease_id), "sha256": sha, "changed": changed}, status=200
    )


def _check_phase(lease: LeaseView) -> None:
    phase = lease.status.phase
    if lease.status.chain_state is ChainLeaseState.TERMINATED:
        raise GatewayError(410, f"lease {lease.lease_id} is closed on chain; it takes no manifest")
    if phase in ACCEPTING_PHASES:
        return
    if phase is LeasePhase.FAILED:
        raise GatewayError(409, f"lease {lease.lease_id} has failed; it takes no manifest")
    raise GatewayError(
        410, f"lease {lease.lease_id} is {phase.value if phase else 'closed'}; it takes no manifest"
    )


async def _validated(context: TenantContext, lease: LeaseView, body: bytes) -> Manifest:
    try:
        data = json.loads(body)
    except ValueError as error:
        raise GatewayError(400, f"the manifest is not valid JSON: {error}") from None
    try:
        manifest = parse_manifest(data)
    except ManifestError as error:
        raise GatewayError(422, f"the manifest is not valid: {error}") from None
    provider = await provider_spec(context, lease.spec.provider_node)
    refusal = manifest_refusal(manifest, lease.spec.resources, provider.lease_defaults)
    if refusal:
        raise GatewayError(422, refusal)
    return manifest


async def _store(context: TenantContext, lease: LeaseView, manifest: Manifest, sha: str) -> None:
    """Credentials first, then the manifest that names them: a crash between the two leaves
    Secrets the next upload overwrites, never a manifest naming a Secret that is missing."""
    secrets = pull_secrets(
        manifest,
        lease_id=lease.lease_id,
        tenant=lease.spec.tenant,
        provider_node=lease.spec.provider_node,
        namespace=pull_secret_namespace(context.namespace),
    )
    selector = f"{LEASE_ID_LABEL}={lease.lease_id},{COMPONENT_LABEL}={PULL_SECRET_COMPONENT}"
    names = {service: body["metadata"]["name"] for service, body in secrets.items()}
    record = LeaseManifest.from_sdk(
        manifest, received_at=datetime.now(UTC), sha256=sha, pull_secrets=names
    )
    try:
        await leases.apply_pull_secrets(
            context.api,
            pull_secret_namespace(context.namespace),
            selector,
            {body["metadata"]["name"]: body for body in secrets.values()},
        )
        await leases.write_manifest(
            context.api,
            context.namespace,
            lease.body["metadata"]["name"],
            record.to_wire(),
            resource_version=lease.resource_version,
        )
    except ApiException as error:
        if error.status == 422:
            raise GatewayError(422, f"the cluster refused the manifest: {_reason(error)}") from None
        raise


def _reason(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except ValueError:
        return str(error.reason)
