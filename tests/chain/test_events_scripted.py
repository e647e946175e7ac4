"""The event stream against a scripted RPC that lags, drops logs, rate-limits, reorders its
answers and reorgs within and past the confirmation depth: every confirmed event is
delivered exactly once and in chain order, or the stream stops with an error saying where."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from gpu_provider.chain.errors import ReorgBeyondConfirmations, RpcError
from gpu_provider.chain.events import Checkpoint, Delivery, EventSource, EventStream
from gpu_provider.chain.heads import HeadSignal
from gpu_provider.chain.jsonrpc import Rpc
from gpu_provider.chain.rpc import FailoverProvider
from tests.chain.scripted import CHAIN_ID, EMITTER, PING_ABI, ScriptedChain, Throttle


@pytest.fixture
async def chain() -> AsyncIterator[ScriptedChain]:
    scripted = ScriptedChain()
    await scripted.start()
    yield scripted
    await scripted.stop()


@pytest.fixture
async def provider(chain: ScriptedChain) -> AsyncIterator[FailoverProvider]:
    rpc = FailoverProvider([chain.url], chain_id=CHAIN_ID, request_timeout=5)
    yield rpc
    await rpc.disconnect()


def stream(
    provider: FailoverProvider,
    start: Checkpoint | None = None,
    *,
    confirmations: int = 2,
    log_range: int = 10,
) -> EventStream:
    return EventStream(
        Rpc(provider),
        [EventSource(EMITTER, PING_ABI)],
        start or Checkpoint(0),
        confirmations=confirmations,
        log_range=log_range,
        poll_interval=0.01,
    )


def values(items: list[Delivery]) -> list[int]:
    return [item.event.args["value"] for item in items if item.event is not None]


async def until_block(events: EventStream, block: int, within: float = 10.0) -> list[Delivery]:
    """Every delivery until the stream's checkpoint reaches `block`."""
    out: list[Delivery] = []
    async with asyncio.timeout(within):
        async for item in events:
            out.append(item)
            if item.checkpoint.block_number >= block and item.checkpoint.log_index is None:
                return out
    raise AssertionError("the stream ended")


def unconfirmed(events: EventStream) -> list[int]:
    return [e.args["value"] for e in events.unconfirmed_events]


async def polled_until(events: EventStream, done: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not done():
            await events.poll()
            await asyncio.sleep(0.01)


def fill(chain: ScriptedChain, blocks: int, every: int = 3) -> list[int]:
    """Mine `blocks` blocks, a Ping with a fresh value in every `every`-th; returns them."""
    sent: list[int] = []
    for _ in range(blocks):
        if (chain.head + 1) % every == 0:
            sent.append(chain.head + 1)
            chain.mine(1, [chain.head + 1])
        else:
            chain.mine(1)
    return sent


async def test_backfill_reorders_nothing_a_backend_shuffles(
    chain: ScriptedChain, provider: FailoverProvider
) -> None:
    sent = fill(chain, 60)
    chain.reorder = True

    items = await until_block(stream(provider), chain.head - 2)

    assert values(items) == [v for v in sent if v <= chain.head - 2]


async def test_backfill_rereads_logs_a_lagging_log_index_left_out(
    chain: ScriptedChain, provider: FailoverProvider
) -> None:
    sent = fill(chain, 60)
    chain.log_lag = 6  # the node serves headers up to the head, logs only 6 blocks behind

    items = await until_block(stream(provider), chain.head - 2)

    assert values(items) == [v for v in sent if v <= chain.head - 2]


async def test_backfill_rereads_blocks_whose_logs_a_range_answer_dropped(
    chain: ScriptedChain, provider: FailoverProvider
) -> None:
    sent = fill(chain, 60)
    chain.drop = {sent[-3], sent[-4]}

    items = await until_block(stream(provider), chain.head - 2)

    assert values(items) == [v for v in sent if v <= chain.head - 2]


async def test_follow_rereads_logs_a_lagging_backend_left_out(
    chain: ScriptedChain, provider: FailoverProvider
) -> None:
    chain.mine(10)
    events = stream(provider, confirmations=3)
    await until_block(events, chain.head - 3)
    chain.log_lag = 2

    sent: list[int] = []
    delivered: list[int] = []
    for value in range(1000, 1010):
        chain.mine(1, [value])
        sent.append(value)
        for _ in range(2):  # the first confirms a block, the second reads the new one
            await events.poll()  # into the window while its logs lag
    chain.log_lag = 0
    chain.mine(4)
    delivered += values(await until_block(events, chain.head - 3))

    assert delivered == sent


async def test_a_load_balancer_over_nodes_out_of_step_loses_and_repeats_nothing(
    chain: ScriptedChain, provider: FailoverProvider
) -> None:
    sent = fill(chain, 60)
    chain.behind = 5  # every other request is served by a node 5 blocks behind
    events = stream(provider, confirmations=2)
    delivered = values(await until_block(events, chain.head - 2))
    for value in range(2000, 2012):
        chain.mine(1, [value])
        sent.append(value)
        for _ in range(2):
            with contextlib.suppress(RpcError):  # a lagging node's "no such block": retried
                await events.poll()
    chain.mine(3)
    delivered += values(await until_block(events, chain.head - 2))

    assert delivered == sent


async def test_rate_limits_retry_the_same_range_after_the_hinted_delay(
    chain: ScriptedChain, provider: FailoverProvider
) -> None:
    sent = fill(chain, 80)
    chain.throttle_when = lambda calls: any(c["method"] == "eth_getLogs" for c in calls)
    chain.throttles = [
        Throttle(1, http=True, retry_after="0.3"),
        Throttle(2, http=False),
        Throttle(1, http=True, retry_after=None),
        Throttle(1, http=False),
    ]

    items = await until_block(stream(provider, log_range=10), chain.head - 2, within=20)

    assert values(items) == [v for v in sent if v <= chain.head - 2]
    assert set(chain.getlogs_spans()[:-1]) == {10}, "a rate limit must not shrink the range"
    after_hint = next(t for t, m, _ in chain.requests if t > chain.throttled_at[0])
    assert after_hint - chain.throttled_at[0] >= 0.25, "Retry-After: 0.3 was not honoured"


async def test_only_a_range_too_large_answer_shrinks_the_range(
    chain: ScriptedChain, provider: FailoverProvider
) -> None:
    sent = fill(chain, 60)
    chain.too_large_over = 4

    items = await until_block(stream(provider, log_range=16), chain.head - 2)

    assert values(items) == [v for v in sent if v <= chain.head - 2]
    spans = chain.getlogs_spans()
    assert max(spans) > 4
    assert min(spans) <= 4


async def test_reorg_within_the_confirmation_depth_delivers_the_fork_once(
    chain: ScriptedChain, provider: FailoverProvider
) -> None:
    fill(chain, 20)
    events = stream(provider, confirmations=3)
    delivered = values(await until_block(events, chain.head - 3))
    chain.mine(1, [501])
    chain.mine(1, [502])
    await polled_until(events, lambda: unconfirmed(events) == [501, 502])

    chain.reorg(2, [[601], [], [602]])  # 501 and 502 are replaced by 601 and 602
    chain.mine(3)
    delivered += values(await until_block(events, chain.head - 3))

    assert delivered[-2:] == [601, 602]
    assert 501 not in delivered
    assert 502 not in delivered
    assert len(delivered) == len(set(delivered))


async def test_reorg_past_the_confirmation_depth_names_the_block_and_a_shared_one(
    chain: ScriptedChain, provider: FailoverProvider
) -> None:
    fill(chain, 40)
    events = stream(provider, confirmations=1)
    await until_block(events, chain.head - 1)
    before = [block.hash for block in chain.blocks]
    replaced = chain.blocks[chain.head - 3]

    chain.reorg(4, [[7001], [7002], [7003], [7004], []])

    with pytest.raises(ReorgBeyondConfirmations) as caught:
        await until_block(events, chain.head)
    error = caught.value
    # A block both chains share, at most one backfill range below the fork.
    assert error.verified
    assert replaced.number - 10 <= error.resume_from < replaced.number
    assert chain.blocks[error.resume_from].hash == before[error.resume_from]
    assert error.block_number is not None
    assert error.block_number >= replaced.number
    assert error.ours == before[error.block_number]
    assert error.theirs == chain.blocks[error.block_number].hash
    assert f"block {error.block_number} changed from {error.ours} to {error.theirs}" in str(error)
    assert f"restart the stream from block {error.resume_from + 1}" in str(error)


async def test_reorg_under_a_restarted_checkpoint_never_resumes_from_block_zero(
    chain: ScriptedChain, provider: FailoverProvider
) -> None:
    fill(chain, 200)
    persisted = Checkpoint(190, chain.blocks[190].hash)
    chain.reorg(15, [[9000 + i] for i in range(16)])  # blocks 186 onwards replaced

    with pytest.raises(ReorgBeyondConfirmations) as caught:
        await until_block(stream(provider, persisted), chain.head)

    error = caught.value
    assert error.block_number == 190
    assert error.ours == persisted.block_hash
    assert error.theirs == chain.blocks[190].hash
    assert 0 < error.resume_from < 186, "resume below the fork, but not from genesis"
    assert not error.verified
    assert "restart the stream from block 1 " not in str(error)


async def test_a_head_another_stream_saw_wakes_an_idle_stream_before_its_poll_interval(
    chain: ScriptedChain, provider: FailoverProvider
) -> None:
    """Lease intake polls every `poll_interval_seconds` (2 s by default) but the bid stream
    reads the head four times as often: sharing its heads lets intake take a lease in as soon
    as it is confirmed instead of up to a whole interval later."""
    fill(chain, 9)
    heads = HeadSignal()
    events = EventStream(
        Rpc(provider),
        [EventSource(EMITTER, PING_ABI)],
        Checkpoint(0),
        confirmations=2,
        poll_interval=30,  # its own poll alone would not come within the test's deadline
        heads=heads,
    )
    await until_block(events, chain.head - 2)
    assert heads.head == chain.head  # what it read is shared
    waiting = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0.2)  # idle now, in its 30 s wait
    assert not waiting.done()

    chain.mine(1, [1000])
    chain.mine(2)
    heads.note(chain.head)  # another stream (the bid stream) read the new head

    first = await asyncio.wait_for(waiting, 5)
    rest = await until_block(events, chain.head - 2, within=5)
    assert values([first, *rest]) == [9, 1000]  # block 9's, then the new block's


async def test_a_head_signal_wakes_every_waiter_and_only_for_a_newer_head() -> None:
    heads = HeadSignal()
    heads.note(7)
    assert await heads.wait_past(6, at_most=5)  # already newer: no wait
    assert not await heads.wait_past(7, at_most=0.05)  # nothing newer within the limit
    waiters = [asyncio.ensure_future(heads.wait_past(7, at_most=5)) for _ in range(3)]
    await asyncio.sleep(0)
    heads.note(7)  # the same head again wakes nobody
    heads.note(5)  # nor does an older one (a lagging node)
    await asyncio.sleep(0.05)
    assert not any(w.done() for w in waiters)
    heads.note(8)
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert heads.head == 8
