"""JSON-RPC over HTTP across several endpoints, in order of preference, on one chain.

`FailoverProvider` is a web3.py provider, so `AsyncWeb3(FailoverProvider(...))` and everything
built on it (contracts, the event stream, the transaction manager) fail over together.

- Each request goes to the most preferred endpoint that is up. It moves to the next one when
  an endpoint does not answer (connection error, timeout, HTTP 5xx, 401, 403 or 404); a
  JSON-RPC error object is an answer and is returned as is.
- An endpoint that failed is a tripped circuit breaker: requests skip it, and after
  `retry_preferred_after` seconds (doubling while it stays dead) it is probed with
  `eth_chainId` under the short `probe_timeout`, so a silent endpoint costs a probe now and
  then, not a full request timeout on every call.
- A rate limit (HTTP 429, or a JSON-RPC rate-limit answer) is not a failure: the endpoint is
  left alone until its `Retry-After` has passed, meanwhile others serve; when every endpoint
  is rate limiting, `RpcRateLimited` says how long to wait.
- Before an endpoint serves its first request (and again after it failed) its chain id is
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

from gpu_provider.chain.errors import ChainIdMismatch, RpcRateLimited, RpcUnavailable
from gpu_provider.chain.rpcerrors import (
    RpcErrorKind,
    classify,
    parse_retry_after,
    retry_after_hint,
)
from gpu_provider.config import ChainSettings

log = logging.getLogger(__name__)

_HEADERS: Final = {"Content-Type": "application/json", "Accept": "application/json"}
DEFAULT_REQUEST_TIMEOUT: Final = 30.0
DEFAULT_RETRY_PREFERRED_AFTER: Final = 30.0
DEFAULT_PROBE_TIMEOUT: Final = 3.0
# A dead endpoint's pause between probes doubles up to this many times the first pause.
_MAX_BACKOFF_FACTOR: Final = 8
# A 429 without a usable Retry-After leaves the endpoint alone this long.
_DEFAULT_RETRY_AFTER: Final = 1.0
_MAX_RETRY_AFTER: Final = 300.0


def redact_url(url: str) -> str:
    """scheme://host[:port] only: RPC URLs often carry an API key in the path or query."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


class _EndpointFailed(Exception):
    """This endpoint did not answer usefully; try the next one."""


class _Throttled(Exception):
    """This endpoint is rate limiting; leave it alone for `retry_after` seconds."""

    def __init__(self, detail: str, retry_after: float | None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


@dataclass
class _Endpoint:
    url: str
    label: str
    index: int
    verified: bool = False
    down_since: float | None = None
    probe_at: float = 0.0
    backoff: float = 0.0
    throttled_until: float = 0.0


def _rate_limit_of(reply: Any) -> _Throttled | None:
    """A JSON-RPC rate-limit answer (alone, or anywhere in a batch), as `_Throttled`."""
    for item in reply if isinstance(reply, list) else [reply]:
        error = item.get("error") if isinstance(item, dict) else None
        if not isinstance(error, dict):
            continue
        code, message = error.get("code", 0), str(error.get("message", ""))
        if isinstance(code, int) and classify(code, message) is RpcErrorKind.RATE_LIMITED:
            hint = retry_after_hint(message, error.get("data"))
            return _Throttled(f"rate limited: {message[:120]}", hint)
    return None


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
        probe_timeout: float = DEFAULT_PROBE_TIMEOUT,
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
        self._probe_timeout = aiohttp.ClientTimeout(total=min(probe_timeout, request_timeout))
        self._retry_preferred_after = retry_preferred_after
        self._active = self._endpoints[0]
        self._session: aiohttp.ClientSession | None = None

    def __str__(self) -> str:
        return f"RPC failover over {', '.join(e.label for e in self._endpoints)}"

    @property
    def active_endpoint(self) -> str:
        """The endpoint that answered last (redacted)."""
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
            except _Throttled as exc:
                wait = self._throttle(endpoint, exc.retry_after)
                log.warning("RPC endpoint %s is rate limiting for %.1f s", endpoint.label, wait)
                continue
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
        # eth_chainId needs no work from the node: an endpoint slower than the probe timeout
        # to answer it is as good as silent.
        payload = self.encode_rpc_request(RPCEndpoint("eth_chainId"), [])
        reply = await self._post(endpoint, payload, self._probe_timeout)
        if not isinstance(reply, dict) or not isinstance(reply.get("result"), str):
            raise _EndpointFailed(f"eth_chainId answered {str(reply)[:200]}")
        return int(reply["result"], 16)

    async def _verify(self, endpoint: _Endpoint) -> None:
        """Probe an endpoint that is unverified or down: it answers, on the right chain."""
        if endpoint.verified and endpoint.down_since is None:
            return
        actual = await self._chain_id_of(endpoint)
        if self._chain_id is not None and actual != self._chain_id:
            log.error("%s; not using it", self._mismatch_message(endpoint, actual))
            raise _EndpointFailed(f"serves chain id {actual}")
        endpoint.verified = True

    # -- failover --------------------------------------------------------------------------

    def _order(self, now: float) -> list[_Endpoint]:
        """Endpoints to try, by preference: those up, and those down whose next probe is due.

        When none qualifies and none is rate limiting, every endpoint is tried (with a probe
        first): there is nothing better to do than to look.
        """
        usable = [
            e
            for e in self._endpoints
            if e.throttled_until <= now and (e.down_since is None or e.probe_at <= now)
        ]
        if usable or any(e.throttled_until > now for e in self._endpoints):
            return usable
        return sorted(self._endpoints, key=lambda e: e.probe_at)

    def _mark_down(self, endpoint: _Endpoint) -> None:
        now = time.monotonic()
        base = self._retry_preferred_after
        if endpoint.down_since is None:
            endpoint.down_since = now
            endpoint.backoff = base
        else:
            endpoint.backoff = min(endpoint.backoff * 2, base * _MAX_BACKOFF_FACTOR)
        endpoint.probe_at = now + endpoint.backoff
        endpoint.verified = False

    def _mark_up(self, endpoint: _Endpoint) -> None:
        if endpoint.down_since is not None:
            log.info("RPC endpoint %s answers again", endpoint.label)
        endpoint.down_since = None
        if endpoint is not self._active:
            level = logging.INFO if endpoint.index == 0 else logging.WARNING
            log.log(level, "RPC requests now go to %s (was %s)", endpoint.label, self._active.label)
            self._active = endpoint

    def _throttle(self, endpoint: _Endpoint, wait: float | None) -> float:
        wait = min(_DEFAULT_RETRY_AFTER if wait is None else wait, _MAX_RETRY_AFTER)
        endpoint.throttled_until = max(endpoint.throttled_until, time.monotonic() + wait)
        return wait

    async def _send(self, method: str, payload: bytes) -> Any:
        failures: list[str] = []
        now = time.monotonic()
        for endpoint in self._order(now):
            try:
                await self._verify(endpoint)
                reply = await self._post(endpoint, payload, self._timeout)
                throttled = _rate_limit_of(reply)
                if throttled is not None:
                    raise throttled
            except _Throttled as exc:
                wait = self._throttle(endpoint, exc.retry_after)
                failures.append(f"{endpoint.label}: {exc} (retry after {wait:.1f} s)")
                continue
            except _EndpointFailed as exc:
                self._mark_down(endpoint)
                failures.append(f"{endpoint.label}: {exc}")
                log.debug("RPC %s on %s failed: %s", method, endpoint.label, exc)
                continue
            self._mark_up(endpoint)
            return reply
        now = time.monotonic()
        waits = [e.throttled_until - now for e in self._endpoints if e.throttled_until > now]
        if waits and len(waits) + sum(e.down_since is not None for e in self._endpoints) >= len(
            self._endpoints
        ):
            detail = "; ".join(failures) or "every endpoint asked to wait"
            raise RpcRateLimited(f"{method}: rate limited ({detail})", retry_after=min(waits))
        raise RpcUnavailable(
            f"{method}: no RPC endpoint answered ({'; '.join(failures) or 'all down'})"
        )

    async def _post(self, endpoint: _Endpoint, payload: bytes, limit: aiohttp.ClientTimeout) -> Any:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(
                endpoint.url, data=payload, headers=_HEADERS, timeout=limit
            ) as reply:
                body = await reply.read()
                status = reply.status
                retry_after = reply.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # Some aiohttp errors quote the URL, and its path may hold an API key.
            detail = str(exc).replace(endpoint.url, endpoint.label)
            raise _EndpointFailed(type(exc).__name__ + (f": {detail}" if detail else "")) from None
        if status == 429:
            wait = parse_retry_after(retry_after, time.time()) if retry_after else None
            if wait is None:
                wait = _rate_limit_hint(body)
            raise _Throttled("HTTP 429", wait)
        if status >= 500 or status in (401, 403, 404):
            # Server trouble, a wrong path or a refused API key: this endpoint cannot serve
            # any request right now.
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


def _rate_limit_hint(body: bytes) -> float | None:
    """A wait suggested in a 429's JSON-RPC body, when the Retry-After header is missing."""
    try:
        throttled = _rate_limit_of(json.loads(body))
    except ValueError:
        return None
    return throttled.retry_after if throttled is not None else None


async def connect(
    settings: ChainSettings,
    *,
    request_timeout: float | None = None,
    retry_preferred_after: float | None = None,
    probe_timeout: float | None = None,
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
        probe_timeout=probe_timeout or settings.rpc_probe_timeout_seconds,
    )
    try:
        await provider.check_chain()
    except BaseException:
        await provider.disconnect()
        raise
    return AsyncWeb3(provider)
