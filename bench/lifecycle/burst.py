"""A burst of orders in one block: the bid engine with its real bid journal next to a bare
script making the same RPC calls.

The chain: anvil with the devnet (bid window `BID_WINDOW` = 5 blocks), mining paused while
the tenant's `--orders` createOrder transactions (1 H100 each) go to its pool, then one block
that holds them all (t0 = that `evm_mine` returning), then a block a second. Each side bids
with its own registered provider wallet on its own burst:

- engine: `BidEngine` + `TxManager` as the chain daemon builds them (`chainsession.py`): bid
  intents journaled through `BatchedIntentStore` (group commit) into the per-ProviderNode
  ConfigMap on a kwok cluster (`kube/bidjournal.py`), every other intent in memory;
  capacity: 30 nodes of 8 H100.
- bare: for each OrderCreated log of the block, decode the spec and read the order
  (`getOrderById`), estimate `placeBid`, sign with a locally counted nonce and send
  (`eth_sendRawTransaction`), all orders concurrently, then poll the receipts.

Reported per side: bids on chain within the window (the contract refuses a late one, so a bid
on chain is a bid in the window) and the time from t0 until every bid is mined; for the
engine also the journal's ConfigMap writes and their total time.

Run: `make bench-lifecycle` (or `.venv/bin/python -m pytest -q -s bench/lifecycle/burst.py`,
`BURST_ORDERS=200`).
"""

from __future__ import annotations

import asyncio
import os
import time
from decimal import Decimal
from typing import Any

from e2e.bidding.conftest import Provider
from e2e.chain.conftest import BID_WINDOW, Market
from kubernetes import client
from tests.bidding.helpers import H100_MIB, node
from web3.types import RPCEndpoint

from gpu_provider.chain.bidbatch import BatchedIntentStore
from gpu_provider.chain.intents import InMemoryIntentStore
from gpu_provider.chain.statusstore import StatusIntentStore
from gpu_provider.controllers.chaindaemon_journal import BID_JOURNAL_LIMIT, RoutedIntentStore
from gpu_provider.devnet.orderfile import TenantOrder, order_terms
from gpu_provider.devnet.session import DevnetChain
from gpu_provider.devnet.tenant import MODE_PROVIDER, ORDER_VERSION, Tenant
from gpu_provider.kube.bidjournal import write_bid_journal
from gpu_provider.market import decode, encode
from gpu_provider.market.capacity import Capacity
from gpu_provider.market.spec import GpuModelRef, GpuRequest, OrderSpec, Placement, Service

ORDERS = int(os.environ.get("BURST_ORDERS", "200"))
GIB = 2**30
NAMESPACE = "default"
COMMUNITY = (4, 5, 6, 7)


def one_h100() -> TenantOrder:
    service = Service(
        name="py",
        resource_id=1,
        replicas=1,
        cpu_millicores=1000,
        memory_bytes=4 * GIB,
        gpu=GpuRequest(units=1, models=(GpuModelRef(vendor="nvidia", model="h100"),)),
    )
    spec = OrderSpec(name="ml", placement=Placement(), services=(service,))
    return TenantOrder(spec=spec, duration_seconds=60, max_usd_per_hour=Decimal(4), tiers=COMMUNITY)


def rpc(market: Market, method: str, *params: Any) -> Any:
    return market.w3.provider.make_request(RPCEndpoint(method), list(params))["result"]


def burst(market: Market, devnet: DevnetChain, count: int) -> int:
    """`count` createOrder transactions mined in one block; returns that block's number."""
    tenant = market.people.tenant
    order = one_h100()
    terms = order_terms(order, devnet.state.token_terms())
    details = (
        terms.max_price_per_block,
        terms.num_blocks,
        devnet.state.payment_token,
        encode(order.spec),
        ORDER_VERSION,
        MODE_PROVIDER,
        [tier - 1 for tier in order.tiers],
    )
    create = market.orders.functions.createOrder(details)
    gas = create.estimate_gas({"from": tenant.address}) * 2
    rpc(market, "evm_setIntervalMining", 0)
    rpc(market, "evm_setAutomine", False)
    rpc(market, "evm_setBlockGasLimit", hex(2_000_000_000))
    nonce = market.w3.eth.get_transaction_count(tenant.address, "pending")
    price = market.w3.eth.gas_price * 2
    hashes = []
    for i in range(count):
        tx = create.build_transaction(
            {"from": tenant.address, "nonce": nonce + i, "gas": gas, "gasPrice": price}
        )
        signed = tenant.sign_transaction(tx)
        hashes.append(market.w3.eth.send_raw_transaction(signed.raw_transaction))
    return mine_in_one_block(market, hashes, "the burst")


def mine_in_one_block(market: Market, hashes: list[Any], what: str) -> int:
    """Mine one block and check that it holds every transaction of `hashes`, all succeeded."""
    rpc(market, "evm_mine")
    block = market.w3.eth.block_number
    for tx_hash in hashes:
        receipt = market.w3.eth.get_transaction_receipt(tx_hash)
        assert receipt["status"] == 1, receipt
        assert receipt["blockNumber"] == block, f"{what} did not fit one block"
    return int(block)


def block_a_second(market: Market) -> None:
    rpc(market, "evm_setIntervalMining", 1)


def stop_mining(market: Market) -> None:
    rpc(market, "evm_setIntervalMining", 0)
    rpc(market, "evm_setAutomine", True)


def ours_on_chain(market: Market, provider: str, order_ids: list[int]) -> int:
    found = 0
    for order_id in order_ids:
        bids = market.bids.functions.getAllBidsForOrder(order_id).call()
        found += any(str(b[1]).lower() == provider.lower() for b in bids)
    return found


def big_capacity() -> Capacity:
    return Capacity.of(
        [node(f"gpu-{i}", ("h100", 8, H100_MIB), cpu=192_000, memory=2048) for i in range(30)]
    )


async def engine_run(
    market: Market,
    devnet: DevnetChain,
    provider: Provider,
    api: client.ApiClient,
    *,
    batched: bool,
) -> dict[str, Any]:
    writes: list[float] = []

    async def persist_bids(records: list[Any]) -> None:
        started = time.monotonic()
        await write_bid_journal(api, NAMESPACE, "bench", [r.to_wire() for r in records])
        writes.append(time.monotonic() - started)

    kind = BatchedIntentStore if batched else StatusIntentStore
    provider.store = RoutedIntentStore(
        InMemoryIntentStore(), kind(persist_bids, limit=BID_JOURNAL_LIMIT)
    )
    provider.capacity = big_capacity()
    start = market.w3.eth.block_number + 1
    engine = await provider.start(start)
    block = burst(market, devnet, ORDERS)
    t0 = time.monotonic()
    block_a_second(market)
    ids = [
        int(e["args"]["orderId"])
        for e in market.orders.events.OrderCreated().get_logs(from_block=block, to_block=block)
    ]

    def done() -> bool:
        return all(
            (o := engine.outcomes.get(i)) is not None and (o.tx is not None or bool(o.error))
            for i in ids
        )

    seconds = await settle(done, t0)
    stop_mining(market)
    await provider.stop()
    return {
        "bid": ours_on_chain(market, provider.address, ids),
        "seconds": seconds,
        "writes": len(writes),
        "write_seconds": sum(writes),
        "block": block,
    }


async def settle(done: Any, t0: float, within: float = 60.0) -> float:
    """Seconds from t0 until `done()`, polled every 20 ms (no RPC in the poll)."""
    while not done():
        if time.monotonic() - t0 > within:
            return float("nan")
        await asyncio.sleep(0.02)
    return time.monotonic() - t0


async def bare_run(market: Market, devnet: DevnetChain, who: Any) -> dict[str, Any]:
    """Decode, read the order, estimate, sign, send: each order concurrently; nonces counted
    here (one `eth_getTransactionCount` up front)."""
    w3 = devnet.w3
    bid = devnet.marketplace.bid
    reader = devnet.marketplace.order_request
    chain_id = devnet.state.chain_id
    block = burst(market, devnet, ORDERS)
    t0 = time.monotonic()
    block_a_second(market)
    logs = await devnet.marketplace.order_request.events.OrderCreated().get_logs(
        from_block=block, to_block=block
    )
    nonce = await w3.eth.get_transaction_count(who.address, "pending")
    gas_price = await w3.eth.gas_price
    mined: dict[int, float] = {}

    async def one(index: int, event: Any) -> None:
        order_id = int(event["args"]["orderId"])
        decode(str(event["args"]["specs"]))
        await reader.functions.getOrderById(order_id).call()
        call = bid.functions.placeBid(order_id, int(event["args"]["maxPrice"]), 0)
        gas = await call.estimate_gas({"from": who.address})
        tx = await call.build_transaction(
            {
                "from": who.address,
                "nonce": nonce + index,
                "gas": gas * 12 // 10,
                "gasPrice": gas_price * 2,
                "chainId": chain_id,
            }
        )
        signed = who.sign_transaction(tx)
        tx_hash = await w3.eth.send_raw_transaction(signed.raw_transaction)
        while True:
            try:
                await w3.eth.get_transaction_receipt(tx_hash)
                break
            except Exception:  # not mined yet
                await asyncio.sleep(0.05)
        mined[order_id] = time.monotonic() - t0

    await asyncio.gather(*(one(i, e) for i, e in enumerate(logs)))
    seconds = max(mined.values())
    stop_mining(market)
    ids = [int(e["args"]["orderId"]) for e in logs]
    return {"bid": ours_on_chain(market, who.address, ids), "seconds": seconds, "block": block}


async def test_burst_of_orders_in_one_block(
    market: Market, devnet: DevnetChain, providers: Any, api_client: client.ApiClient
) -> None:
    tenant = Tenant(chain=devnet, account=market.people.tenant)
    await tenant.deposit(Decimal(ORDERS * 2))
    provider: Provider = await providers(market.people.provider)
    plain = await engine_run(market, devnet, provider, api_client, batched=False)
    engine = await engine_run(market, devnet, provider, api_client, batched=True)
    await providers(market.people.other_provider)  # registered and active; bids bare
    bare = await bare_run(market, devnet, market.people.other_provider)
    rows = [
        ("engine, journal written per put (before)", plain),
        ("engine, journal puts batched (group commit)", engine),
        ("bare script", {**bare, "writes": "-", "write_seconds": 0.0}),
    ]
    lines = [
        f"burst of {ORDERS} orders in one block, bid window {BID_WINDOW} blocks of 1 s",
        "| side | bid within the window | seconds until all bid | x bare | journal writes (s) |",
        "|---|---|---|---|---|",
    ]
    for name, row in rows:
        ratio = row["seconds"] / bare["seconds"]
        lines.append(
            f"| {name} | {row['bid']}/{ORDERS} | {row['seconds']:.2f} | {ratio:.2f} "
            f"| {row['writes']} ({row['write_seconds']:.2f}) |"
        )
    print("\n" + "\n".join(lines))
