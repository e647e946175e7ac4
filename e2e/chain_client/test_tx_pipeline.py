"""The transaction manager's pipelined sends on a real anvil: a burst of concurrent sends
shares journal writes instead of paying one write each under the nonce lock, the node still
receives the transactions in nonce order, and a journal write failing in the middle of a
burst neither sends the failed intent nor holds the ones behind it back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from eth_utils.crypto import keccak

from e2e.chain_client.conftest import (
    CHAIN_ID,
    Devchain,
    RpcProxy,
    dev_address,
    dev_key,
    eventually,
)
from gpu_provider.api.v1alpha1.providernode import PendingTx
from gpu_provider.chain.bidbatch import BatchedIntentStore
from gpu_provider.chain.intents import InMemoryIntentStore, IntentStatus, TxIntent
from gpu_provider.chain.jsonrpc import Rpc
from gpu_provider.chain.rpc import FailoverProvider
from gpu_provider.chain.tx import TxManager, TxRequest, TxTimings
from gpu_provider.chain.wallet import Wallet

SIGNER = 6
BOB = dev_address(2)
WRITE_SECONDS = 0.03  # a ConfigMap write on kwok takes 25 to 45 ms (bench/lifecycle)


def manager(provider: FailoverProvider, store: Any, timings: TxTimings) -> TxManager:
    wallet = Wallet.from_private_key(dev_key(SIGNER))
    return TxManager(Rpc(provider), wallet, store, chain_id=CHAIN_ID, timings=timings)


def pay(wei: int) -> TxRequest:
    return TxRequest(to=BOB, value=wei)


class Broadcasts:
    """Records the hash of every raw transaction the proxy passes on, in arrival order."""

    def __init__(self) -> None:
        self.hashes: list[str] = []

    def __call__(self, request: dict[str, Any]) -> Any:
        if request.get("method") == "eth_sendRawTransaction":
            raw = bytes.fromhex(str(request["params"][0]).removeprefix("0x"))
            self.hashes.append("0x" + keccak(raw).hex())
        return None  # always passed on to anvil


@pytest.fixture
async def provider(proxy: RpcProxy) -> Any:
    provider = FailoverProvider([proxy.url], chain_id=CHAIN_ID)
    yield provider
    await provider.disconnect()


async def test_a_burst_shares_journal_writes_and_reaches_the_node_in_nonce_order(
    devchain: Devchain, proxy: RpcProxy, provider: FailoverProvider
) -> None:
    writes: list[int] = []

    async def persist(records: list[PendingTx]) -> None:
        await asyncio.sleep(WRITE_SECONDS)  # the store's own latency, not a wait in the test
        writes.append(len(records))

    store = BatchedIntentStore(persist)
    seen = Broadcasts()
    proxy.fault = seen
    timings = TxTimings(poll_interval=0.05, replace_after=30, receipt_timeout=60, confirmations=0)
    txs = manager(provider, store, timings)
    burst = 40
    start = await devchain.nonce(dev_address(SIGNER))

    results = await asyncio.gather(*(txs.send(f"pay-{n}", pay(n + 1)) for n in range(burst)))

    nonces = list(range(start, start + burst))
    assert sorted(r.nonce for r in results) == nonces
    assert await devchain.nonce(dev_address(SIGNER)) == start + burst  # no self-transfer
    by_hash = {r.tx_hash: r.nonce for r in results}
    arrived = [by_hash[h] for h in seen.hashes if h in by_hash]
    assert arrived == nonces, "the node saw the nonces out of order"
    assert len(seen.hashes) == burst  # each broadcast once: nothing refused, nothing replaced
    # Written one by one under the nonce lock, the Signed records alone took one write per
    # send (and the Pending and Mined ones as many again); pipelined, the burst shares them.
    assert len(writes) < burst, f"{len(writes)} journal writes for {burst} sends"


class FailingPut(InMemoryIntentStore):
    """The journal write of `key`'s first attempt fails, once `after` took the next nonce."""

    def __init__(self, key: str, after: str) -> None:
        super().__init__()
        self.key = key
        self.after = after
        self.after_journaled = asyncio.Event()

    async def put(self, intent: TxIntent) -> None:
        if intent.key == self.after:
            self.after_journaled.set()
        if intent.key == self.key and intent.status is IntentStatus.SIGNED:
            await asyncio.wait_for(self.after_journaled.wait(), 10)
            raise OSError("the journal is not writable")
        await super().put(intent)


async def test_a_journal_write_failing_mid_burst_sends_nothing_and_holds_nothing_back(
    devchain: Devchain, proxy: RpcProxy, provider: FailoverProvider
) -> None:
    store = FailingPut("bad", after="after")
    seen = Broadcasts()
    proxy.fault = seen
    # Replacements only after 60 s: what frees the failed intent's nonce within the test's
    # deadline is the self-transfer started when its write fails, not the waiting loops.
    timings = TxTimings(poll_interval=0.05, replace_after=60, receipt_timeout=20, confirmations=0)
    txs = manager(provider, store, timings)
    start = await devchain.nonce(dev_address(SIGNER))

    first = await txs.send("before", pay(1))
    bad = asyncio.create_task(txs.send("bad", pay(2)))

    async def bad_took_its_nonce() -> bool:
        return txs.nonces.in_flight() == frozenset({first.nonce + 1})

    await eventually(bad_took_its_nonce)
    after = asyncio.create_task(txs.send("after", pay(3)))
    with pytest.raises(OSError, match="not writable"):
        await bad
    result = await asyncio.wait_for(after, 15)

    assert result.nonce == first.nonce + 2
    assert await store.get("bad") is None  # nothing of it journaled
    lookups = (devchain.call("eth_getTransactionByHash", h) for h in seen.hashes)
    sent = await asyncio.gather(*lookups)
    to_bob = [t for t in sent if t and t["to"] and t["to"].lower() == BOB.lower()]
    assert sorted(int(t["value"], 16) for t in to_bob) == [1, 3]  # "bad" never left
    filler = [t for t in sent if t and int(t["nonce"], 16) == first.nonce + 1]
    assert filler, "the failed intent's nonce was not used"
    assert int(filler[0]["value"], 16) == 0  # by a self-transfer
    assert await devchain.nonce(dev_address(SIGNER)) == start + 3
