"""Intake latency: a lease matched to our provider on chain → its GpuLease in the cluster, the
operator's intake next to a bare script making the same reads and one create per lease.

The chain: anvil with the devnet, automine off. Set-up (not measured): the tenant's orders
(1 H100 each, `INTAKE_LEASES` per side) mined in one block, our provider's bids on all of
them in the next. Then, per side, the bench mines a block a second itself (`evm_mine`), each
holding `INTAKE_PER_BLOCK` pre-signed `matchOrder` transactions of the matchmaker for our
provider, until every lease has its GpuLease; t(block) is when that `evm_mine` returns (in a
thread of its own, so a busy event loop cannot delay the stamp).

- engine: what the chain daemon's intake task runs (`ChainDaemon._intake`): `LeaseIntake`
  over an `EventStream` built by `EventStream.from_settings` with the devnet's chain
  settings (`INTAKE_CONFIRMATIONS`, `poll_interval_seconds` = `INTAKE_POLL`, by default the
  product's 2 s), following our `LeaseCreated`/`OrderMatched` plus the daemon's other intake
  sources (`OrderUpdateRequested`, our `LeaseClosed`), handing each lease to
  `KubeLeaseSink` (render, create, initial status write) on a kwok cluster; next to it, as
  in the daemon, the bid stream (confirmations 0, polled four times per interval) whose
  heads wake intake (`HeadSignal`); its deliveries are dropped here.
- bare: poll `eth_blockNumber` four times per `INTAKE_POLL` (the rate the engine reads
  heads at); once blocks are `INTAKE_CONFIRMATIONS` deep, one `eth_getLogs` for
  `LeaseCreated` over them, our provider's filtered in Python; for each lease of ours,
  concurrently: `leases(id)` and `getOrderById` at that block, `build_gpulease`, one
  `create_namespaced_custom_object`.

"Created" is when the GpuLease's POST returns, stamped the same way for both sides by the
API client both use (`TimedApiClient`); for the engine also when `KubeLeaseSink.ensure_lease`
returns (after its status write). A lease in block b can be created no sooner than block
b + confirmations is mined, so latency is reported both from block b ("from mined") and from
block b + c ("from confirmable", the fair comparison: both sides wait the same depth).

Run: `make bench-intake` (or `INTAKE_LEASES=20 .venv/bin/python -m pytest -q -s
bench/lifecycle/intake.py`).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import threading
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from bench.lifecycle.burst import burst, mine_in_one_block, rpc
from e2e.bidding.conftest import active_provider
from e2e.chain.conftest import Market
from e2e.operator.conftest import example_provider
from kubernetes import client
from web3 import Web3
from web3.types import RPCEndpoint

from gpu_provider.api.v1alpha1 import GPU_LEASE_PLURAL, GROUP, PROVIDER_NODE_PLURAL, VERSION
from gpu_provider.chain.bidstream import bid_event_sources
from gpu_provider.chain.events import EventStream
from gpu_provider.chain.heads import HeadSignal
from gpu_provider.chain.leases import LeaseIntake, read_lease, read_order
from gpu_provider.chain.records import Checkpoint, arg_equals
from gpu_provider.controllers.chaindaemon_sink import KubeLeaseSink
from gpu_provider.devnet.session import DevnetChain
from gpu_provider.devnet.tenant import Tenant
from gpu_provider.render.gpulease import ProviderNodeRef, build_gpulease

LEASES = int(os.environ.get("INTAKE_LEASES", "200"))
PER_BLOCK = int(os.environ.get("INTAKE_PER_BLOCK", "4"))
CONFIRMATIONS = int(os.environ.get("INTAKE_CONFIRMATIONS", "2"))
POLL = float(os.environ.get("INTAKE_POLL", "2.0"))
BLOCK_SECONDS = 1.0
NAMESPACE = "default"
PROVIDER_NODE = "bench-intake"


class TimedApiClient(client.ApiClient):
    """The kubernetes client, stamping when each GpuLease POST returns (by object name)."""

    def __init__(self, configuration: Any) -> None:
        super().__init__(configuration)
        self.created: dict[str, float] = {}

    def call_api(
        self,
        method: Any,
        url: Any,
        header_params: Any = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> Any:
        reply = super().call_api(method, url, header_params, body, post_params, _request_timeout)
        if method == "POST" and isinstance(body, dict) and body.get("kind") == "GpuLease":
            self.created[str(body["metadata"]["name"])] = time.monotonic()
        return reply


class Miner(threading.Thread):
    """A block every `BLOCK_SECONDS`, the next `PER_BLOCK` raw transactions in each, until
    stopped; `mined[n]` is when the `evm_mine` of block n returned."""

    def __init__(self, w3: Web3, raw: list[bytes]) -> None:
        super().__init__(daemon=True)
        self.w3, self.raw = w3, list(raw)
        self.mined: dict[int, float] = {}
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            due = time.monotonic()
            while not self.stop.is_set():
                batch, self.raw = self.raw[:PER_BLOCK], self.raw[PER_BLOCK:]
                for tx in batch:
                    self.w3.eth.send_raw_transaction(tx)
                self.w3.provider.make_request(RPCEndpoint("evm_mine"), [])
                stamp = time.monotonic()
                self.mined[self.w3.eth.block_number] = stamp
                due += BLOCK_SECONDS
                self.stop.wait(max(0.0, due - time.monotonic()))
        except BaseException as error:  # reported by the test, not lost in the thread
            self.error = error


def signed_calls(market: Market, sender: Any, calls: list[Any]) -> list[bytes]:
    """`calls` signed by `sender` with consecutive nonces and the first one's gas, doubled."""
    gas = calls[0].estimate_gas({"from": sender.address}) * 2
    nonce = market.w3.eth.get_transaction_count(sender.address, "pending")
    price = market.w3.eth.gas_price * 2
    raw = []
    for i, call in enumerate(calls):
        tx = call.build_transaction(
            {"from": sender.address, "nonce": nonce + i, "gas": gas, "gasPrice": price}
        )
        raw.append(bytes(sender.sign_transaction(tx).raw_transaction))
    return raw


def mine_one_block(market: Market, raw: list[bytes]) -> int:
    hashes = [market.w3.eth.send_raw_transaction(tx) for tx in raw]
    return mine_in_one_block(market, hashes, "the set-up")


def orders_with_our_bids(market: Market, devnet: DevnetChain, count: int) -> list[tuple[int, int]]:
    """`count` open orders carrying our provider's bid at the order's max price: (id, price)."""
    block = burst(market, devnet, count)  # leaves automine off
    created = market.orders.events.OrderCreated().get_logs(from_block=block, to_block=block)
    orders = [(int(e["args"]["orderId"]), int(e["args"]["maxPrice"])) for e in created]
    provider = market.people.provider
    bids = [market.bids.functions.placeBid(order, price, 0) for order, price in orders]
    mine_one_block(market, signed_calls(market, provider, bids))
    return orders


async def until(done: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not every lease was taken in within {within:.0f} s")
        await asyncio.sleep(0.02)


async def measured(
    market: Market,
    orders: list[tuple[int, int]],
    stamps: dict[str, float],
    follow: Callable[[int], Coroutine[Any, Any, None]],
) -> tuple[dict[int, float], dict[int, int]]:
    """Match `orders` a few per block while `follow(first block)` takes them in; returns the
    blocks' mined stamps and each lease's block."""
    provider = market.people.provider.address
    matches = [market.bids.functions.matchOrder(o, provider, p) for o, p in orders]
    miner = Miner(market.w3, signed_calls(market, market.people.matchmaker, matches))
    start = market.w3.eth.block_number + 1
    task = asyncio.create_task(follow(start))
    miner.start()
    names = [f"lease-{order}" for order, _ in orders]
    try:
        await until(
            lambda: miner.error is not None or all(n in stamps for n in names),
            within=len(orders) / PER_BLOCK * BLOCK_SECONDS + 60,
        )
    finally:
        miner.stop.set()
        await asyncio.to_thread(miner.join)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert miner.error is None, miner.error
    logs = market.leases.events.LeaseCreated().get_logs(
        from_block=start, to_block=market.w3.eth.block_number
    )
    blocks = {
        int(e["args"]["leaseId"]): int(e["blockNumber"])
        for e in logs
        if str(e["args"]["providerAddress"]).lower() == provider.lower()
    }
    assert sorted(blocks) == sorted(o for o, _ in orders), "not every match made a lease"
    return miner.mined, blocks


def engine_follow(
    devnet: DevnetChain,
    address: str,
    api: client.ApiClient,
    owner: ProviderNodeRef,
    taken: dict[str, float],
) -> Callable[[int], Coroutine[Any, Any, None]]:
    contracts = devnet.marketplace
    settings = devnet.state.chain_settings(confirmations=CONFIRMATIONS).model_copy(
        update={"poll_interval_seconds": POLL}
    )

    def stamp(record: Any) -> None:
        taken[f"lease-{record.lease_id}"] = time.monotonic()

    sink = KubeLeaseSink(api, NAMESPACE, owner, on_created=stamp)
    intake = LeaseIntake(contracts, address, sink)
    closed = contracts.event_source(
        "ComputeLease", ["LeaseClosed"], {"LeaseClosed": arg_equals("providerAddress", address)}
    )
    updates = contracts.event_source("OrderRequest", ["OrderUpdateRequested"])
    sources = [*intake.sources(), updates, closed]

    async def follow(start: int) -> None:
        heads = HeadSignal()
        stream = EventStream.from_settings(
            devnet.w3, settings, sources, Checkpoint.start_at(start), heads=heads
        )
        bids = EventStream(  # ChainDaemon._bids' stream
            devnet.w3,
            bid_event_sources(contracts, address),
            Checkpoint.start_at(start),
            confirmations=0,
            log_range=settings.log_range,
            poll_interval=max(0.05, POLL / 4),
            heads=heads,
        )

        async def drop_bids() -> None:
            async for _ in bids:
                pass

        bidding = asyncio.create_task(drop_bids())
        try:
            async for delivery in stream:  # ChainDaemon._handle, intake events only
                if delivery.event is not None and delivery.event.name in (
                    "LeaseCreated",
                    "OrderMatched",
                ):
                    await intake.handle(delivery.event)
        finally:
            bidding.cancel()
            await asyncio.gather(bidding, return_exceptions=True)
            await stream.aclose()
            await bids.aclose()

    return follow


def bare_follow(
    devnet: DevnetChain, address: str, api: client.ApiClient, owner: ProviderNodeRef
) -> Callable[[int], Coroutine[Any, Any, None]]:
    contracts, w3 = devnet.marketplace, devnet.w3
    custom = client.CustomObjectsApi(api)

    async def one(lease_id: int, block: int) -> None:
        lease = await read_lease(contracts, lease_id, block=block)
        assert lease is not None
        order = await read_order(contracts, lease.order_id, block=block)
        rendered = build_gpulease(lease, order, owner, NAMESPACE, taken_in_at=datetime.now(UTC))
        await asyncio.to_thread(
            custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            NAMESPACE,
            GPU_LEASE_PLURAL,
            rendered.body,
        )

    async def follow(start: int) -> None:
        created = contracts.compute_lease.events.LeaseCreated()
        after = start - 1
        while True:
            safe = await w3.eth.block_number - CONFIRMATIONS
            if safe <= after:
                await asyncio.sleep(POLL / 4)
                continue
            logs = await created.get_logs(from_block=after + 1, to_block=safe)
            ours = [
                int(e["args"]["leaseId"])
                for e in logs
                if str(e["args"]["providerAddress"]).lower() == address.lower()
            ]
            await asyncio.gather(*(one(lease_id, safe) for lease_id in ours))
            after = safe

    return follow


def latencies(
    mined: dict[int, float], blocks: dict[int, int], created: dict[str, float]
) -> dict[str, list[float]]:
    def since(depth: int) -> list[float]:
        return [created[f"lease-{i}"] - mined[b + depth] for i, b in blocks.items()]

    return {"mined": since(0), "confirmable": since(CONFIRMATIONS)}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def summary(values: list[float]) -> str:
    return (
        f"{percentile(values, 50):.3f} | {percentile(values, 99):.3f} | {max(values):.3f} "
        f"| {statistics.mean(values):.3f}"
    )


def provider_node(api: client.ApiClient) -> ProviderNodeRef:
    """A ProviderNode to own the GpuLeases (no operator runs: nothing reconciles it)."""
    custom = client.CustomObjectsApi(api)
    body = example_provider(PROVIDER_NODE)
    try:
        made = custom.create_cluster_custom_object(GROUP, VERSION, PROVIDER_NODE_PLURAL, body)
    except client.ApiException as error:
        if error.status != 409:
            raise
        made = custom.get_cluster_custom_object(GROUP, VERSION, PROVIDER_NODE_PLURAL, PROVIDER_NODE)
    uid = cast(dict[str, Any], made)["metadata"]["uid"]
    return ProviderNodeRef(PROVIDER_NODE, str(uid))


async def test_intake_latency(
    market: Market, devnet: DevnetChain, api_client: client.ApiClient, crds: list[str]
) -> None:
    active_provider(market, market.people.provider)
    tenant = Tenant(chain=devnet, account=market.people.tenant)
    await tenant.deposit(Decimal(LEASES * 4))
    orders = orders_with_our_bids(market, devnet, 2 * LEASES)
    owner = provider_node(api_client)
    api = TimedApiClient(api_client.configuration)
    taken: dict[str, float] = {}
    try:
        us = market.people.provider.address
        follow = engine_follow(devnet, us, api, owner, taken)
        engine = await measured(market, orders[:LEASES], taken, follow)
        engine_posted = dict(api.created)
        follow = bare_follow(devnet, us, api, owner)
        bare = await measured(market, orders[LEASES:], api.created, follow)
    finally:
        rpc(market, "evm_setAutomine", True)
    rows = [
        ("engine, GpuLease POST returned", latencies(*engine, engine_posted)),
        ("engine, create + status written", latencies(*engine, taken)),
        ("bare script, GpuLease POST returned", latencies(*bare, api.created)),
    ]
    for _name, by_origin in rows:
        assert min(by_origin["confirmable"]) > 0, "a GpuLease before its lease was confirmable"
    base = {k: percentile(v, 99) for k, v in rows[-1][1].items()}
    lines = [
        f"{LEASES} leases per side, {PER_BLOCK} per block, a block a second, "
        f"confirmations {CONFIRMATIONS}, poll {POLL} s",
        "| side | from | p50 s | p99 s | max s | mean s | p99 x bare |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, by_origin in rows:
        for origin, values in by_origin.items():
            ratio = percentile(values, 99) / base[origin]
            lines.append(f"| {name} | {origin} | {summary(values)} | {ratio:.2f} |")
    print("\n" + "\n".join(lines))
