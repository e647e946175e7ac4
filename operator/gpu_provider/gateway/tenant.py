"""The tenant's lease endpoints, Spheron's paths (group and order sequence are always `1/1`).

Each one checks `Auth-Spheron` and that the signer is the lease's tenant
(`gateway.leaseaccess`). Events and logs answer plain HTTP and, when the request asks to
upgrade, a websocket (the SDK opens logs as one): the same lines either way, one JSON object
per line or message. With `follow=true` the stream stays open (at most
`TenantContext.follow_limit_seconds`) until the tenant goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import WSMsgType, web
from kubernetes.client.exceptions import ApiException

from gpu_provider.api.v1alpha1.gpulease import LeasePhase
from gpu_provider.gateway.errors import GatewayError
from gpu_provider.gateway.leaseaccess import (
    LEASE_ID,
    TENANT_CONTEXT,
    LeaseView,
    TenantContext,
    authenticate,
    lease_for_tenant,
    lease_namespace,
    provider_spec,
)
from gpu_provider.gateway.leasestatus import event_line, lease_status, object_service
from gpu_provider.kube import leases
from gpu_provider.render.labels import TENANT_LABEL

__all__ = ["routes"]

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

_LEASE: Final = f"/lease/{LEASE_ID}/1/1"
MAX_TAIL: Final = 10_000
_POLL_SECONDS: Final = 1.0


async def _lease(request: web.Request) -> tuple[TenantContext, LeaseView]:
    context = request.app[TENANT_CONTEXT]
    _, token = authenticate(request, context)
    return context, await lease_for_tenant(request, context, token)


async def _status_document(context: TenantContext, lease: LeaseView) -> dict[str, Any]:
    namespace = lease_namespace(lease.lease_id)
    provider, deployments, statefulsets, services = await asyncio.gather(
        provider_spec(context, lease.spec.provider_node),
        leases.list_lease_objects(context.api, namespace, "deployments"),
        leases.list_lease_objects(context.api, namespace, "statefulsets"),
        leases.list_lease_objects(context.api, namespace, "services"),
    )
    return lease_status(
        lease.spec,
        lease.status,
        host=provider.host_uri,
        workloads=[*deployments, *statefulsets],
        services=services,
    )


@routes.get(f"{_LEASE}/status")
async def status(request: web.Request) -> web.Response:
    context, lease = await _lease(request)
    return web.json_response(await _status_document(context, lease))


@routes.get(f"{_LEASE}/service/{{service}}/status")
async def service_status(request: web.Request) -> web.Response:
    context, lease = await _lease(request)
    name = request.match_info["service"]
    document = await _status_document(context, lease)
    if name not in document["services"]:
        raise GatewayError(404, f"lease {lease.lease_id} has no service {name!r}")
    return web.json_response(document["services"][name])


# --- events and logs ----------------------------------------------------------------------


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false").strip().lower()
    if value not in ("true", "false", "1", "0", ""):
        raise GatewayError(400, f"{name} must be true or false, not {value!r}")
    return value in ("true", "1")


def _tail(request: web.Request) -> int | None:
    text = request.query.get("tail", "").strip()
    if text in ("", "-1"):
        return None
    if not text.isdigit() or int(text) > MAX_TAIL:
        raise GatewayError(400, f"tail must be a number of lines from 0 to {MAX_TAIL}")
    return int(text)


def _of_service(obj: dict[str, Any], service: str | None, name: str) -> bool:
    """An object (pod, event subject) belongs to `service`: by label, or by name prefix
    (pods are named `<service>-<hash>`)."""
    return service is None or object_service(obj) == service or name.startswith(f"{service}-")


async def _events(
    context: TenantContext, lease: LeaseView, service: str | None
) -> list[dict[str, Any]]:
    listed = await leases.list_lease_objects(context.api, lease_namespace(lease.lease_id), "events")
    chosen = [
        e
        for e in listed
        if _of_service(e, service, (e.get("involvedObject") or {}).get("name", ""))
    ]
    return sorted(chosen, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))


async def _event_lines(
    context: TenantContext, lease: LeaseView, request: web.Request
) -> AsyncIterator[dict[str, Any]]:
    service, tail = request.query.get("service") or None, _tail(request)
    follow = _flag(request, "follow")
    events = await _events(context, lease, service)
    seen = {(e["metadata"].get("uid"), e.get("count")) for e in events}
    for event in events[-tail:] if tail is not None else events:
        yield event_line(event)
    if not follow:
        return
    loop = asyncio.get_running_loop()
    until = loop.time() + context.follow_limit_seconds
    while loop.time() < until:
        await asyncio.sleep(_POLL_SECONDS)
        for event in await _events(context, lease, service):
            key = (event["metadata"].get("uid"), event.get("count"))
            if key not in seen:
                seen.add(key)
                yield event_line(event)


def _split_timestamp(line: str) -> tuple[str, str]:
    stamp, _, message = line.partition(" ")
    return stamp, message


async def _pods(context: TenantContext, namespace: str, service: str | None) -> list[str]:
    return [
        pod["metadata"]["name"]
        for pod in await leases.list_lease_objects(context.api, namespace, "pods")
        if _of_service(pod, service, pod["metadata"]["name"])
    ]


async def _read_log(
    context: TenantContext, namespace: str, pod: str, **options: Any
) -> list[tuple[str, str]]:
    try:
        text = await leases.pod_log(context.api, namespace, pod, **options)
    except ApiException as error:
        log.debug("no log for pod %s/%s: %s", namespace, pod, error.reason)
        return []
    return [_split_timestamp(line) for line in str(text).splitlines() if line]


async def _log_lines(
    context: TenantContext, lease: LeaseView, request: web.Request
) -> AsyncIterator[dict[str, Any]]:
    """Each pod's log (`tail` lines), then, with follow, what they print next: polled with
    timestamps every second (a line is new when its timestamp is later than the last sent)."""
    service, tail = request.query.get("service") or None, _tail(request)
    namespace = lease_namespace(lease.lease_id)
    last: dict[str, str] = {}
    for pod in await _pods(context, namespace, service):
        for stamp, message in await _read_log(context, namespace, pod, tail=tail):
            last[pod] = stamp
            yield {"name": pod, "message": message}
    if not _flag(request, "follow"):
        return
    loop = asyncio.get_running_loop()
    until = loop.time() + context.follow_limit_seconds
    while loop.time() < until:
        await asyncio.sleep(_POLL_SECONDS)
        for pod in await _pods(context, namespace, service):
            for stamp, message in await _read_log(
                context, namespace, pod, tail=None, since_seconds=10
            ):
                if stamp > last.get(pod, ""):
                    last[pod] = stamp
                    yield {"name": pod, "message": message}


async def _serve_lines(
    request: web.Request, lines: AsyncIterator[dict[str, Any]]
) -> web.StreamResponse:
    """The lines as a websocket (when the request asks to upgrade) or as NDJSON."""
    websocket = web.WebSocketResponse(heartbeat=30)
    if websocket.can_prepare(request).ok:
        await websocket.prepare(request)
        reader = asyncio.create_task(_until_closed(websocket))
        pump = asyncio.create_task(_send_all(websocket, lines))
        await asyncio.wait({reader, pump}, return_when=asyncio.FIRST_COMPLETED)
        for task in (reader, pump):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await websocket.close()  # 1000: every line was sent (or the tenant left)
        return websocket
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    async for line in lines:
        await response.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
    await response.write_eof()
    return response


async def _until_closed(websocket: web.WebSocketResponse) -> None:
    async for message in websocket:  # the tenant sends nothing; this ends when it closes
        if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            return


async def _send_all(websocket: web.WebSocketResponse, lines: AsyncIterator[dict[str, Any]]) -> None:
    async for line in lines:
        await websocket.send_str(json.dumps(line, separators=(",", ":")))


@routes.get(f"{_LEASE}/kubeevents")
async def kube_events(request: web.Request) -> web.StreamResponse:
    context, lease = await _lease(request)
    return await _serve_lines(request, _event_lines(context, lease, request))


@routes.get(f"{_LEASE}/logs")
async def logs(request: web.Request) -> web.StreamResponse:
    context, lease = await _lease(request)
    _tail(request), _flag(request, "follow"), _flag(request, "startup")  # 400 before upgrading
    return await _serve_lines(request, _log_lines(context, lease, request))


@routes.get(f"{_LEASE}/shell")
async def shell(request: web.Request) -> web.Response:
    _, lease = await _lease(request)  # a stranger learns nothing, not even "501"
    raise GatewayError(
        501, f"the shell is not available yet on this provider (lease {lease.lease_id})"
    )


# --- close ----------------------------------------------------------------------------------


@routes.put("/spheron/deployment/close")
async def close(request: web.Request) -> web.Response:
    """The SDK's hint, sent right after the tenant's on-chain `closeLease`: mark the
    tenant's open leases for an immediate chain check. Nothing is closed here; the lease
    controller tears a lease down only when the chain shows it closed."""
    context = request.app[TENANT_CONTEXT]
    _, token = authenticate(request, context)
    selector = f"{TENANT_LABEL}={token.address.lower()}"
    found = await leases.list_tenant_leases(context.api, context.namespace, selector)
    at = datetime.fromtimestamp(context.now(), UTC).isoformat().replace("+00:00", "Z")
    marked = []
    for lease in found:
        phase = (lease.get("status") or {}).get("phase")
        if phase in (LeasePhase.CLOSED.value, LeasePhase.FAILED.value):
            continue
        name = lease["metadata"]["name"]
        try:
            await leases.request_close(context.api, context.namespace, name, at)
        except ApiException as error:
            if error.status == 404:
                continue  # deleted meanwhile
            raise
        marked.append(str((lease.get("spec") or {}).get("leaseId", name)))
    return web.json_response({"checking": sorted(marked)}, status=200)
