"""A synchronous web3 session on a devnet: contracts by name, transactions with clear refusals.

Devnet tools are command-line programs, not the operator's event loop, so they use web3's
blocking client. Every transaction is signed locally (anvil's keys come from the mnemonic) and
a refusal becomes a `DevnetError` carrying the contract's own revert sentence, e.g.
`createOrder was refused: Insufficient escrow balance`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted
from web3.logs import DISCARD
from web3.types import Nonce, TxParams, TxReceipt

from gpu_provider.chain.artifacts import load_artifact
from gpu_provider.devnet.errors import DevnetError
from gpu_provider.devnet.state import DevnetState

__all__ = ["DevnetClient", "connect", "revert_reason"]

_REVERT_PREFIX: Final = "execution reverted: "
# Estimates are exact for these calls; the margin covers a state change before inclusion.
_GAS_MARGIN: Final = 1.25


def revert_reason(error: ContractLogicError) -> str:
    """The contract's sentence from a revert (`Bidding window closed`), without web3's prefix."""
    message = str(error.message or error)
    return message.removeprefix(_REVERT_PREFIX).strip() or "reverted without a reason"


@dataclass
class DevnetClient:
    """One devnet: the web3 connection, its description, and the contracts by name."""

    w3: Web3
    state: DevnetState
    receipt_timeout: float = 60.0

    def contract(self, name: str) -> Contract:
        address = self.state.address(name)
        return self.w3.eth.contract(address=address, abi=load_artifact(name).abi)

    def head(self) -> int:
        return int(self.w3.eth.block_number)

    def send(self, call: ContractFunction, sender: LocalAccount, what: str) -> TxReceipt:
        """Sign, send and wait for one transaction; DevnetError with the reason on refusal."""
        params: TxParams = {"from": sender.address}
        try:
            # Estimated against the pending block, where the transaction will run: in the
            # latest block some calls take a cheaper path (closing a lease in the block it
            # started settles nothing) and the estimate would run out of gas on chain.
            gas = call.estimate_gas(params, block_identifier="pending")
            params["nonce"] = Nonce(self.w3.eth.get_transaction_count(sender.address, "pending"))
            params["gas"] = int(gas * _GAS_MARGIN)
            tx = call.build_transaction(params)
        except ContractLogicError as error:
            raise DevnetError(f"{what} was refused: {revert_reason(error)}") from None
        # TxParams is a TypedDict; eth-account types its argument as a plain dict.
        signed = sender.sign_transaction(dict(tx))  # type: ignore[arg-type]
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self.receipt_timeout
            )
        except TimeExhausted:
            raise DevnetError(
                f"{what}: transaction {tx_hash.to_0x_hex()} was not mined within "
                f"{self.receipt_timeout:.0f} s: is the chain producing blocks?"
            ) from None
        if receipt["status"] != 1:
            if receipt["gasUsed"] >= tx["gas"]:
                raise DevnetError(f"{what} ran out of gas (limit {tx['gas']})")
            raise DevnetError(f"{what} reverted: {self._replay(call, sender, receipt)}")
        return receipt

    def _replay(self, call: ContractFunction, sender: LocalAccount, receipt: TxReceipt) -> str:
        # The state changed between the estimate and the block (a window closed, another
        # sender got there first): running the call again at that block shows the reason.
        try:
            call.call({"from": sender.address}, block_identifier=receipt["blockNumber"])
        except ContractLogicError as error:
            return revert_reason(error)
        return f"transaction {receipt['transactionHash'].to_0x_hex()} failed"

    def events(self, receipt: TxReceipt, contract: str, event: str) -> list[dict[str, Any]]:
        """Decoded `event`s that `contract` emitted in the transaction, in log order."""
        emitter = self.contract(contract)
        found = emitter.events[event]().process_receipt(receipt, errors=DISCARD)
        return [dict(log["args"]) for log in found if log["address"] == emitter.address]


def connect(state: DevnetState, *, timeout: float = 10.0) -> DevnetClient:
    """Open the devnet's RPC and check it is the chain, with the contracts, that it describes."""
    w3 = Web3(Web3.HTTPProvider(state.rpc_url, request_kwargs={"timeout": timeout}))
    try:
        chain_id = int(w3.eth.chain_id)
        code = w3.eth.get_code(state.address("Bid"))
    except OSError:
        raise DevnetError(
            f"the devnet at {state.rpc_url} does not answer: is anvil still running? "
            "Start one with `gpu-provider devnet up`"
        ) from None
    if chain_id != state.chain_id:
        raise DevnetError(
            f"{state.rpc_url} serves chain {chain_id}, not the devnet's chain {state.chain_id}: "
            "run `gpu-provider devnet up` again"
        )
    if not code:
        raise DevnetError(
            f"no contracts at the addresses recorded for {state.rpc_url}: the chain was "
            "restarted without them; run `gpu-provider devnet up` again"
        )
    return DevnetClient(w3=w3, state=state)
