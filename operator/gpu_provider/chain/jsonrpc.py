"""Raw JSON-RPC calls through any web3.py async provider: hex strings in and out.

The event stream and the transaction manager call the provider directly instead of going
through `AsyncWeb3.eth`: they need the error object's `data` (revert reasons, nonce errors)
and they handle tens of thousands of logs, where web3.py's result formatting would cost more
than the RPC itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
from web3 import AsyncWeb3
from web3.exceptions import ProviderConnectionError
from web3.providers.async_base import AsyncBaseProvider
from web3.types import RPCEndpoint

from gpu_provider.chain.errors import RpcError, RpcRateLimited, RpcUnavailable
from gpu_provider.chain.rpcerrors import RpcErrorKind, classify, retry_after_hint

RawLog = Mapping[str, Any]
"""One entry of an `eth_getLogs` answer, as the node sent it."""


@dataclass(frozen=True, slots=True)
class Header:
    """The parts of a block header the chain client uses."""

    number: int
    hash: str
    parent_hash: str
    timestamp: int
    base_fee_per_gas: int | None
    logs_bloom: str | None = None
    """The block's 2048-bit log bloom (hex), for checking an `eth_getLogs` answer."""

    @classmethod
    def from_rpc(cls, block: Mapping[str, Any]) -> Header:
        base_fee = block.get("baseFeePerGas")
        bloom = block.get("logsBloom")
        return cls(
            number=int(block["number"], 16),
            hash=str(block["hash"]).lower(),
            parent_hash=str(block["parentHash"]).lower(),
            timestamp=int(block["timestamp"], 16),
            base_fee_per_gas=int(base_fee, 16) if base_fee is not None else None,
            logs_bloom=bloom if isinstance(bloom, str) else None,
        )


def block_tag(block: int | str) -> str:
    """A block number as the JSON-RPC quantity, or a tag (`latest`, `pending`, ...) as is."""
    return hex(block) if isinstance(block, int) else block


def _header(method: str, raw: Any) -> Header | None:
    if raw is None:
        return None
    try:
        return Header.from_rpc(raw)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise RpcError(method, 0, f"malformed block in the reply: {exc!r}") from exc


class Rpc:
    """Typed helpers over `provider.make_request`; errors become `RpcError`/`RpcUnavailable`."""

    def __init__(self, provider: AsyncBaseProvider) -> None:
        self.provider = provider

    @classmethod
    def of(cls, w3: AsyncWeb3[Any]) -> Rpc:
        return cls(cast(AsyncBaseProvider, w3.provider))

    async def call(self, method: str, *params: Any) -> Any:
        try:
            response = await self.provider.make_request(RPCEndpoint(method), list(params))
        except RpcUnavailable:
            raise
        except (ProviderConnectionError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise RpcUnavailable(f"{method}: {type(exc).__name__}: {exc}") from exc
        return _result(method, response)

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Several calls in one JSON-RPC batch (one HTTP round trip); results in order.

        Raises the `RpcError` of the first call that failed.
        """
        requests = [(RPCEndpoint(method), list(params)) for method, params in calls]
        try:
            replies = await self.provider.make_batch_request(requests)
        except RpcUnavailable:
            raise
        except (ProviderConnectionError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise RpcUnavailable(f"batch: {type(exc).__name__}: {exc}") from exc
        if not isinstance(replies, list) or len(replies) != len(calls):
            error = replies.get("error") if isinstance(replies, Mapping) else None
            if isinstance(error, Mapping):
                _raise_if_rate_limited("batch", error)
            raise RpcError("batch", 0, f"node refused the batch: {error or replies!r}"[:300])
        return [_result(method, reply) for (method, _), reply in zip(calls, replies, strict=True)]

    async def chain_id(self) -> int:
        return int(await self.call("eth_chainId"), 16)

    async def block_number(self) -> int:
        return int(await self.call("eth_blockNumber"), 16)

    async def header(self, block: int | str) -> Header | None:
        raw = await self.call("eth_getBlockByNumber", block_tag(block), False)
        return _header("eth_getBlockByNumber", raw)

    async def header_by_hash(self, block_hash: str) -> Header | None:
        raw = await self.call("eth_getBlockByHash", block_hash, False)
        return _header("eth_getBlockByHash", raw)

    async def get_logs(
        self,
        *,
        addresses: Sequence[str],
        topics: Sequence[Sequence[str] | str | None],
        from_block: int | None = None,
        to_block: int | None = None,
        block_hash: str | None = None,
    ) -> list[RawLog]:
        query: dict[str, Any] = {
            "address": list(addresses),
            "topics": [
                list(t) if isinstance(t, Sequence) and not isinstance(t, str) else t for t in topics
            ],
        }
        if block_hash is not None:
            query["blockHash"] = block_hash
        else:
            query["fromBlock"] = block_tag(from_block if from_block is not None else "earliest")
            query["toBlock"] = block_tag(to_block if to_block is not None else "latest")
        return cast(list[RawLog], await self.call("eth_getLogs", query))

    async def transaction_count(self, address: str, block: int | str = "latest") -> int:
        return int(await self.call("eth_getTransactionCount", address, block_tag(block)), 16)

    async def receipt(self, tx_hash: str) -> Mapping[str, Any] | None:
        return cast(Mapping[str, Any] | None, await self.call("eth_getTransactionReceipt", tx_hash))


def _result(method: str, reply: Mapping[str, Any]) -> Any:
    """A JSON-RPC reply's result, or its error as `RpcError`."""
    error = reply.get("error")
    if error is None:
        return reply.get("result")
    if isinstance(error, Mapping):
        _raise_if_rate_limited(method, error)
        raise RpcError(
            method, int(error.get("code", 0)), str(error.get("message", "")), error.get("data")
        )
    raise RpcError(method, 0, str(error))


def _raise_if_rate_limited(method: str, error: Mapping[str, Any]) -> None:
    """A rate-limit answer means nothing was done: `RpcRateLimited`, retried like an outage."""
    code, message = error.get("code", 0), str(error.get("message", ""))
    if isinstance(code, int) and classify(code, message) is RpcErrorKind.RATE_LIMITED:
        raise RpcRateLimited(
            f"{method}: rate limited: {message[:200]} (code {code})",
            retry_after=retry_after_hint(message, error.get("data")),
        )
