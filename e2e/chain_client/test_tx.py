"""The transaction manager sends each intent once and gets it mined: after restarts, dropped
or underpriced transactions, and nonces used behind its back; reverts come back with reasons."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import AsyncWeb3

from e2e.chain_client.conftest import CHAIN_ID, Devchain, dev_address, dev_key, eventually
from gpu_provider.api.v1alpha1.providernode import PendingTx
from gpu_provider.chain.artifacts import load_artifact
from gpu_provider.chain.contracts import bind
from gpu_provider.chain.errors import (
    FeeCapExceeded,
    IntentConflict,
    TransactionReverted,
    TransactionTimeout,
)
from gpu_provider.chain.fees import GWEI, FeePolicy
from gpu_provider.chain.intents import (
    InMemoryIntentStore,
    IntentStatus,
    IntentStore,
    JsonFileIntentStore,
    TxIntent,
)
from gpu_provider.chain.jsonrpc import Rpc
from gpu_provider.chain.rpc import FailoverProvider
from gpu_provider.chain.statusstore import StatusIntentStore
from gpu_provider.chain.tx import TxManager, TxRequest, TxTimings
from gpu_provider.chain.wallet import Wallet

SIGNER = 5
BOB = dev_address(2)
FAST = TxTimings(poll_interval=0.05, replace_after=0.6, receipt_timeout=20, confirmations=0)


def manager(
    provider: FailoverProvider,
    store: IntentStore,
    *,
    timings: TxTimings = FAST,
    fees: FeePolicy | None = None,
) -> TxManager:
    wallet = Wallet.from_private_key(dev_key(SIGNER))
    return TxManager(
        provider_rpc(provider), wallet, store, chain_id=CHAIN_ID, fees=fees, timings=timings
    )


def provider_rpc(provider: FailoverProvider) -> Any:

    return Rpc(provider)


def pay(wei: int = 10**15) -> TxRequest:
    return TxRequest(to=BOB, value=wei)


@contextlib.asynccontextmanager
async def mining(devchain: Devchain, every: float = 0.2) -> AsyncIterator[None]:
    """Automine off; a block every `every` seconds while the block runs."""
    await devchain.automine(False)

    async def loop() -> None:
        while True:
            await asyncio.sleep(every)
            await devchain.mine()

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await devchain.automine(True)


async def first_attempt(store: IntentStore, key: str) -> str:
    async def recorded() -> bool:
        intent = await store.get(key)
        return intent is not None and intent.status is IntentStatus.PENDING

    await eventually(recorded)
    intent = await store.get(key)
    assert intent is not None
    return intent.attempts[0].tx_hash


async def test_sends_a_transaction_and_journals_it(
    devchain: Devchain, provider: FailoverProvider
) -> None:
    store = InMemoryIntentStore()
    result = await manager(provider, store).send("pay-bob-1", pay())

    receipt = await devchain.receipt(result.tx_hash)
    assert int(receipt["status"], 16) == 1
    assert result.nonce == 0
    assert result.block_number == int(receipt["blockNumber"], 16)
    intent = await store.get("pay-bob-1")
    assert intent is not None
    assert intent.status is IntentStatus.MINED
    assert intent.tx_hash == result.tx_hash


async def test_the_same_key_sends_once(devchain: Devchain, provider: FailoverProvider) -> None:
    txs = manager(provider, InMemoryIntentStore())

    results = await asyncio.gather(*(txs.send("withdraw-42", pay()) for _ in range(3)))
    again = await txs.send("withdraw-42", pay())

    assert {r.tx_hash for r in [*results, again]} == {results[0].tx_hash}
    assert await devchain.nonce(dev_address(SIGNER)) == 1


async def test_restart_with_the_same_key_looks_the_transaction_up(
    devchain: Devchain, provider: FailoverProvider, tmp_path: Path
) -> None:
    journal = tmp_path / "intents.json"
    await devchain.automine(False)
    before_restart = manager(
        provider,
        JsonFileIntentStore(journal),
        timings=TxTimings(
            poll_interval=0.05, replace_after=60, receipt_timeout=0.3, confirmations=0
        ),
    )
    with pytest.raises(TransactionTimeout, match="send again with the same key"):
        await before_restart.send("bid-7", pay())
    await devchain.mine()
    await devchain.automine(True)

    after_restart = manager(provider, JsonFileIntentStore(journal))
    result = await after_restart.send("bid-7", pay())

    assert result.attempts == 1
    assert await devchain.nonce(dev_address(SIGNER)) == 1
    assert (await after_restart.send("bid-7", pay())).tx_hash == result.tx_hash


class CrashAfterRecording(InMemoryIntentStore):
    """Dies right after the intent is journaled, before anything is broadcast."""

    class Crash(Exception):
        pass

    async def put(self, intent: TxIntent) -> None:
        await super().put(intent)
        if intent.status is IntentStatus.SIGNED:
            raise self.Crash


async def test_crash_between_journal_and_broadcast_is_finished_on_restart(
    devchain: Devchain, provider: FailoverProvider
) -> None:
    store = CrashAfterRecording()
    with pytest.raises(CrashAfterRecording.Crash):
        await manager(provider, store).send("register", pay())
    assert await devchain.nonce(dev_address(SIGNER), "pending") == 0

    recorded = await store.get("register")
    assert recorded is not None
    resumed = manager(provider, store)
    results = await resumed.recover()

    result = results["register"]
    assert not isinstance(result, Exception)
    assert result.tx_hash == recorded.attempts[0].tx_hash
    assert await devchain.nonce(dev_address(SIGNER)) == 1


async def test_restart_from_provider_node_status_sends_the_journaled_transaction(
    devchain: Devchain, provider: FailoverProvider
) -> None:
    apiserver: list[dict[str, Any]] = []  # status.pendingTxs as the apiserver holds it

    async def patch_then_die(records: list[PendingTx]) -> None:
        apiserver[:] = [r.to_wire() for r in records]
        raise CrashAfterRecording.Crash  # the patch landed; the pod died before the send

    async def patch(records: list[PendingTx]) -> None:
        apiserver[:] = [r.to_wire() for r in records]

    with pytest.raises(CrashAfterRecording.Crash):
        await manager(provider, StatusIntentStore(patch_then_die)).send("register", pay())
    assert await devchain.nonce(dev_address(SIGNER), "pending") == 0

    journaled = [PendingTx.model_validate(r) for r in apiserver]
    restarted = manager(provider, StatusIntentStore(patch, journaled))
    result = (await restarted.recover())["register"]

    assert not isinstance(result, Exception)
    assert result.tx_hash == journaled[0].attempts[0].tx_hash
    assert apiserver[0]["status"] == "Mined"
    assert await devchain.nonce(dev_address(SIGNER)) == 1


async def test_recovers_a_dropped_transaction(
    devchain: Devchain, provider: FailoverProvider
) -> None:
    store = InMemoryIntentStore()
    async with mining(devchain, every=0.25):
        sending = asyncio.create_task(manager(provider, store).send("close-lease-9", pay()))
        dropped = await first_attempt(store, "close-lease-9")
        await devchain.call("anvil_dropTransaction", dropped)
        result = await sending

    assert result.tx_hash != dropped
    assert result.nonce == 0
    assert result.attempts >= 2
    assert await devchain.nonce(dev_address(SIGNER)) == 1


async def test_replaces_a_transaction_priced_under_a_rising_base_fee(
    devchain: Devchain, provider: FailoverProvider
) -> None:
    store = InMemoryIntentStore()
    await devchain.automine(False)
    sending = asyncio.create_task(manager(provider, store).send("attributes", pay()))
    underpriced = await first_attempt(store, "attributes")
    await devchain.call("anvil_setNextBlockBaseFeePerGas", hex(40 * GWEI))
    await devchain.mine()
    assert await devchain.call("eth_getTransactionReceipt", underpriced) is None

    async with mining(devchain, every=0.2):
        result = await sending

    assert result.tx_hash != underpriced
    assert result.attempts >= 2
    assert result.effective_gas_price > 10 * GWEI


async def test_resyncs_after_its_nonce_was_used_out_of_band(
    devchain: Devchain, provider: FailoverProvider
) -> None:
    txs = manager(provider, InMemoryIntentStore())
    await txs.send("first", pay())
    await devchain.call("eth_sendRawTransaction", sign_out_of_band(nonce=1))

    result = await txs.send("second", pay())

    assert result.nonce == 2
    assert await devchain.nonce(dev_address(SIGNER)) == 3


async def test_resends_when_a_pending_transaction_is_replaced_out_of_band(
    devchain: Devchain, provider: FailoverProvider
) -> None:
    store = InMemoryIntentStore()
    await devchain.automine(False)
    sending = asyncio.create_task(manager(provider, store).send("bid-3", pay(777)))
    ours = await first_attempt(store, "bid-3")
    await devchain.call("eth_sendRawTransaction", sign_out_of_band(nonce=0, tip=50 * GWEI))

    async with mining(devchain, every=0.15):
        result = await sending

    assert await devchain.call("eth_getTransactionReceipt", ours) is None
    assert result.nonce == 1
    tx = await devchain.call("eth_getTransactionByHash", result.tx_hash)
    assert int(tx["value"], 16) == 777


async def test_fills_a_nonce_left_unused_below_its_transaction(
    devchain: Devchain, provider: FailoverProvider
) -> None:
    txs = manager(provider, InMemoryIntentStore())
    txs.nonces.skip_to(1)  # as if nonce 0 had been taken and then abandoned

    result = await txs.send("after-gap", pay())

    assert result.nonce == 1
    assert await devchain.nonce(dev_address(SIGNER)) == 2


async def test_revert_at_estimation_sends_nothing_and_says_why(
    devchain: Devchain, provider: FailoverProvider
) -> None:
    store = InMemoryIntentStore()
    token = bind(AsyncWeb3(provider), load_artifact("TestToken").abi, devchain.token)

    with pytest.raises(TransactionReverted) as caught:
        await manager(provider, store).send("overdraw", TxRequest.call(token, "transfer", BOB, 1))

    assert caught.value.error_name == "ERC20InsufficientBalance"  # the devnet's custom error
    assert caught.value.tx_hash is None
    assert await store.get("overdraw") is None
    assert await devchain.nonce(dev_address(SIGNER)) == 0


async def test_mined_revert_is_decoded_and_never_resent(
    devchain: Devchain, provider: FailoverProvider
) -> None:
    store = InMemoryIntentStore()
    token = bind(AsyncWeb3(provider), load_artifact("TestToken").abi, devchain.token)
    request = TxRequest.call(token, "transfer", BOB, 1, gas=100_000)
    txs = manager(provider, store)

    with pytest.raises(TransactionReverted) as caught:
        await txs.send("overdraw", request)
    with pytest.raises(TransactionReverted) as again:
        await txs.send("overdraw", request)

    assert caught.value.error_name == "ERC20InsufficientBalance"  # the devnet's custom error
    assert caught.value.tx_hash is not None
    receipt = await devchain.receipt(caught.value.tx_hash)
    assert int(receipt["status"], 16) == 0
    assert again.value.tx_hash == caught.value.tx_hash
    assert await devchain.nonce(dev_address(SIGNER)) == 1


async def test_refuses_to_pay_above_the_fee_cap(
    devchain: Devchain, provider: FailoverProvider
) -> None:
    capped = FeePolicy(max_fee_per_gas=GWEI // 10, min_priority_fee=1, max_priority_fee=1)

    with pytest.raises(FeeCapExceeded, match=r"above the max fee cap of 0\.1 gwei"):
        await manager(provider, InMemoryIntentStore(), fees=capped).send("capped", pay())
    assert await devchain.nonce(dev_address(SIGNER), "pending") == 0


async def test_a_key_reused_for_another_transaction_is_refused(
    devchain: Devchain, provider: FailoverProvider
) -> None:
    txs = manager(provider, InMemoryIntentStore())
    await txs.send("k", pay(1))

    with pytest.raises(IntentConflict, match="use a new key"):
        await txs.send("k", pay(2))


async def test_waits_for_confirmations(devchain: Devchain, provider: FailoverProvider) -> None:
    timings = TxTimings(poll_interval=0.05, replace_after=60, receipt_timeout=20, confirmations=2)
    sending = asyncio.create_task(
        manager(provider, InMemoryIntentStore(), timings=timings).send("c", pay())
    )
    await asyncio.sleep(0.5)
    assert not sending.done()

    await devchain.mine(2)
    result = await asyncio.wait_for(sending, 5)
    assert await devchain.head() - result.block_number >= 2


def sign_out_of_band(*, nonce: int, tip: int = 2 * GWEI) -> str:
    """The signer's key used by someone else (another tool, another replica)."""
    signed = Account.from_key(dev_key(SIGNER)).sign_transaction(
        {
            "type": 2,
            "chainId": CHAIN_ID,
            "nonce": nonce,
            "to": dev_address(3),
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 100 * GWEI,
            "maxPriorityFeePerGas": tip,
        }
    )
    return "0x" + bytes(signed.raw_transaction).hex()
