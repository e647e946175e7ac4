"""Every error the gateway answers is JSON with a message: `{"error": {"status", "message"}}`.

Spheron's SDK and proxy show a provider's error body to the tenant; an HTML page from
aiohttp, or an empty 500, tells them nothing. Handlers raise `aiohttp.web.HTTPException`s
(with a reason a tenant can act on) or `GatewayError`; anything else is logged and becomes a
500 whose message does not leak internals.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Final

from aiohttp import web

__all__ = ["GatewayError", "error_body", "error_middleware", "json_error"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_DEFAULT_MESSAGES: Final[dict[int, str]] = {
    404: "no such endpoint: see /status and /version",
    405: "method not allowed on this endpoint",
    413: "request body too large",
}


class GatewayError(Exception):
    """A failure with the HTTP status and the sentence to send back."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_body(status: int, message: str) -> dict[str, dict[str, object]]:
    return {"error": {"status": status, "message": message}}


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error_body(status, message), status=status, headers=headers)


def _message(exc: web.HTTPException) -> str:
    # aiohttp's own text for a status is just its reason phrase ("Not Found"); say more.
    if exc.text and exc.text != f"{exc.status}: {exc.reason}":
        return exc.text
    return _DEFAULT_MESSAGES.get(exc.status, HTTPStatus(exc.status).description or exc.reason)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GatewayError as exc:
        return json_error(exc.status, exc.message, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return json_error(exc.status, _message(exc), headers)
    except Exception:
        log.exception("unhandled error serving %s %s", request.method, request.path)
        return json_error(500, "internal error in the provider gateway; it has been logged")
