"""A scripted chain behind a real HTTP JSON-RPC server on 127.0.0.1, for driving the real
`FailoverProvider`, `Rpc` and `EventStream` through the answers real backends give: a log
index that lags the headers, dropped logs, rate limits, reordered answers and reorgs.

Blocks carry `Ping(uint256 value)` logs from one contract; `logsBloom` is computed as a node
computes it, so the stream's bloom check sees what it would see on a real chain.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from eth_utils.crypto import keccak

from gpu_provider.devnet.anvil import free_port

EMITTER = "0x" + "ee" * 20
PING_ABI: list[dict[str, Any]] = [
    {
        "type": "event",
        "name": "Ping",
        "anonymous": False,
        "inputs": [{"name": "value", "type": "uint256", "indexed": False}],
    }
]
PING_TOPIC = "0x" + keccak(b"Ping(uint256)").hex()
CHAIN_ID = 31337


def bloom_of(items: list[bytes]) -> str:
    bloom = 0
    for item in items:
        digest = keccak(item)
        for i in (0, 2, 4):
            bloom |= 1 << (int.from_bytes(digest[i : i + 2], "big") & 2047)
    return "0x" + bloom.to_bytes(256, "big").hex()


@dataclass
class Block:
    number: int
    hash: str
    parent: str
    values: list[int]

    def logs(self) -> list[dict[str, Any]]:
        return [
            {
                "address": EMITTER,
                "topics": [PING_TOPIC],
                "data": "0x" + value.to_bytes(32, "big").hex(),
                "blockNumber": hex(self.number),
                "blockHash": self.hash,
                "transactionHash": "0x" + hashlib.sha256(f"{self.hash}{i}".encode()).hexdigest(),
                "transactionIndex": hex(i),
                "logIndex": hex(i),
                "removed": False,
            }
            for i, value in enumerate(self.values)
        ]

    def header(self) -> dict[str, Any]:
        items = [bytes.fromhex(EMITTER[2:]), bytes.fromhex(PING_TOPIC[2:])] if self.values else []
        return {
            "number": hex(self.number),
            "hash": self.hash,
            "parentHash": self.parent,
            "timestamp": hex(1_700_000_000 + 2 * self.number),
            "baseFeePerGas": hex(10**9),
            "logsBloom": bloom_of(items),
        }


@dataclass
class Throttle:
    """Answer the next `count` HTTP requests with a rate limit instead of serving them."""

    count: int
    http: bool = True  # HTTP 429 with Retry-After, else a JSON-RPC -32005 error
    retry_after: str | None = "0"


@dataclass
class ScriptedChain:
    blocks: list[Block] = field(default_factory=list)
    log_lag: int = 0
    """Range `eth_getLogs` answers as a node whose log index is this many blocks behind."""
    drop: set[int] = field(default_factory=set)
    """Blocks whose logs range answers leave out (by-hash answers still hold them)."""
    reorder: bool = False
    """Shuffle logs in range answers and reverse batch replies."""
    behind: int = 0
    """Every other HTTP request is served by a backend this many blocks behind the head (a
    load balancer over nodes that are not in step)."""
    too_large_over: int | None = None
    """Refuse `eth_getLogs` ranges wider than this with Infura's "more than 10000 results"."""
    throttles: list[Throttle] = field(default_factory=list)
    throttle_when: Callable[[list[dict[str, Any]]], bool] = lambda _: True
    requests: list[tuple[float, str, list[Any]]] = field(default_factory=list)
    throttled_at: list[float] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    _fork: int = 0
    _served: int = 0
    _view: int = 0
    _runner: web.AppRunner | None = None
    _random: random.Random = field(default_factory=lambda: random.Random(7))

    def __post_init__(self) -> None:
        if not self.blocks:
            self.blocks.append(Block(0, self._hash(0), "0x" + "00" * 32, []))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2/secret-api-key"

    @property
    def head(self) -> int:
        return self.blocks[-1].number

    def _hash(self, number: int) -> str:
        return "0x" + hashlib.sha256(f"{self._fork}:{number}".encode()).hexdigest()

    def mine(self, count: int = 1, values: list[int] | None = None) -> Block:
        """Mine `count` blocks; the last one holds a Ping per value."""
        for i in range(count):
            number = self.head + 1
            held = list(values or []) if i == count - 1 else []
            self.blocks.append(Block(number, self._hash(number), self.blocks[-1].hash, held))
        return self.blocks[-1]

    def reorg(self, depth: int, replacement: list[list[int]]) -> None:
        """Replace the newest `depth` blocks with a fork holding `replacement` (one list of
        values per new block; at least `depth` blocks so the fork is the longer chain)."""
        self._fork += 1
        del self.blocks[len(self.blocks) - depth :]
        for values in replacement:
            self.mine(1, values)

    def getlogs_spans(self) -> list[int]:
        return [
            int(p[0]["toBlock"], 16) - int(p[0]["fromBlock"], 16) + 1
            for _, m, p in self.requests
            if m == "eth_getLogs" and "fromBlock" in p[0]
        ]

    # -- JSON-RPC ------------------------------------------------------------------------------

    def _block(self, tag: str) -> Block | None:
        number = self._view if tag == "latest" else int(tag, 16)
        return self.blocks[number] if 0 <= number <= self._view else None

    def _by_hash(self, block_hash: str) -> Block | None:
        found = [b for b in self.blocks[: self._view + 1] if b.hash == block_hash]
        return found[0] if found else None

    def _logs(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        if "blockHash" in query:
            block = self._by_hash(query["blockHash"])
            if block is None:
                raise LookupError(f"unknown block {query['blockHash']}")
            return block.logs()
        start, end = int(query["fromBlock"], 16), int(query["toBlock"], 16)
        if self.too_large_over is not None and end - start + 1 > self.too_large_over:
            raise OverflowError("query returned more than 10000 results")
        indexed = self._view - self.log_lag
        out = [
            entry
            for block in self.blocks[start : min(end, self._view) + 1]
            if block.number <= indexed and block.number not in self.drop
            for entry in block.logs()
        ]
        if self.reorder:
            self._random.shuffle(out)
        return out

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        method, params = request["method"], request.get("params", [])
        self.requests.append((time.monotonic(), method, params))
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request.get("id")}
        try:
            if method == "eth_chainId":
                reply["result"] = hex(CHAIN_ID)
            elif method == "eth_blockNumber":
                reply["result"] = hex(self._view)
            elif method == "eth_getBlockByNumber":
                block = self._block(params[0])
                reply["result"] = block.header() if block else None
            elif method == "eth_getBlockByHash":
                block = self._by_hash(params[0])
                reply["result"] = block.header() if block else None
            elif method == "eth_getLogs":
                reply["result"] = self._logs(params[0])
            else:
                reply["error"] = {"code": -32601, "message": f"method {method} not found"}
        except OverflowError as exc:
            reply["error"] = {"code": -32005, "message": str(exc)}
        except LookupError as exc:
            reply["error"] = {"code": -32000, "message": str(exc)}
        return reply

    async def _handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        calls = body if isinstance(body, list) else [body]
        self._served += 1
        lagging = self.behind and self._served % 2 == 0
        self._view = max(0, self.head - self.behind) if lagging else self.head
        if self.throttles and self.throttle_when(calls):
            throttle = self.throttles[0]
            throttle.count -= 1
            if throttle.count <= 0:
                self.throttles.pop(0)
            self.throttled_at.append(time.monotonic())
            headers = {"Retry-After": throttle.retry_after} if throttle.retry_after else {}
            if throttle.http:
                error = {"code": 429, "message": "Too Many Requests"}
                answer = {"jsonrpc": "2.0", "id": calls[0].get("id"), "error": error}
                return web.json_response(answer, status=429, headers=headers)
            error = {
                "code": -32005,
                "message": "daily request count exceeded, request rate limited",
            }
            replies = [{"jsonrpc": "2.0", "id": c.get("id"), "error": error} for c in calls]
            return web.json_response(replies if isinstance(body, list) else replies[0])
        replies = [self.answer(call) for call in calls]
        if isinstance(body, list):
            return web.json_response(replies[::-1] if self.reorder else replies)
        return web.json_response(replies[0])

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@dataclass
class SilentServer:
    """Accepts connections and never answers: an endpoint that has gone silent."""

    port: int = field(default_factory=free_port)
    requests: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/silent"

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
