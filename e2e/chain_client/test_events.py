"""The event stream delivers every confirmed event exactly once: across a restart from a
persisted checkpoint, across an RPC endpoint dying mid-stream, and across reorgs."""

from __future__ import annotations

from typing import Any

import pytest

from e2e.chain_client.conftest import (
    CHAIN_ID,
    Devchain,
    RpcProxy,
    dev_address,
    drain,
    eventually,
    take,
)
from gpu_provider.chain.artifacts import load_artifact
from gpu_provider.chain.errors import ReorgBeyondConfirmations
from gpu_provider.chain.eventroutes import Routes
from gpu_provider.chain.events import (
    Checkpoint,
    Delivery,
    EventSource,
    EventStream,
    arg_equals,
)
from gpu_provider.chain.jsonrpc import Rpc
from gpu_provider.chain.rpc import FailoverProvider

ALICE, BOB, CAROL = dev_address(1), dev_address(2), dev_address(3)


def transfers_of(devchain: Devchain, **where: Any) -> EventSource:
    filters = {"Transfer": arg_equals(*next(iter(where.items())))} if where else {}
    return EventSource(devchain.token, load_artifact("TestToken").abi, ["Transfer"], filters)


def stream(
    provider: FailoverProvider,
    devchain: Devchain,
    checkpoint: Checkpoint,
    *,
    confirmations: int = 0,
    **where: Any,
) -> EventStream:
    return EventStream(
        Rpc(provider),
        [transfers_of(devchain, **where)],
        checkpoint,
        confirmations=confirmations,
        log_range=5,
        poll_interval=0.05,
    )


def amounts(items: list[Delivery]) -> list[int]:
    return [item.event.args["value"] for item in items if item.event is not None]


async def transfers_in_one_block(devchain: Devchain, values: list[int], to: str = ALICE) -> None:
    await devchain.automine(False)
    for value in values:
        await devchain.transfer(to, value, wait=False)
    await devchain.mine()
    await devchain.automine(True)


async def test_delivers_decoded_events_in_chain_order(
    devchain: Devchain, provider: FailoverProvider
) -> None:
    await devchain.transfer(ALICE, 1)
    await transfers_in_one_block(devchain, [2, 3, 4])
    await devchain.transfer(BOB, 5)

    items = await take(stream(provider, devchain, Checkpoint(devchain.deployed_at)), 5)

    assert amounts(items) == [1, 2, 3, 4, 5]
    first = items[0].event
    assert first is not None
    assert first.name == "Transfer"
    assert first.args == {"from": dev_address(0), "to": ALICE, "value": 1}
    assert first.address.lower() == devchain.token.lower()
    assert items[0].checkpoint == first.checkpoint
    assert len({(i.checkpoint.block_number, i.checkpoint.log_index) for i in items}) == 5


async def test_filters_events_in_python(devchain: Devchain, provider: FailoverProvider) -> None:
    for value, to in [(1, ALICE), (2, BOB), (3, ALICE.lower()), (4, CAROL)]:
        await devchain.transfer(to, value)

    items = await take(stream(provider, devchain, Checkpoint(devchain.deployed_at), to=ALICE), 2)

    assert amounts(items) == [1, 3]


async def test_restart_from_checkpoint_delivers_each_event_once(
    devchain: Devchain, provider: FailoverProvider
) -> None:
    await devchain.transfer(ALICE, 1)
    await transfers_in_one_block(devchain, [2, 3, 4])
    for value in (5, 6):
        await devchain.transfer(ALICE, value)

    handled: list[int] = []
    persisted = Checkpoint(devchain.deployed_at)
    first = stream(provider, devchain, persisted)
    async for item in first:
        if item.event is not None:
            handled.append(item.event.args["value"])
        persisted = item.checkpoint  # persisted after handling
        if handled == [1, 2]:
            break  # the process dies halfway through a block's events
    assert persisted.log_index is not None

    await transfers_in_one_block(devchain, [7, 8])
    second = stream(provider, devchain, Checkpoint.from_dict(persisted.to_dict()))
    handled += amounts(await take(second, 6))
    handled += amounts(await drain(second, 0.5))

    assert handled == [1, 2, 3, 4, 5, 6, 7, 8]


async def test_progress_checkpoints_skip_blocks_already_read(
    devchain: Devchain, provider: FailoverProvider
) -> None:
    await devchain.transfer(ALICE, 1)
    await devchain.mine(20)
    first = stream(provider, devchain, Checkpoint(devchain.deployed_at))
    await take(first, 1)
    await drain(first, 0.3)
    assert first.checkpoint.block_number == await devchain.head()
    assert first.checkpoint.log_index is None

    await devchain.transfer(ALICE, 2)
    second = stream(provider, devchain, first.checkpoint)

    assert amounts(await take(second, 1)) == [2]


async def test_survives_an_rpc_endpoint_dying_mid_stream(
    devchain: Devchain, proxy: RpcProxy, node: Any
) -> None:
    provider = FailoverProvider([proxy.url, node.url], chain_id=CHAIN_ID, retry_preferred_after=0.5)
    events = stream(provider, devchain, Checkpoint(devchain.deployed_at))
    try:
        for value in range(1, 11):
            await devchain.transfer(ALICE, value)
        handled = amounts(await take(events, 5))
        assert provider.active_endpoint == f"http://127.0.0.1:{proxy.port}"

        await proxy.stop()
        for value in range(11, 21):
            await devchain.transfer(ALICE, value)
        handled += amounts(await take(events, 15))
        handled += amounts(await drain(events, 0.3))

        assert handled == list(range(1, 21))
        assert provider.active_endpoint == node.url

        # The preferred endpoint comes back and is used again once its next probe is due
        # (`retry_preferred_after`, doubled for each probe that failed while it was down).
        await proxy.start()
        served = proxy.requests

        async def back_on_the_proxy() -> bool:
            await events.poll()
            return provider.active_endpoint == f"http://127.0.0.1:{proxy.port}"

        await eventually(back_on_the_proxy)
        await devchain.transfer(ALICE, 21)
        assert amounts(await take(events, 1)) == [21]
        assert proxy.requests > served
    finally:
        await provider.disconnect()


async def test_shrinks_the_log_range_when_the_node_refuses_a_large_one(
    devchain: Devchain, proxy: RpcProxy
) -> None:
    def limit_ranges(request: dict[str, Any]) -> dict[str, Any] | None:
        if request["method"] == "eth_getLogs":
            query = request["params"][0]
            if int(query["toBlock"], 16) - int(query["fromBlock"], 16) + 1 > 3:
                error = {"code": -32005, "message": "query returned more than 10000 results"}
                return {"jsonrpc": "2.0", "id": request["id"], "error": error}
        return None

    proxy.fault = limit_ranges
    for value in range(1, 13):
        await devchain.transfer(ALICE, value)
    provider = FailoverProvider([proxy.url], chain_id=CHAIN_ID)
    try:
        events = EventStream(
            Rpc(provider),
            [transfers_of(devchain)],
            Checkpoint(devchain.deployed_at),
            confirmations=0,
            log_range=50,
            poll_interval=0.05,
        )
        assert amounts(await take(events, 12)) == list(range(1, 13))
    finally:
        await provider.disconnect()


async def test_reorg_rolls_back_unconfirmed_events_and_delivers_replacements_once(
    devchain: Devchain, provider: FailoverProvider
) -> None:
    events = stream(provider, devchain, Checkpoint(devchain.deployed_at), confirmations=3)
    await devchain.transfer(ALICE, 1)
    await devchain.transfer(ALICE, 2)
    await devchain.mine(3)
    delivered = amounts(await take(events, 2))
    assert delivered == [1, 2]

    snapshot = await devchain.call("evm_snapshot")
    await devchain.transfer(ALICE, 3)
    await devchain.transfer(ALICE, 4)
    await devchain.mine(1)

    async def seen_unconfirmed() -> bool:
        await events.poll()
        return [e.args["value"] for e in events.unconfirmed_events] == [3, 4]

    await eventually(seen_unconfirmed)

    # The two blocks holding 3 and 4 are replaced by a fork holding 5 instead.
    assert await devchain.call("evm_revert", snapshot)
    await devchain.transfer(BOB, 5)
    await devchain.mine(5)
    delivered += amounts(await take(events, 1))
    delivered += amounts(await drain(events, 0.5))

    assert delivered == [1, 2, 5]
    assert events.unconfirmed_events == []


async def test_reorg_below_delivered_events_stops_the_stream(
    devchain: Devchain, provider: FailoverProvider
) -> None:
    snapshot = await devchain.call("evm_snapshot")
    await devchain.transfer(ALICE, 1)
    await devchain.mine(2)
    events = stream(provider, devchain, Checkpoint(devchain.deployed_at), confirmations=1)
    assert amounts(await take(events, 1)) == [1]
    await drain(events, 0.2)

    assert await devchain.call("evm_revert", snapshot)
    await devchain.transfer(BOB, 2)
    await devchain.mine(5)

    with pytest.raises(ReorgBeyondConfirmations) as caught:
        await take(events, 1)
    assert "restart the stream from block" in str(caught.value)
    assert caught.value.resume_from < await devchain.head()
    assert caught.value.block_number is not None
    assert caught.value.ours != caught.value.theirs


async def test_checkpoint_from_another_chain_is_refused(
    devchain: Devchain, provider: FailoverProvider
) -> None:
    await devchain.transfer(ALICE, 1)
    await devchain.mine(3)
    foreign = Checkpoint(2, "0x" + "ab" * 32)

    with pytest.raises(ReorgBeyondConfirmations):
        await take(stream(provider, devchain, foreign), 1)


async def test_header_blooms_show_the_streamed_events(
    devchain: Devchain, provider: FailoverProvider
) -> None:
    """The completeness check reads anvil's `logsBloom` the way the stream's filter needs."""
    await devchain.transfer(ALICE, 1)
    await devchain.mine(1)
    rpc = Rpc(provider)
    routes = Routes([transfers_of(devchain)])
    with_transfer = await rpc.header(await devchain.head() - 1)
    without = await rpc.header(await devchain.head())
    assert with_transfer is not None
    assert with_transfer.logs_bloom is not None
    assert without is not None
    assert without.logs_bloom is not None

    assert {address for address, _ in routes.in_bloom(with_transfer.logs_bloom)} == {
        devchain.token.lower()
    }
    assert routes.in_bloom(without.logs_bloom) == set()


def test_checkpoint_round_trips_and_rejects_damage() -> None:
    checkpoint = Checkpoint(12, "0x" + "0f" * 32, 3)
    assert Checkpoint.from_dict(checkpoint.to_dict()) == checkpoint
    for broken in (
        {"blockNumber": "12"},
        {"blockNumber": -2},
        {"blockNumber": 1, "blockHash": "0x12"},
        {"blockNumber": 1, "logIndex": -1},
    ):
        with pytest.raises(ValueError, match="checkpoint"):
            Checkpoint.from_dict(broken)
