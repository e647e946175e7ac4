"""The transaction manager against a real anvil with scripted faults in front of it (the
`proxy` fixture): intents abandoned between journal and send, a receipt index that lags, a
node that refuses replacements, fee spikes above the cap, and the limit on attempts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from e2e.chain_client.conftest import CHAIN_ID, Devchain, RpcProxy, dev_address, dev_key, eventually
from gpu_provider.chain.errors import TransactionError, TransactionTimeout
from gpu_provider.chain.fees import GWEI, FeePolicy
from gpu_provider.chain.intents import InMemoryIntentStore, IntentStatus, TxIntent
from gpu_provider.chain.jsonrpc import Rpc
from gpu_provider.chain.rpc import FailoverProvider
from gpu_provider.chain.tx import TxManager, TxRequest, TxTimings
from gpu_provider.chain.wallet import Wallet

SIGNER = 5
BOB = dev_address(2)


@contextlib.asynccontextmanager
async def through(proxy: RpcProxy) -> AsyncIterator[FailoverProvider]:
    provider = FailoverProvider([proxy.url], chain_id=CHAIN_ID)
    try:
        yield provider
    finally:
        await provider.disconnect()


def manager(
    provider: FailoverProvider,
    store: InMemoryIntentStore,
    *,
    timings: TxTimings,
    fees: FeePolicy | None = None,
) -> TxManager:
    wallet = Wallet.from_private_key(dev_key(SIGNER))
    return TxManager(Rpc(provider), wallet, store, chain_id=CHAIN_ID, fees=fees, timings=timings)


def pay(wei: int = 10**15) -> TxRequest:
    return TxRequest(to=BOB, value=wei)


def reply(request: dict[str, Any], *, result: Any = None, error: str | None = None) -> Any:
    if error is not None:
        return {
            "jsonrpc": "2.0",
            "id": request.get("id"),
            "error": {"code": -32000, "message": error},
        }
    return {"jsonrpc": "2.0", "id": request.get("id"), "result": result}


def faults(*rules: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    """The first rule that answers a request answers it; None lets it through to anvil."""

    def fault(request: dict[str, Any]) -> Any:
        for rule in rules:
            answer = rule(request)
            if answer is not None:
                return answer
        return None

    return fault


async def intent_where(
    store: InMemoryIntentStore, key: str, check: Callable[[TxIntent], bool], within: float = 15
) -> TxIntent:
    async def matches() -> bool:
        intent = await store.get(key)
        return intent is not None and check(intent)

    await eventually(matches, within)
    found = await store.get(key)
    assert found is not None
    return found


class HangAfterJournal(InMemoryIntentStore):
    """Journals the first write of `key`, then never returns: the task is cancelled there,
    between the journal write and the broadcast."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.journaled = asyncio.Event()

    async def put(self, intent: TxIntent) -> None:
        await super().put(intent)
        if intent.key == self.key and intent.status is IntentStatus.SIGNED:
            self.journaled.set()
            await asyncio.Event().wait()


async def test_an_intent_cancelled_before_its_send_does_not_stall_the_next(
    devchain: Devchain, proxy: RpcProxy
) -> None:
    store = HangAfterJournal("abandoned")
    timings = TxTimings(poll_interval=0.05, replace_after=0.3, receipt_timeout=10, confirmations=0)
    async with through(proxy) as provider:
        txs = manager(provider, store, timings=timings)
        abandoned = asyncio.create_task(txs.send("abandoned", pay(1)))
        await asyncio.wait_for(store.journaled.wait(), 10)
        abandoned.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await abandoned

        result = await txs.send("next", pay(2))

        assert result.nonce == 1
        finished = await intent_where(store, "abandoned", lambda i: not i.status.open)
    assert finished.status is IntentStatus.MINED
    assert finished.tx_hash == finished.attempts[0].tx_hash  # broadcast as journaled
    assert await devchain.nonce(dev_address(SIGNER)) == 2


async def test_a_lagging_receipt_index_never_causes_a_second_send(
    devchain: Devchain, proxy: RpcProxy
) -> None:
    hidden: dict[str, int] = {}
    sends: list[str] = []

    def lagging_receipts(request: dict[str, Any]) -> Any:
        if request["method"] == "eth_sendRawTransaction":
            sends.append(request["params"][0])
        if request["method"] == "eth_getTransactionReceipt":
            tx_hash = request["params"][0]
            hidden[tx_hash] = hidden.get(tx_hash, 0) + 1
            if hidden[tx_hash] <= 30:  # the index answers "unknown" for a while
                return reply(request, result=None)
        return None

    proxy.fault = lagging_receipts
    timings = TxTimings(poll_interval=0.05, replace_after=60, receipt_timeout=20, confirmations=0)
    async with through(proxy) as provider:
        result = await manager(provider, InMemoryIntentStore(), timings=timings).send(
            "bid-1", pay()
        )

    assert len(sends) == 1
    assert result.nonce == 0
    assert await devchain.nonce(dev_address(SIGNER)) == 1


async def test_a_replacement_the_node_refused_is_not_the_newest_attempt(
    devchain: Devchain, proxy: RpcProxy
) -> None:
    sent: list[str] = []
    refused: list[str] = []

    def refuse_replacements(request: dict[str, Any]) -> Any:
        if request["method"] != "eth_sendRawTransaction":
            return None
        raw = request["params"][0]
        if sent and raw != sent[0]:
            refused.append(raw)
            return reply(request, error="replacement transaction underpriced")
        sent.append(raw)
        return None

    proxy.fault = refuse_replacements
    store = InMemoryIntentStore()
    await devchain.automine(False)
    timings = TxTimings(poll_interval=0.05, replace_after=0.2, receipt_timeout=20, confirmations=0)
    async with through(proxy) as provider:
        sending = asyncio.create_task(manager(provider, store, timings=timings).send("k", pay()))
        first = (
            await intent_where(store, "k", lambda i: i.status is IntentStatus.PENDING)
        ).attempts[0]

        async def refused_twice() -> bool:
            return len(refused) >= 2

        await eventually(refused_twice, 15)
        # An attempt is journaled before it is broadcast, so wait for the refusal to land.
        intent = await intent_where(store, "k", lambda i: i.newest_attempt() == first)
        assert [a.rejected for a in intent.attempts].count(True) >= 2
        await devchain.mine()
        result = await asyncio.wait_for(sending, 15)

    assert not sending.cancelled()
    assert result.tx_hash == first.tx_hash
    assert result.attempts == 1


async def test_a_fee_spike_while_filling_a_gap_is_recorded_not_raised(
    devchain: Devchain, proxy: RpcProxy
) -> None:
    store = InMemoryIntentStore()
    capped = FeePolicy(max_fee_per_gas=5 * GWEI, min_priority_fee=GWEI, max_priority_fee=GWEI)
    timings = TxTimings(poll_interval=0.05, replace_after=0.2, receipt_timeout=30, confirmations=0)
    await devchain.automine(False)
    async with through(proxy) as provider:
        txs = manager(provider, store, timings=timings, fees=capped)
        txs.nonces.skip_to(1)  # as if nonce 0 had been taken and then abandoned
        sending = asyncio.create_task(txs.send("after-gap", pay()))
        await intent_where(store, "after-gap", lambda i: i.status is IntentStatus.PENDING)
        await devchain.call("anvil_setNextBlockBaseFeePerGas", hex(40 * GWEI))
        await devchain.mine()

        noted = await intent_where(store, "after-gap", lambda i: "fee cap" in (i.error or ""))
        assert noted.status is IntentStatus.PENDING
        assert not sending.done()

        await devchain.call("anvil_setNextBlockBaseFeePerGas", hex(GWEI // 10))
        await devchain.mine()
        await devchain.automine(True)

        async def mined() -> bool:
            await devchain.mine()
            return sending.done()

        await eventually(mined, 20)
        result = sending.result()

    assert result.nonce == 1
    assert await devchain.nonce(dev_address(SIGNER)) == 2


async def test_attempts_per_intent_are_limited(devchain: Devchain, proxy: RpcProxy) -> None:
    store = InMemoryIntentStore()
    await devchain.automine(False)
    timings = TxTimings(
        poll_interval=0.05, replace_after=0.1, receipt_timeout=3, confirmations=0, max_attempts=3
    )
    async with through(proxy) as provider:
        with pytest.raises(TransactionTimeout):
            await manager(provider, store, timings=timings).send("k", pay())

    intent = await store.get("k")
    assert intent is not None
    assert len(intent.attempts) == 3
    assert "attempts" in (intent.error or "")


class CrashAfterJournal(InMemoryIntentStore):
    """The process dies right after the intent is journaled, before the broadcast."""

    class Crash(Exception):
        pass

    crash = True

    async def put(self, intent: TxIntent) -> None:
        await super().put(intent)
        if self.crash and intent.status is IntentStatus.SIGNED:
            raise self.Crash


async def test_a_journaled_transaction_no_node_takes_is_failed_and_its_nonce_freed(
    devchain: Devchain, proxy: RpcProxy
) -> None:
    def refuse_payments_to_bob(request: dict[str, Any]) -> Any:
        if (
            request["method"] == "eth_sendRawTransaction"
            and BOB[2:].lower() in request["params"][0]
        ):
            return reply(request, error="insufficient funds for gas * price + value")
        return None

    store = CrashAfterJournal()
    timings = TxTimings(poll_interval=0.05, replace_after=0.3, receipt_timeout=5, confirmations=0)
    async with through(proxy) as provider:
        with pytest.raises(CrashAfterJournal.Crash):
            await manager(provider, store, timings=timings).send("doomed", pay())
        store.crash = False
        proxy.fault = refuse_payments_to_bob

        restarted = manager(provider, store, timings=timings)
        results = await restarted.recover()

        assert isinstance(results["doomed"], TransactionError)
        doomed = await store.get("doomed")
        assert doomed is not None
        assert doomed.status is IntentStatus.FAILED
        assert "insufficient funds" in (doomed.error or "")

        async def nonce_used() -> bool:
            return await devchain.nonce(dev_address(SIGNER)) == 1

        await eventually(nonce_used)
        proxy.fault = None
        later = await restarted.send("later", pay())

    assert later.nonce == 1
    block = await devchain.call("eth_getBlockByNumber", "0x2", True)
    freed = block["transactions"][0]
    assert (int(freed["nonce"], 16), int(freed["value"], 16)) == (0, 0)
    assert freed["to"].lower() == dev_address(SIGNER).lower()
