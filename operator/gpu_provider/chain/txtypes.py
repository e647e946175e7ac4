"""What the transaction manager is asked to send, how long it waits, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from eth_utils.address import is_address, to_checksum_address
from eth_utils.hexadecimal import is_hex
from web3.contract import AsyncContract

from gpu_provider.api.v1alpha1.providernode import MAX_TX_ATTEMPTS
from gpu_provider.chain.decoding import Abi

MAX_ATTEMPTS: Final = MAX_TX_ATTEMPTS
"""The most attempts any intent may have: what `ProviderNode.status.pendingTxs` can hold."""


@dataclass(frozen=True)
class TxTimings:
    """How long the manager waits, in seconds; `confirmations`: blocks on top of a receipt;
    `max_attempts`: signed versions (replacements included) journaled per intent, after
    which the newest one is only re-broadcast (it bounds the journal and the fees paid)."""

    poll_interval: float = 2.0
    replace_after: float = 60.0
    receipt_timeout: float = 900.0
    confirmations: int = 2
    rpc_retries: int = 5
    max_attempts: int = 10

    def __post_init__(self) -> None:
        if self.poll_interval <= 0 or self.replace_after <= 0 or self.receipt_timeout <= 0:
            raise ValueError("poll_interval, replace_after and receipt_timeout must be > 0")
        if self.confirmations < 0 or self.rpc_retries < 1:
            raise ValueError("confirmations must be >= 0 and rpc_retries >= 1")
        if not 1 <= self.max_attempts <= MAX_ATTEMPTS:
            raise ValueError(f"max_attempts must be between 1 and {MAX_ATTEMPTS}")


@dataclass(frozen=True)
class TxRequest:
    """What to send: a call (or transfer) plus the ABI to decode its reverts with, and a
    short `purpose` shown in status (the function's name for `call`)."""

    to: str | None
    data: str = "0x"
    value: int = 0
    gas: int | None = None
    abi: Abi = field(default=(), compare=False, repr=False)
    purpose: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.to is not None:
            if not is_address(self.to):
                raise ValueError(f"TxRequest.to {self.to!r} is not an address")
            object.__setattr__(self, "to", str(to_checksum_address(self.to)))
        if not self.data.startswith("0x") or not is_hex(self.data) or len(self.data) % 2:
            raise ValueError("TxRequest.data must be 0x-prefixed hex bytes")
        if self.value < 0 or (self.gas is not None and self.gas <= 0):
            raise ValueError("TxRequest.value must be >= 0 and gas > 0")

    @classmethod
    def call(
        cls,
        contract: AsyncContract,
        function: str,
        *args: Any,
        value: int = 0,
        gas: int | None = None,
    ) -> TxRequest:
        """A call of `contract.function(*args)`."""
        data = contract.encode_abi(function, args=list(args))
        return cls(
            to=str(contract.address),
            data=str(data),
            value=value,
            gas=gas,
            abi=contract.abi,
            purpose=function,
        )


@dataclass(frozen=True)
class TxResult:
    """A mined, successful transaction."""

    key: str
    tx_hash: str
    block_number: int
    block_hash: str
    gas_used: int
    effective_gas_price: int
    nonce: int
    attempts: int
