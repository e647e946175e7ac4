"""The devnet tenant: fund escrow, order GPUs from YAML, wait for the lease, send the manifest,
watch and close the lease. What Spheron's SDK does for a tenant, through the operator's chain
client (`gpu_provider.chain`, via `DevnetChain`); the manifest upload is in `upload.py`.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from eth_account import Account
from eth_account.signers.local import LocalAccount

from gpu_provider.devnet.errors import DevnetError
from gpu_provider.devnet.orderfile import OrderTerms, TenantOrder, order_terms
from gpu_provider.devnet.session import DevnetChain
from gpu_provider.market import base_units_per_block_to_usd_per_hour, encode

__all__ = [
    "Balances",
    "ClosedLease",
    "LeaseInfo",
    "PlacedOrder",
    "Tenant",
    "format_amount",
    "load_private_key",
    "usd_to_base_units",
]

ORDER_VERSION: Final = 1
MODE_PROVIDER: Final = 1
ORDER_STATES: Final = {0: "OPEN", 1: "PROVISIONED", 2: "CLOSED", 3: "MATCHED"}
LEASE_STATES: Final = {0: "ACTIVE", 1: "TERMINATED"}
_ORDER_OPEN, _ORDER_CLOSED, _ORDER_MATCHED = 0, 2, 3


def usd_to_base_units(amount: Decimal, decimals: int) -> int:
    """Token base units for a USD amount of a USD stablecoin; exact or DevnetError."""
    if not amount.is_finite() or amount <= 0:
        raise DevnetError("the amount must be a positive number of USD")
    units = amount * 10**decimals
    if units != units.to_integral_value():
        raise DevnetError(f"{amount} has more decimal places than the token's {decimals}")
    return int(units)


def format_amount(base_units: int, decimals: int) -> str:
    """Base units as a decimal number of tokens, exact, no exponent (`12.5`, `0.000001`)."""
    text = f"{Decimal(base_units).scaleb(-decimals):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def load_private_key(path: Path) -> LocalAccount:
    """A key from a file holding one hex private key (the file's contents are never shown)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise DevnetError(f"cannot read the private key file {path}: {error.strerror}") from None
    try:
        account: LocalAccount = Account.from_key(text)
    except (ValueError, TypeError):
        raise DevnetError(f"{path} does not hold a hex private key") from None
    return account


@dataclass(frozen=True, slots=True)
class Balances:
    """The tenant's test tokens: in its wallet, and in escrow (locked by orders/leases, free)."""

    wallet: int
    locked: int
    unlocked: int


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    order_id: int
    block: int
    terms: OrderTerms
    spec: str


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    lease_id: int
    state: str
    provider: str
    provider_host_uri: str
    tenant: str
    accepted_price: int
    usd_per_hour: Decimal
    start_block: int
    start_time: int
    end_time: int
    num_blocks: int
    settled_block: int
    locked_remaining: int
    head: int

    @property
    def end_block(self) -> int:
        return self.start_block + self.num_blocks

    def as_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["usd_per_hour"] = str(self.usd_per_hour)
        document["end_block"] = self.end_block
        return document


@dataclass(frozen=True, slots=True)
class ClosedLease:
    lease_id: int
    paid: int
    """What the tenant paid the provider at closing (earlier settlements not included)."""
    block: int
    balances: Balances


@dataclass
class Tenant:
    """One tenant wallet acting on a devnet."""

    chain: DevnetChain
    account: LocalAccount

    @property
    def _decimals(self) -> int:
        return self.chain.state.token.decimals

    def amount(self, base_units: int) -> str:
        return f"{format_amount(base_units, self._decimals)} {self.chain.state.token.symbol}"

    async def balances(self) -> Balances:
        state = self.chain.state
        wallet = await self.chain.read(
            "TestToken", "balanceOf", self.account.address, what="balance"
        )
        locked, unlocked = await self.chain.read(
            "EscrowUser",
            "getUserData",
            self.account.address,
            state.payment_token,
            False,
            what="escrow",
        )
        return Balances(wallet=int(wallet), locked=int(locked), unlocked=int(unlocked))

    async def deposit(self, usd: Decimal) -> Balances:
        """Move `usd` worth of test tokens from the wallet into escrow (approve + deposit)."""
        amount = usd_to_base_units(usd, self._decimals)
        before = await self.balances()
        if before.wallet < amount:
            raise DevnetError(
                f"the tenant {self.account.address} holds {self.amount(before.wallet)}, "
                f"less than {self.amount(amount)}"
            )
        state = self.chain.state
        # The escrow's free balance names this deposit: a retry of the same command after a
        # crash finds its intents; a deliberate second deposit sees another balance.
        key = f"deposit:{amount}:{before.unlocked}:{before.locked}"
        escrow = state.address("EscrowUser")
        await self.chain.call(
            self.account, f"{key}:approve", "TestToken", "approve", escrow, amount, what="approve"
        )
        await self.chain.call(
            self.account,
            key,
            "EscrowUser",
            "deposit",
            state.payment_token,
            amount,
            what="deposit",
        )
        return await self.balances()

    async def create_order(self, order: TenantOrder) -> PlacedOrder:
        """Lock the escrow and create the order; its id comes from the OrderCreated event."""
        encoded_spec = encode(order.spec)
        terms = order_terms(order, self.chain.state.token_terms())
        unlocked = (await self.balances()).unlocked
        if unlocked < terms.escrow:
            short = Decimal(format_amount(terms.escrow - unlocked, self._decimals))
            suggested = math.ceil(short)
            raise DevnetError(
                f"the order locks {self.amount(terms.escrow)} of escrow "
                f"({terms.num_blocks} blocks x {terms.max_price_per_block} per block) but only "
                f"{self.amount(unlocked)} is free: run "
                f"`gpu-provider devnet tenant deposit --amount {suggested}`"
            )
        details = (
            terms.max_price_per_block,
            terms.num_blocks,
            self.chain.state.payment_token,
            encoded_spec,
            ORDER_VERSION,
            MODE_PROVIDER,
            [tier - 1 for tier in order.tiers],
        )
        nonce = await self.chain.rpc.transaction_count(self.account.address, "pending")
        mined = await self.chain.call(
            self.account,
            f"order:{hashlib.sha256(repr(details).encode()).hexdigest()[:16]}:{nonce}",
            "OrderRequest",
            "createOrder",
            details,
            what="createOrder",
        )
        (created,) = self.chain.events(mined, "OrderRequest", "OrderCreated")
        return PlacedOrder(
            order_id=int(created["orderId"]),
            block=mined.block_number,
            terms=terms,
            spec=encoded_spec,
        )

    async def cancel(self, order_id: int) -> Balances:
        """Close an OPEN order (no lease yet) and unlock its escrow."""
        await self.chain.call(
            self.account,
            f"cancel:{order_id}",
            "OrderRequest",
            "updateOrderStateToClosed",
            order_id,
            what=f"cancelling order {order_id}",
        )
        return await self.balances()

    async def order_state(self, order_id: int) -> str:
        return ORDER_STATES[int((await self.order(order_id))[5])]

    async def wait_for_lease(
        self, order_id: int, *, within: float = 60.0, poll_interval: float = 1.0
    ) -> LeaseInfo:
        """Wait until the matchmaker matches the order; the lease has the order's id."""
        deadline = time.monotonic() + within
        while True:
            state = int((await self.order(order_id))[5])
            if state == _ORDER_MATCHED:
                return await self.lease(order_id)
            if state == _ORDER_CLOSED:
                raise DevnetError(f"order {order_id} is closed: it will not get a lease")
            if time.monotonic() >= deadline:
                raise DevnetError(
                    f"order {order_id} has no lease after {within:.0f} s: is "
                    "`gpu-provider devnet matchmaker` running, and did a provider bid?"
                )
            await asyncio.sleep(poll_interval)

    async def lease(self, lease_id: int) -> LeaseInfo:
        what = f"lease {lease_id}"
        lease = await self.chain.read("ComputeLease", "getLease", lease_id, what=what)
        _, num_blocks, settled_block, locked_remaining = await self.chain.read(
            "ComputeLease", "leaseEscrow", lease_id, what=what
        )
        provider = str(lease[4])
        host_uri = await self.provider_host_uri(provider)
        return LeaseInfo(
            lease_id=int(lease[0]),
            state=LEASE_STATES[int(lease[9])],
            provider=provider,
            provider_host_uri=host_uri,
            tenant=str(lease[5]),
            accepted_price=int(lease[3]),
            usd_per_hour=base_units_per_block_to_usd_per_hour(
                int(lease[3]), self.chain.state.token_terms()
            ),
            start_block=int(lease[6]),
            start_time=int(lease[7]),
            end_time=int(lease[8]),
            num_blocks=int(num_blocks),
            settled_block=int(settled_block),
            locked_remaining=int(locked_remaining),
            head=await self.chain.head(),
        )

    async def provider_host_uri(self, provider: str) -> str:
        """The provider's registered `hostUri`, as Spheron's SDK reads it."""
        record = await self.chain.read(
            "ProviderRegistry", "getProviderByAddress", provider, what=f"provider {provider}"
        )
        return str(record[1])

    async def close(self, lease_id: int) -> ClosedLease:
        """Close the lease: the provider is paid for the blocks it ran, the rest is unlocked."""
        mined = await self.chain.call(
            self.account,
            f"close:{lease_id}",
            "ComputeLease",
            "closeLease",
            lease_id,
            what=f"closing lease {lease_id}",
        )
        settled = self.chain.events(mined, "ComputeLease", "LeaseSettled")
        return ClosedLease(
            lease_id=lease_id,
            paid=sum(int(event["amount"]) for event in settled),
            block=mined.block_number,
            balances=await self.balances(),
        )

    async def order(self, order_id: int) -> Any:
        """`OrderRequest.getOrderById` (id, maxPrice, blocks, token, creator, state, details)."""
        return await self.chain.read(
            "OrderRequest", "getOrderById", order_id, what=f"order {order_id}"
        )
