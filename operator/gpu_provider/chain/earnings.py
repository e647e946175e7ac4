"""The provider's earnings: reading them and withdrawing them, each withdrawal sent once.

`EscrowProtocol.providerEarnings(provider, token)` gives earned, withdrawn and balance;
`withdrawEarnings(provider, fizzId=0, token, amount)` pays `amount` to the registered reward
wallet. A withdrawal's idempotency key is `withdraw:<token>:<withdrawn so far>`
(`market.earnings.withdraw_key`): `withdrawn` only grows once a withdrawal is mined, so a
restart before that computes the same key and resumes the journaled transaction, even when
the balance has grown since (the journaled calldata is sent again as it is, never a second
withdrawal with the new amount). A journaled withdrawal that reverted (the balance moved
under it) is dropped from the journal and the withdrawal planned again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from eth_utils.address import to_checksum_address

from gpu_provider.api.v1alpha1.providernode import Earnings
from gpu_provider.chain.contracts import Contracts
from gpu_provider.chain.intents import IntentStatus, IntentStore
from gpu_provider.chain.tx import TxManager
from gpu_provider.chain.txtypes import TxRequest
from gpu_provider.market.earnings import ProviderEarnings, withdraw_key, withdrawal_amount

__all__ = ["EarningsCollector", "Withdrawal", "earnings_status", "read_earnings"]

log = logging.getLogger(__name__)

FIZZ_ID = 0
"""Provider mode: no Fizz node."""


async def read_earnings(contracts: Contracts, provider: str, token: str) -> ProviderEarnings:
    earned, withdrawn, balance = await contracts.escrow_protocol.functions.providerEarnings(
        to_checksum_address(provider), to_checksum_address(token)
    ).call()
    return ProviderEarnings(earned=int(earned), withdrawn=int(withdrawn), balance=int(balance))


def earnings_status(symbol: str, token: str, earnings: ProviderEarnings) -> Earnings:
    """One `ProviderNode.status.earnings[]` entry (amounts as decimal strings: exact)."""
    return Earnings(
        token=symbol,
        address=to_checksum_address(token),
        earned=str(earnings.earned),
        withdrawn=str(earnings.withdrawn),
        balance=str(earnings.balance),
    )


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """A withdrawal mined under `key`; `resumed`: its transaction was journaled before this
    call (by an earlier run) and looked up or resumed, not signed anew."""

    token: str
    amount: int
    key: str
    tx_hash: str
    block_number: int
    resumed: bool


class EarningsCollector:
    """Withdraws `provider`'s earnings through its transaction manager and journal."""

    def __init__(
        self, contracts: Contracts, tx: TxManager, store: IntentStore, provider: str
    ) -> None:
        self.contracts = contracts
        self.tx = tx
        self.store = store
        self.provider = to_checksum_address(provider)

    async def earnings(self, token: str) -> ProviderEarnings:
        return await read_earnings(self.contracts, self.provider, token)

    async def withdraw_due(self, token: str, threshold: int) -> Withdrawal | None:
        """Withdraw the whole balance of `token` once it reaches `threshold` base units
        (or resume a journaled withdrawal); None when nothing is due."""
        earnings = await self.earnings(token)
        journaled = await self._journaled(token, earnings)
        if journaled is not None:
            return await self._send(token, *journaled)
        amount = withdrawal_amount(earnings, threshold)
        if amount is None:
            return None
        return await self.withdraw(token, amount, earnings=earnings)

    async def withdraw(
        self, token: str, amount: int, *, earnings: ProviderEarnings | None = None
    ) -> Withdrawal:
        """Withdraw `amount` base units of `token`, once per key (see the module doc)."""
        if amount <= 0:
            raise ValueError("a withdrawal moves a positive amount")
        earnings = earnings or await self.earnings(token)
        journaled = await self._journaled(token, earnings)
        if journaled is not None:
            return await self._send(token, *journaled)
        request = TxRequest.call(
            self.contracts.escrow_protocol,
            "withdrawEarnings",
            self.provider,
            FIZZ_ID,
            to_checksum_address(token),
            amount,
        )
        return await self._send(token, withdraw_key(token, earnings.withdrawn), request, amount)

    async def _journaled(
        self, token: str, earnings: ProviderEarnings
    ) -> tuple[str, TxRequest, int] | None:
        """The journaled withdrawal under this key, to resume as it was signed."""
        key = withdraw_key(token, earnings.withdrawn)
        intent = await self.store.get(key)
        if intent is None:
            return None
        if intent.status in (IntentStatus.REVERTED, IntentStatus.FAILED):
            # Nothing of it moved funds (`withdrawn` is unchanged): plan again.
            log.info("%s %s; planning the withdrawal again", key, intent.status.value.lower())
            await self.store.delete(key)
            return None
        decoded = self.contracts.escrow_protocol.decode_function_input(intent.data)
        amount = int(decoded[1]["_amount"])
        request = TxRequest(
            to=intent.to,
            data=intent.data,
            value=intent.value,
            abi=self.contracts.escrow_protocol.abi,
            purpose="withdrawEarnings",
        )
        return key, request, amount

    async def _send(self, token: str, key: str, request: TxRequest, amount: int) -> Withdrawal:
        resumed = await self.store.get(key) is not None
        result = await self.tx.send(key, request)
        log.info("withdrew %d of %s (%s) in block %d", amount, token, key, result.block_number)
        return Withdrawal(token, amount, key, result.tx_hash, result.block_number, resumed)
