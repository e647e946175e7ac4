"""JSON-RPC over HTTP across several endpoints, in order of preference, on one chain.

`FailoverProvider` is a web3.py provider, so `AsyncWeb3(FailoverProvider(...))` and everything
built on it (contracts, the event stream, the transaction manager) fail over together. A
request moves to the next endpoint when one does not answer (connection error, timeout, HTTP
5xx, 429, 401, 403 or 404); a JSON-RPC error object is an answer and is returned as is.
After a failover the preferred endpoint is tried again every `retry_preferred_after` seconds.
Before an endpoint serves its first request (and again after it failed) its chain id is
checked, so a misconfigured URL is never used.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, cast
from urllib.parse import urlsplit

import aiohttp
from web3 import AsyncWeb3
from web3.providers.async_base import AsyncJSONBaseProvider
from web3.types import RPCEndpoint, RPCResponse

from gpu_provider.chain.errors import ChainIdMismatch, RpcUnavailable
from gpu_provider.config import ChainSettings

log = logging.getLogger(__name__)

_HEADERS: Final = {"Content-Type": "application/json", "Accept": "application/json"}
DEFAULT_REQUEST_TIMEOUT: Final = 30.0
DEFAULT_RETRY_PREFERRED_AFTER: Final = 30.0


def redact_url(url: str) -> str:
    """scheme://host[:port] only: RPC URLs often carry an API key in the path or query."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


class _EndpointFailed(Exception):
    """This endpoint did not answer usefully; try the next one."""


@dataclass
class _Endpoint:
    url: str
    label: str
    index: int
    verified: bool = False
    down_since: float | None = None


class FailoverProvider(AsyncJSONBaseProvider):
    """A web3.py async provider over several HTTP(S) endpoints of the same chain."""

    logger = log

    def __init__(
        self,
        urls: Sequence[str],
        *,
        chain_id: int | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        retry_preferred_after: float = DEFAULT_RETRY_PREFERRED_AFTER,
    ) -> None:
        super().__init__()
        if not urls:
            raise ValueError("FailoverProvider needs at least one RPC URL")
        for url in urls:
            if urlsplit(url).scheme not in ("http", "https"):
                raise ValueError(
                    f"RPC endpoint {redact_url(url)} is not http(s); websocket endpoints are "
                    "not supported by the chain client, list an http(s) URL instead"
                )
        self._endpoints = [
            _Endpoint(url=url, label=redact_url(url), index=i) for i, url in enumerate(urls)
        ]
        self._chain_id = chain_id
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._retry_preferred_after = retry_preferred_after
        self._active = self._endpoints[0]
        self._last_preferred_try = time.monotonic()
        self._session: aiohttp.ClientSession | None = None

    def __str__(self) -> str:
        return f"RPC failover over {', '.join(e.label for e in self._endpoints)}"

    @property
    def active_endpoint(self) -> str:
        """The endpoint requests go to first right now (redacted)."""
        return self._active.label

    @property
    def endpoints(self) -> list[str]:
        """All endpoints in order of preference (redacted)."""
        return [e.label for e in self._endpoints]

    # -- web3.py provider interface -------------------------------------------------------

    async def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        payload = self.encode_rpc_request(method, params)
        return cast(RPCResponse, await self._send(method, payload))

    async def make_batch_request(
        self, requests: list[tuple[RPCEndpoint, Any]]
    ) -> list[RPCResponse] | RPCResponse:
        payload = self.encode_batch_rpc_request(requests)
        reply = await self._send(RPCEndpoint("batch"), payload)
        if isinstance(reply, list):
            return sorted(
                (cast(RPCResponse, item) for item in reply),
                key=lambda item: int(item.get("id") or 0),
            )
        return cast(RPCResponse, reply)

    async def is_connected(self, show_traceback: bool = False) -> bool:
        try:
            await self.check_chain()
        except (RpcUnavailable, ChainIdMismatch):
            if show_traceback:
                raise
            return False
        return True

    async def disconnect(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # -- chain id --------------------------------------------------------------------------

    async def check_chain(self) -> int:
        """Ask every endpoint for its chain id; fail if any answering one serves another chain.

        Unreachable endpoints are logged and skipped (they are failovers); if none answers,
        raises `RpcUnavailable`. Returns the chain id.
        """
        answered: int | None = None
        for endpoint in self._endpoints:
            try:
                actual = await self._chain_id_of(endpoint)
            except _EndpointFailed as exc:
                log.warning("RPC endpoint %s does not answer: %s", endpoint.label, exc)
                self._mark_down(endpoint)
                continue
            if self._chain_id is not None and actual != self._chain_id:
                raise ChainIdMismatch(self._mismatch_message(endpoint, actual))
            endpoint.verified = True
            answered = actual
        if answered is None:
            raise RpcUnavailable(
                "no RPC endpoint answered eth_chainId: "
                + ", ".join(e.label for e in self._endpoints)
            )
        return answered

    def _mismatch_message(self, endpoint: _Endpoint, actual: int) -> str:
        return (
            f"RPC endpoint {endpoint.label} serves chain id {actual}, but chain.chain_id is "
            f"{self._chain_id}: point chain.rpc_urls at the right network or fix chain.chain_id"
        )

    async def _chain_id_of(self, endpoint: _Endpoint) -> int:
        reply = await self._post(endpoint, self.encode_rpc_request(RPCEndpoint("eth_chainId"), []))
        if not isinstance(reply, dict) or not isinstance(reply.get("result"), str):
            raise _EndpointFailed(f"eth_chainId answered {str(reply)[:200]}")
        return int(reply["result"], 16)

    async def _verify(self, endpoint: _Endpoint) -> None:
        if self._chain_id is None or endpoint.verified:
            return
        actual = await self._chain_id_of(endpoint)
        if actual != self._chain_id:
            log.error("%s; not using it", self._mismatch_message(endpoint, actual))
            raise _EndpointFailed(f"serves chain id {actual}")
        endpoint.verified = True

    # -- failover --------------------------------------------------------------------------

    def _order(self) -> list[_Endpoint]:
        """The active endpoint first (or the preferred one, when due for a retry), then the
        others in order of preference, endpoints that failed recently last."""
        now = time.monotonic()
        first = self._active
        preferred = self._endpoints[0]
        if first is not preferred and now - self._last_preferred_try >= self._retry_preferred_after:
            self._last_preferred_try = now
            first = preferred
        rest = [e for e in self._endpoints if e is not first]
        rest.sort(key=lambda e: (e.down_since is not None, e.index))
        return [first, *rest]

    def _mark_down(self, endpoint: _Endpoint) -> None:
        if endpoint.down_since is None:
            endpoint.down_since = time.monotonic()
        endpoint.verified = False

    def _mark_up(self, endpoint: _Endpoint) -> None:
        endpoint.down_since = None
        if endpoint is not self._active:
            level = logging.INFO if endpoint.index == 0 else logging.WARNING
            log.log(level, "RPC requests now go to %s (was %s)", endpoint.label, self._active.label)
            self._active = endpoint
            self._last_preferred_try = time.monotonic()

    async def _send(self, method: str, payload: bytes) -> Any:
        failures: list[str] = []
        for endpoint in self._order():
            try:
                await self._verify(endpoint)
                reply = await self._post(endpoint, payload)
            except _EndpointFailed as exc:
                self._mark_down(endpoint)
                failures.append(f"{endpoint.label}: {exc}")
                log.debug("RPC %s on %s failed: %s", method, endpoint.label, exc)
                continue
            self._mark_up(endpoint)
            return reply
        raise RpcUnavailable(f"{method}: no RPC endpoint answered ({'; '.join(failures)})")

    async def _post(self, endpoint: _Endpoint, payload: bytes) -> Any:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(endpoint.url, data=payload, headers=_HEADERS) as reply:
                body = await reply.read()
                status = reply.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # Some aiohttp errors quote the URL, and its path may hold an API key.
            detail = str(exc).replace(endpoint.url, endpoint.label)
            raise _EndpointFailed(type(exc).__name__ + (f": {detail}" if detail else "")) from None
        if status >= 500 or status in (401, 403, 404, 429):
            # Server trouble, rate limiting, a wrong path or a refused API key: this endpoint
            # cannot serve any request right now.
            raise _EndpointFailed(f"HTTP {status}")
        try:
            decoded = json.loads(body)
        except ValueError:
            if status == 200:
                raise _EndpointFailed("answer is not JSON") from None
            # A 4xx without a JSON-RPC body (e.g. 413) is about this request, not the
            # endpoint: hand it back as an error so the caller can adapt the request.
            text = body[:200].decode("utf-8", "replace")
            return {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": -status, "message": f"HTTP {status}: {text}"},
            }
        return decoded


async def connect(
    settings: ChainSettings,
    *,
    request_timeout: float | None = None,
    retry_preferred_after: float | None = None,
) -> AsyncWeb3[FailoverProvider]:
    """An `AsyncWeb3` over `settings.rpc_urls`, after checking every endpoint's chain id.

    Timeouts come from the settings unless given here.

    Raises `ChainIdMismatch` when an endpoint serves another chain and `RpcUnavailable` when
    none answers. Close with `await w3.provider.disconnect()`.
    """
    provider = FailoverProvider(
        settings.rpc_urls,
        chain_id=settings.chain_id,
        request_timeout=request_timeout or settings.request_timeout_seconds,
        retry_preferred_after=retry_preferred_after or settings.retry_preferred_after_seconds,
    )
    try:
        await provider.check_chain()
    except BaseException:
        await provider.disconnect()
        raise
    return AsyncWeb3(provider)
