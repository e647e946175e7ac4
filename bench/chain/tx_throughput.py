"""Transaction throughput: the transaction manager vs bare signed sends.

One instamine anvil, TestToken transfers (one Transfer event each). The bare floor signs
every transaction locally with consecutive nonces and fixed gas, sends them with
`eth_sendRawTransaction` one after the other and then polls `eth_getTransactionReceipt` until
all are mined. The manager sends the same transfers concurrently through `TxManager.send`,
each under its own idempotency key with the in-memory journal, once with gas estimation and
once with the gas given (as the bare floor does).

Run: `.venv/bin/python -m bench.chain.tx_throughput` (from the repository root).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import aiohttp
from eth_abi import abi as eth_abi
from eth_account import Account
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address
from web3 import AsyncWeb3

from gpu_provider.chain.artifacts import load_artifact
from gpu_provider.chain.contracts import bind
from gpu_provider.chain.intents import InMemoryIntentStore
from gpu_provider.chain.jsonrpc import Rpc
from gpu_provider.chain.rpc import FailoverProvider
from gpu_provider.chain.tx import TxManager, TxRequest, TxTimings
from gpu_provider.chain.wallet import Wallet
from gpu_provider.devnet.anvil import DEFAULT_MNEMONIC, Anvil

CHAIN_ID = 31337
GAS = 60_000
Account.enable_unaudited_hdwallet_features()


def key(index: int) -> str:
    account = Account.from_mnemonic(DEFAULT_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return "0x" + bytes(account.key).hex()


def transfer_data(to: str, amount: int) -> str:
    selector = function_signature_to_4byte_selector("transfer(address,uint256)")
    return "0x" + (selector + eth_abi.encode(["address", "uint256"], [to, amount])).hex()


class Node:
    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session

    async def call(self, method: str, *params: Any) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        async with self.session.post(self.url, json=body) as reply:
            answer = json.loads(await reply.read())
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    async def wait_receipts(self, hashes: list[str]) -> None:
        missing = list(hashes)
        while missing:
            still = []
            for tx_hash in missing:
                receipt = await self.call("eth_getTransactionReceipt", tx_hash)
                if receipt is None:
                    still.append(tx_hash)
                elif int(receipt["status"], 16) != 1:
                    raise RuntimeError(f"{tx_hash} reverted")
            missing = still
            if missing:
                await asyncio.sleep(0.01)


async def deploy_token(node: Node, owner: str) -> str:
    artifact = load_artifact("TestToken")
    args = eth_abi.encode(["string", "string", "uint8", "uint256"], ["Bench", "B", 18, 10**30])
    tx = await node.call(
        "eth_sendTransaction", {"from": owner, "data": artifact.bytecode + args.hex()}
    )
    await node.wait_receipts([tx])
    receipt = await node.call("eth_getTransactionReceipt", tx)
    return str(to_checksum_address(receipt["contractAddress"]))


async def bare(node: Node, token: str, signer_key: str, count: int, recipient: str) -> float:
    signer = Account.from_key(signer_key)
    started = time.perf_counter()
    nonce = int(await node.call("eth_getTransactionCount", signer.address, "pending"), 16)
    base = int((await node.call("eth_getBlockByNumber", "latest", False))["baseFeePerGas"], 16)
    hashes = []
    for i in range(count):
        signed = signer.sign_transaction(
            {
                "type": 2,
                "chainId": CHAIN_ID,
                "nonce": nonce + i,
                "to": token,
                "data": transfer_data(recipient, 1),
                "gas": GAS,
                "maxFeePerGas": 2 * base + 10**9,
                "maxPriorityFeePerGas": 10**9,
            }
        )
        hashes.append(
            await node.call("eth_sendRawTransaction", "0x" + signed.raw_transaction.hex())
        )
    await node.wait_receipts(hashes)
    return time.perf_counter() - started


async def managed(
    url: str, token: str, signer_key: str, count: int, recipient: str, gas: int | None, run: int
) -> float:
    provider = FailoverProvider([url], chain_id=CHAIN_ID)
    contract = bind(AsyncWeb3(provider), load_artifact("TestToken").abi, token)
    txs = TxManager(
        Rpc(provider),
        Wallet.from_private_key(signer_key),
        InMemoryIntentStore(),
        chain_id=CHAIN_ID,
        timings=TxTimings(
            poll_interval=0.01, replace_after=60, receipt_timeout=120, confirmations=0
        ),
    )
    request = TxRequest.call(contract, "transfer", recipient, 1, gas=gas)
    started = time.perf_counter()
    await asyncio.gather(*(txs.send(f"run{run}-transfer-{i}", request) for i in range(count)))
    elapsed = time.perf_counter() - started
    await provider.disconnect()
    return elapsed


async def mine_every(node: Node, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await node.call("evm_mine")


async def measure(url: str, count: int, rounds: int, interval: float | None) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        node = Node(url, session)
        owner = Account.from_key(key(0)).address
        token = await deploy_token(node, owner)
        bare_signer, manager_signer = key(1), key(2)
        for signer in (bare_signer, manager_signer):
            funding = transfer_data(Account.from_key(signer).address, 10**24)
            tx = await node.call(
                "eth_sendTransaction", {"from": owner, "to": token, "data": funding}
            )
            await node.wait_receipts([tx])
        recipient = Account.from_key(key(3)).address
        miner = None
        if interval is not None:
            await node.call("evm_setAutomine", False)
            miner = asyncio.create_task(mine_every(node, interval))
        bare_s, estimated_s, given_s = [], [], []
        for run in range(rounds):
            bare_s.append(await bare(node, token, bare_signer, count, recipient))
            args = (url, token, manager_signer, count, recipient)
            estimated_s.append(await managed(*args, None, 2 * run))
            given_s.append(await managed(*args, GAS, 2 * run + 1))
        if miner is not None:
            miner.cancel()
    b, e, g = (statistics.median(x) for x in (bare_s, estimated_s, given_s))
    return {
        "mining": "instamine (a block per tx)"
        if interval is None
        else f"a block every {interval} s",
        "transactions": count,
        "bare_s": b,
        "manager_estimated_s": e,
        "manager_gas_given_s": g,
        "bare_tps": count / b,
        "manager_estimated_tps": count / e,
        "manager_gas_given_tps": count / g,
        "ratio_estimated": e / b,
        "ratio_gas_given": g / b,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--block-interval", type=float, default=None, help="mine on a timer instead of per tx"
    )
    args = parser.parse_args()
    with Anvil(block_time=None) as anvil:
        result = asyncio.run(
            measure(anvil.url, args.transactions, args.rounds, args.block_interval)
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
