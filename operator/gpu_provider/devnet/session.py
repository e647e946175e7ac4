"""One devnet through the operator's own chain client (`gpu_provider.chain`).

The devnet tools (tenant, matchmaker, deploy) talk to anvil exactly as the operator talks to
Base: `chain.rpc.connect` checks the chain id, each signer's transactions go through a
`TxManager` under an idempotency key (gas estimate, EIP-1559 fees, a recorded intent before
the broadcast, the receipt), and a refusal comes back as the contract's custom error, decoded.
Every call is async; the CLI runs one `asyncio.run` per command.

Intents live in memory (`InMemoryIntentStore`): each devnet command is one short process whose
transactions are idempotent to retry by hand, and a devnet restarted from scratch would make a
file journal lie (see "Transactions" in docs/devnet.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Self

from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3
from web3.contract import AsyncContract
from web3.exceptions import ContractLogicError

from gpu_provider.chain.artifacts import CONTRACT_NAMES
from gpu_provider.chain.contracts import Contracts, bind, load_abi
from gpu_provider.chain.decoding import Abi, decode_revert, event_decoders
from gpu_provider.chain.errors import (
    ChainError,
    ChainIdMismatch,
    RpcUnavailable,
    TransactionReverted,
    TransactionTimeout,
)
from gpu_provider.chain.intents import InMemoryIntentStore
from gpu_provider.chain.jsonrpc import Rpc
from gpu_provider.chain.rpc import connect
from gpu_provider.chain.tx import TxManager, TxRequest, TxTimings
from gpu_provider.chain.wallet import Wallet
from gpu_provider.config import ChainSettings
from gpu_provider.devnet.errors import DevnetError
from gpu_provider.devnet.refusals import refusal_sentence
from gpu_provider.devnet.state import DevnetState

__all__ = ["DevnetChain", "Mined", "devnet_timings", "open_devnet"]

_REQUEST_TIMEOUT: Final = 10.0
_RECEIPT_TIMEOUT: Final = 60.0


def devnet_timings(block_time: float) -> TxTimings:
    """Receipts are polled often (anvil is local) and need no confirmations (no reorgs)."""
    return TxTimings(
        poll_interval=0.05 if block_time == 0 else min(0.25, block_time / 4),
        replace_after=30.0,
        receipt_timeout=_RECEIPT_TIMEOUT,
        confirmations=0,
    )


@dataclass(frozen=True, slots=True)
class Mined:
    """A mined, successful transaction: its block and its logs (raw JSON-RPC log objects)."""

    tx_hash: str
    block_number: int
    logs: Sequence[Mapping[str, Any]]


class DevnetChain:
    """The devnet's RPC, its contracts by artifact name, and one `TxManager` per signer."""

    def __init__(self, w3: AsyncWeb3[Any], state: DevnetState, settings: ChainSettings) -> None:
        self.w3 = w3
        self.state = state
        self.settings = settings
        self.rpc = Rpc.of(w3)
        self.marketplace = Contracts(w3, settings.contracts)
        """The operator's bindings (and transaction builders) for the marketplace contracts."""
        self._contracts: dict[str, AsyncContract] = {}
        self._managers: dict[str, TxManager] = {}
        self._error_abis: list[Abi] = [load_abi(name) for name in CONTRACT_NAMES]

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.w3.provider.disconnect()

    def contract(self, name: str) -> AsyncContract:
        """A deployed contract by its artifact name ("OrderRequest", "TestToken", ...)."""
        if name not in self._contracts:
            self._contracts[name] = bind(self.w3, load_abi(name), self.state.address(name))
        return self._contracts[name]

    async def head(self) -> int:
        return await self.rpc.block_number()

    def manager(self, account: LocalAccount) -> TxManager:
        """The transaction manager of `account` (one per signer, so nonces never collide)."""
        address = str(account.address)
        if address not in self._managers:
            self._managers[address] = TxManager.from_settings(
                self.w3,
                self.settings,
                Wallet(account),
                InMemoryIntentStore(),
                timings=devnet_timings(self.state.block_time),
                error_abis=self._error_abis,
            )
        return self._managers[address]

    async def send(
        self, account: LocalAccount, key: str, request: TxRequest, *, what: str
    ) -> Mined:
        """Send once under `key` and wait for it; DevnetError with a readable refusal."""
        try:
            result = await self.manager(account).send(key, request)
        except TransactionReverted as error:
            raise DevnetError(f"{what} was refused: {refusal_sentence(error)}") from None
        except TransactionTimeout:
            raise DevnetError(
                f"{what}: the transaction was not mined within {_RECEIPT_TIMEOUT:.0f} s: "
                "is the chain producing blocks?"
            ) from None
        except RpcUnavailable:
            raise
        except ChainError as error:
            raise DevnetError(f"{what} failed: {error}") from None
        receipt = await self.rpc.receipt(result.tx_hash)
        logs = list(receipt.get("logs", [])) if receipt is not None else []
        return Mined(result.tx_hash, result.block_number, logs)

    async def call(
        self, account: LocalAccount, key: str, contract: str, function: str, *args: Any, what: str
    ) -> Mined:
        """`send` of `contract.function(*args)`."""
        request = TxRequest.call(self.contract(contract), function, *args)
        return await self.send(account, key, request, what=what)

    async def read(self, contract: str, function: str, *args: Any, what: str) -> Any:
        """A view call; a revert becomes DevnetError(`what: <sentence>`)."""
        try:
            return await self.contract(contract).functions[function](*args).call()
        except ContractLogicError as error:
            revert = decode_revert(_revert_data(error), self._error_abis)
            if revert.error_name is None and error.message:
                reason = str(error.message).removeprefix("execution reverted: ")
                raise DevnetError(f"{what}: {reason}") from None
            raise DevnetError(f"{what}: {refusal_sentence(revert)}") from None

    def events(self, mined: Mined, contract: str, event: str) -> list[dict[str, Any]]:
        """Decoded `event`s that `contract` emitted in the transaction, in log order."""
        decoders = event_decoders(load_abi(contract), [event])
        address = self.state.address(contract).lower()
        found = []
        for raw in mined.logs:
            topics = raw.get("topics") or []
            if str(raw.get("address", "")).lower() != address or not topics:
                continue
            decoder = decoders.get(str(topics[0]).lower())
            if decoder is not None:
                found.append(dict(decoder.decode(topics, str(raw["data"]))))
        return found


def _revert_data(error: ContractLogicError) -> str | None:
    data = error.data
    if isinstance(data, str):
        return data
    if isinstance(data, Mapping):
        inner = data.get("data")
        return str(inner) if inner is not None else None
    return None


async def open_devnet(state: DevnetState) -> DevnetChain:
    """Connect to the devnet `state` describes and check its contracts are there."""
    settings = state.chain_settings(confirmations=0)
    try:
        w3 = await connect(settings, request_timeout=_REQUEST_TIMEOUT)
    except ChainIdMismatch:
        raise DevnetError(
            f"{state.rpc_url} serves another chain than the devnet's chain {state.chain_id}: "
            "run `gpu-provider devnet up` again"
        ) from None
    except RpcUnavailable:
        raise DevnetError(
            f"the devnet at {state.rpc_url} does not answer: is anvil still running? "
            "Start one with `gpu-provider devnet up`"
        ) from None
    chain = DevnetChain(w3, state, settings)
    try:
        code = await w3.eth.get_code(state.address("Bid"))
    except BaseException:
        await chain.close()
        raise
    if not code:
        await chain.close()
        raise DevnetError(
            f"no contracts at the addresses recorded for {state.rpc_url}: the chain was "
            "restarted without them; run `gpu-provider devnet up` again"
        )
    return chain
