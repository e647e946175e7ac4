"""The gateway's aiohttp application: one factory, route modules, JSON errors, body limits.

Each route module exposes `routes` (an `aiohttp.web.RouteTableDef`); `create_app` adds them
in order. The manifest and lease endpoints (tenant API) join as their own modules.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from aiohttp import web

from gpu_provider.gateway import public
from gpu_provider.gateway.errors import error_middleware
from gpu_provider.gateway.keys import STATUS_SOURCE, VERSION_INFO, StatusSource, VersionInfo

__all__ = ["MAX_BODY_BYTES", "create_app"]

MAX_BODY_BYTES: Final = 1024 * 1024
"""Largest request body read (a manifest is a few KiB; Spheron's SDK sends no more)."""


def create_app(
    source: StatusSource,
    version: VersionInfo,
    *,
    route_tables: Iterable[web.RouteTableDef] = (public.routes,),
    max_body_bytes: int = MAX_BODY_BYTES,
) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=max_body_bytes)
    app[STATUS_SOURCE] = source
    app[VERSION_INFO] = version
    for table in route_tables:
        app.add_routes(table)
    return app
