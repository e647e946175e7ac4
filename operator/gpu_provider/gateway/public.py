"""Public endpoints, no authentication: `GET /status` and `GET /version`."""

from __future__ import annotations

from aiohttp import web

from gpu_provider.gateway.errors import GatewayError
from gpu_provider.gateway.keys import STATUS_SOURCE, VERSION_INFO

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.get("/status")
async def status(request: web.Request) -> web.Response:
    body = request.app[STATUS_SOURCE].current_json()
    if body is None:
        raise GatewayError(
            503,
            "the inventory is not available: not read from the cluster yet, or the cluster "
            "has not answered for a while; retry in a few seconds",
            headers={"Retry-After": "5"},
        )
    return web.Response(body=body, content_type="application/json")


@routes.get("/version")
async def version(request: web.Request) -> web.Response:
    info = request.app[VERSION_INFO]
    return web.json_response({"version": info.version, "commit": info.commit})
