"""RPC failover against scripted endpoints: a rate-limited endpoint is waited for as its
`Retry-After` says, not dropped, and a silent one costs a short probe, not a full request
timeout on every call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from gpu_provider.chain.errors import RpcRateLimited, RpcUnavailable
from gpu_provider.chain.jsonrpc import Rpc
from gpu_provider.chain.rpc import FailoverProvider
from tests.chain.scripted import CHAIN_ID, ScriptedChain, SilentServer, Throttle


@pytest.fixture
async def primary() -> AsyncIterator[ScriptedChain]:
    chain = ScriptedChain()
    await chain.start()
    yield chain
    await chain.stop()


@pytest.fixture
async def backup() -> AsyncIterator[ScriptedChain]:
    chain = ScriptedChain()
    chain.mine(5)
    await chain.start()
    yield chain
    await chain.stop()


@pytest.fixture
async def silent() -> AsyncIterator[SilentServer]:
    server = SilentServer()
    await server.start()
    yield server
    await server.stop()


def served(chain: ScriptedChain, method: str = "eth_blockNumber") -> int:
    return sum(1 for _, m, _ in chain.requests if m == method)


async def test_a_rate_limited_endpoint_is_waited_for_not_marked_dead(
    primary: ScriptedChain,
) -> None:
    provider = FailoverProvider([primary.url], chain_id=CHAIN_ID, retry_preferred_after=60)
    rpc = Rpc(provider)
    try:
        await rpc.block_number()
        primary.throttles = [Throttle(1, retry_after="0.4")]

        with pytest.raises(RpcRateLimited) as caught:
            await rpc.block_number()
        assert caught.value.retry_after == pytest.approx(0.4, abs=0.05)
        asked = served(primary)
        # Within Retry-After nothing is sent to it; the caller is told how long to wait.
        with pytest.raises(RpcRateLimited) as again:
            await rpc.block_number()
        assert served(primary) == asked
        assert again.value.retry_after is not None
        assert 0 < again.value.retry_after <= 0.4

        deadline = time.monotonic() + 5
        while True:
            try:
                assert await rpc.block_number() == 0
                break
            except RpcRateLimited as exc:
                assert time.monotonic() < deadline, "the endpoint was never used again"
                await _wait(exc.retry_after or 0.05)
        assert provider.active_endpoint == f"http://127.0.0.1:{primary.port}"
    finally:
        await provider.disconnect()


async def test_a_rate_limited_preferred_endpoint_is_used_again_after_retry_after(
    primary: ScriptedChain, backup: ScriptedChain
) -> None:
    provider = FailoverProvider(
        [primary.url, backup.url], chain_id=CHAIN_ID, retry_preferred_after=60
    )
    rpc = Rpc(provider)
    try:
        primary.throttles = [Throttle(1, retry_after="0.3")]
        assert await rpc.block_number() == 5  # the backup answered meanwhile
        started = time.monotonic()
        while await rpc.block_number() != 0:  # back on the preferred one, long before 60 s
            assert time.monotonic() - started < 5, "the preferred endpoint was not used again"
            await _wait(0.02)
        assert time.monotonic() - started >= 0.25
    finally:
        await provider.disconnect()


async def test_a_silent_preferred_endpoint_costs_a_short_probe_not_a_request_timeout(
    silent: SilentServer, backup: ScriptedChain
) -> None:
    provider = FailoverProvider(
        [silent.url, backup.url],
        chain_id=CHAIN_ID,
        request_timeout=3,
        retry_preferred_after=0.1,
        probe_timeout=0.2,
    )
    rpc = Rpc(provider)
    try:
        assert await rpc.block_number() == 5
        slowest = 0.0
        started = time.monotonic()
        while time.monotonic() - started < 1.5:
            began = time.monotonic()
            assert await rpc.block_number() == 5
            slowest = max(slowest, time.monotonic() - began)
            await _wait(0.02)
        assert slowest < 1.0, f"a call took {slowest:.2f} s: the silent endpoint was not skipped"
        # Probed again with growing pauses, not on every call.
        assert 1 <= silent.requests <= 6
    finally:
        await provider.disconnect()


async def test_no_endpoint_answering_is_still_unavailable(silent: SilentServer) -> None:
    provider = FailoverProvider([silent.url], chain_id=CHAIN_ID, probe_timeout=0.1)
    try:
        with pytest.raises(RpcUnavailable, match="no RPC endpoint answered"):
            await Rpc(provider).block_number()
    finally:
        await provider.disconnect()


async def _wait(seconds: float) -> None:
    await asyncio.sleep(seconds)
