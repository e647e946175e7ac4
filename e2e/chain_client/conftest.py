"""Fixtures for the chain client tests: a fresh instamine anvil per test, the devnet
TestToken deployed on it, and an HTTP proxy in front of anvil that a test can kill.

Test actions (transfers, mining, snapshots) go straight to anvil through `Devchain`; the
code under test goes through `gpu_provider.chain`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from eth_abi import abi as eth_abi
from eth_account import Account
from eth_utils.abi import function_signature_to_4byte_selector

from gpu_provider.chain.artifacts import load_artifact
from gpu_provider.chain.events import Delivery, EventStream
from gpu_provider.chain.rpc import FailoverProvider
from gpu_provider.devnet.anvil import DEFAULT_MNEMONIC, Anvil, free_port

CHAIN_ID = 31337
TOKEN_SUPPLY = 10**27

Account.enable_unaudited_hdwallet_features()


def dev_key(index: int) -> str:
    """Private key (hex) of anvil's well-known test account `index`."""
    account = Account.from_mnemonic(DEFAULT_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return "0x" + bytes(account.key).hex()


def dev_address(index: int) -> str:
    return str(Account.from_key(dev_key(index)).address)


class Devchain:
    """The test's own hands on anvil: raw JSON-RPC, mining, snapshots, token transfers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._session: aiohttp.ClientSession | None = None
        self.token: str = ""
        self.deployed_at = 0

    async def call(self, method: str, *params: Any) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        async with self._session.post(self.url, json=body) as reply:
            answer = await reply.json()
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def head(self) -> int:
        return int(await self.call("eth_blockNumber"), 16)

    async def mine(self, blocks: int = 1) -> None:
        await self.call("anvil_mine", hex(blocks))

    async def automine(self, enabled: bool) -> None:
        await self.call("evm_setAutomine", enabled)

    async def receipt(self, tx_hash: str, within: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while True:
                receipt = await self.call("eth_getTransactionReceipt", tx_hash)
                if receipt is not None:
                    return dict(receipt)
                await asyncio.sleep(0.02)

    async def nonce(self, address: str, block: str = "latest") -> int:
        return int(await self.call("eth_getTransactionCount", address, block), 16)

    async def deploy_token(self) -> str:
        artifact = load_artifact("TestToken")
        args = eth_abi.encode(
            ["string", "string", "uint8", "uint256"], ["Test USD", "TUSD", 18, TOKEN_SUPPLY]
        )
        tx = await self.call(
            "eth_sendTransaction",
            {"from": dev_address(0), "data": artifact.bytecode + args.hex()},
        )
        receipt = await self.receipt(tx)
        self.token = str(receipt["contractAddress"])
        self.deployed_at = int(receipt["blockNumber"], 16)
        return self.token

    async def transfer(self, to: str, amount: int, *, sender: int = 0, wait: bool = True) -> str:
        """A TestToken transfer (one Transfer event); returns the tx hash."""
        tx = await self.call(
            "eth_sendTransaction",
            {"from": dev_address(sender), "to": self.token, "data": transfer_data(to, amount)},
        )
        if wait:
            await self.receipt(tx)
        return str(tx)


def transfer_data(to: str, amount: int) -> str:
    selector = function_signature_to_4byte_selector("transfer(address,uint256)")
    return "0x" + (selector + eth_abi.encode(["address", "uint256"], [to, amount])).hex()


Fault = Callable[[dict[str, Any]], dict[str, Any] | None]


@dataclass
class RpcProxy:
    """An HTTP JSON-RPC proxy in front of anvil that can be stopped, restarted on the same
    port, or told to answer some requests itself (`fault`)."""

    upstream: str
    port: int = field(default_factory=free_port)
    fault: Fault | None = None
    http_status: int | None = None
    requests: int = 0
    answering: asyncio.Event = field(default_factory=asyncio.Event)
    """Cleared: every request hangs unanswered (a node gone silent); set again: answered."""
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/secret-api-key"

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        # Silent: the request is held without an answer (the client's timeout ends it).
        await self.answering.wait()
        if self.http_status is not None:
            return web.Response(status=self.http_status, text="upstream trouble")
        if self.fault is not None:
            request_json = json.loads(body)
            if isinstance(request_json, list):
                answers = [self.fault(item) for item in request_json]
                if any(a is not None for a in answers):
                    pairs = zip(request_json, answers, strict=True)
                    replies = [await self._forward_one(r, a) for r, a in pairs]
                    return web.json_response(replies)
            else:
                answer = self.fault(request_json)
                if answer is not None:
                    return web.json_response(answer)
        assert self._session is not None
        async with self._session.post(
            self.upstream, data=body, headers={"Content-Type": "application/json"}
        ) as reply:
            return web.Response(body=await reply.read(), content_type="application/json")

    async def _forward_one(self, request: dict[str, Any], answer: dict[str, Any] | None) -> Any:
        if answer is not None:
            return answer
        assert self._session is not None
        async with self._session.post(self.upstream, json=request) as reply:
            return await reply.json()

    def __post_init__(self) -> None:
        self.answering.set()

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        self.answering.set()  # held requests end (a stopped proxy refuses, it does not hang)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def close(self) -> None:
        await self.stop()
        if self._session is not None:
            await self._session.close()


@pytest.fixture
def node() -> Iterator[Anvil]:
    """A fresh instamine anvil: a block per transaction, otherwise only when a test mines."""
    with Anvil(block_time=None) as anvil:
        yield anvil


@pytest.fixture
async def devchain(node: Anvil) -> AsyncIterator[Devchain]:
    chain = Devchain(node.url)
    await chain.deploy_token()
    yield chain
    await chain.close()


@pytest.fixture
async def proxy(node: Anvil) -> AsyncIterator[RpcProxy]:
    server = RpcProxy(node.url)
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def provider(node: Anvil) -> AsyncIterator[FailoverProvider]:
    """The chain client's provider, straight to anvil."""
    rpc = FailoverProvider([node.url], chain_id=CHAIN_ID)
    yield rpc
    await rpc.disconnect()


async def take(stream: EventStream, count: int, within: float = 20.0) -> list[Delivery]:
    """The next `count` deliveries that carry an event (progress items are skipped)."""
    out: list[Delivery] = []
    iterator = aiter(stream)
    async with asyncio.timeout(within):
        while len(out) < count:
            item = await anext(iterator)
            if item.event is not None:
                out.append(item)
    return out


async def drain(stream: EventStream, seconds: float) -> list[Delivery]:
    """Every delivery with an event that arrives within `seconds`."""
    out: list[Delivery] = []
    iterator = aiter(stream)
    try:
        async with asyncio.timeout(seconds):
            while True:
                item = await anext(iterator)
                if item.event is not None:
                    out.append(item)
    except TimeoutError:
        pass
    return out


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(0.02)
