"""The devnet tenant: fund escrow, order GPUs from YAML, wait for the lease, send the manifest,
watch and close the lease. What Spheron's SDK does for a tenant, in a few synchronous calls.
"""

from __future__ import annotations

import json
import math
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.exceptions import ContractLogicError

from gpu_provider.devnet.client import DevnetClient, revert_reason
from gpu_provider.devnet.errors import DevnetError
from gpu_provider.devnet.manifest import manifest_mismatch
from gpu_provider.devnet.orderfile import OrderTerms, TenantOrder, order_terms
from gpu_provider.market import (
    OrderSpecError,
    base_units_per_block_to_usd_per_hour,
    decode,
    encode,
)
from gpu_provider.market.auth import AUTH_HEADER, build_auth_header

__all__ = [
    "Balances",
    "ClosedLease",
    "LeaseInfo",
    "ManifestReply",
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
_MAX_REPLY_CHARS: Final = 4_000


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


@dataclass(frozen=True, slots=True)
class ManifestReply:
    url: str
    status: int
    body: str


@dataclass
class Tenant:
    """One tenant wallet acting on a devnet."""

    client: DevnetClient
    account: LocalAccount

    @property
    def _token(self) -> Any:
        return self.client.contract("TestToken")

    @property
    def _decimals(self) -> int:
        return self.client.state.token.decimals

    def amount(self, base_units: int) -> str:
        return f"{format_amount(base_units, self._decimals)} {self.client.state.token.symbol}"

    def balances(self) -> Balances:
        state = self.client.state
        wallet = int(self._token.functions.balanceOf(self.account.address).call())
        escrow = self.client.contract("EscrowUser").functions.getUserData(
            self.account.address, state.payment_token, False
        )
        locked, unlocked = escrow.call()
        return Balances(wallet=wallet, locked=int(locked), unlocked=int(unlocked))

    def deposit(self, usd: Decimal) -> Balances:
        """Move `usd` worth of test tokens from the wallet into escrow (approve + deposit)."""
        amount = usd_to_base_units(usd, self._decimals)
        wallet = self.balances().wallet
        if wallet < amount:
            raise DevnetError(
                f"the tenant {self.account.address} holds {self.amount(wallet)}, "
                f"less than {self.amount(amount)}"
            )
        escrow = self.client.state.address("EscrowUser")
        self.client.send(self._token.functions.approve(escrow, amount), self.account, "approve")
        deposit = self.client.contract("EscrowUser").functions.deposit(
            self.client.state.payment_token, amount
        )
        self.client.send(deposit, self.account, "deposit")
        return self.balances()

    def create_order(self, order: TenantOrder) -> PlacedOrder:
        """Lock the escrow and create the order; its id comes from the OrderCreated event."""
        encoded_spec = encode(order.spec)
        terms = order_terms(order, self.client.state.token_terms())
        unlocked = self.balances().unlocked
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
            self.client.state.payment_token,
            encoded_spec,
            ORDER_VERSION,
            MODE_PROVIDER,
            [tier - 1 for tier in order.tiers],
        )
        receipt = self.client.send(
            self.client.contract("OrderRequest").functions.createOrder(details),
            self.account,
            "createOrder",
        )
        (created,) = self.client.events(receipt, "OrderRequest", "OrderCreated")
        return PlacedOrder(
            order_id=int(created["orderId"]),
            block=int(receipt["blockNumber"]),
            terms=terms,
            spec=encoded_spec,
        )

    def cancel(self, order_id: int) -> Balances:
        """Close an OPEN order (no lease yet) and unlock its escrow."""
        call = self.client.contract("OrderRequest").functions.updateOrderStateToClosed(order_id)
        self.client.send(call, self.account, f"cancelling order {order_id}")
        return self.balances()

    def order_state(self, order_id: int) -> str:
        return ORDER_STATES[self._order(order_id)[5]]

    def wait_for_lease(
        self,
        order_id: int,
        *,
        timeout: float = 60.0,
        poll_interval: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> LeaseInfo:
        """Wait until the matchmaker matches the order; the lease has the order's id."""
        deadline = time.monotonic() + timeout
        while True:
            state = int(self._order(order_id)[5])
            if state == _ORDER_MATCHED:
                return self.lease(order_id)
            if state == _ORDER_CLOSED:
                raise DevnetError(f"order {order_id} is closed: it will not get a lease")
            if time.monotonic() >= deadline:
                raise DevnetError(
                    f"order {order_id} has no lease after {timeout:.0f} s: is "
                    "`gpu-provider devnet matchmaker` running, and did a provider bid?"
                )
            sleep(poll_interval)

    def lease(self, lease_id: int) -> LeaseInfo:
        leases = self.client.contract("ComputeLease").functions
        try:
            lease = leases.getLease(lease_id).call()
        except ContractLogicError as error:
            raise DevnetError(f"lease {lease_id}: {revert_reason(error)}") from None
        _, num_blocks, settled_block, locked_remaining = leases.leaseEscrow(lease_id).call()
        provider = str(lease[4])
        registry = self.client.contract("ProviderRegistry").functions
        host_uri = str(registry.getProviderByAddress(provider).call()[1])
        return LeaseInfo(
            lease_id=int(lease[0]),
            state=LEASE_STATES[int(lease[9])],
            provider=provider,
            provider_host_uri=host_uri,
            tenant=str(lease[5]),
            accepted_price=int(lease[3]),
            usd_per_hour=base_units_per_block_to_usd_per_hour(
                int(lease[3]), self.client.state.token_terms()
            ),
            start_block=int(lease[6]),
            start_time=int(lease[7]),
            end_time=int(lease[8]),
            num_blocks=int(num_blocks),
            settled_block=int(settled_block),
            locked_remaining=int(locked_remaining),
            head=self.client.head(),
        )

    def close(self, lease_id: int) -> ClosedLease:
        """Close the lease: the provider is paid for the blocks it ran, the rest is unlocked."""
        call = self.client.contract("ComputeLease").functions.closeLease(lease_id)
        receipt = self.client.send(call, self.account, f"closing lease {lease_id}")
        settled = self.client.events(receipt, "ComputeLease", "LeaseSettled")
        return ClosedLease(
            lease_id=lease_id,
            paid=sum(int(event["amount"]) for event in settled),
            block=int(receipt["blockNumber"]),
            balances=self.balances(),
        )

    def send_manifest(
        self,
        lease_id: int,
        manifest: list[dict[str, Any]],
        *,
        provider_url: str | None = None,
        insecure: bool = False,
        timeout: float = 30.0,
        now: Callable[[], float] = time.time,
    ) -> ManifestReply:
        """POST the manifest to the lease's provider, signed with the Auth-Spheron header."""
        info = self.lease(lease_id)
        if info.state != "ACTIVE":
            raise DevnetError(f"lease {lease_id} is {info.state}: nothing to deploy")
        if info.tenant != self.account.address:
            raise DevnetError(
                f"lease {lease_id} belongs to {info.tenant}, but you sign as "
                f"{self.account.address}: the provider would refuse it (use --private-key-file)"
            )
        self._check_against_order(lease_id, manifest)
        base = provider_url or info.provider_host_uri
        if not base:
            raise DevnetError(f"the provider {info.provider} has no host URI: pass --provider-url")
        url = _manifest_url(base, lease_id)
        request = urllib.request.Request(  # noqa: S310 - scheme checked by _manifest_url
            url,
            data=json.dumps(manifest).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                AUTH_HEADER: build_auth_header(self.account.key, now=int(now())),
            },
        )
        context = ssl.create_default_context()
        if insecure:
            # Devnet providers often serve a self-signed certificate.
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
                body = response.read(_MAX_REPLY_CHARS).decode(errors="replace")
                return ManifestReply(url=url, status=int(response.status), body=body)
        except urllib.error.HTTPError as error:
            body = error.read(_MAX_REPLY_CHARS).decode(errors="replace")
            raise DevnetError(
                f"the provider refused the manifest: HTTP {error.code} from {url}: {body.strip()}"
            ) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise DevnetError(f"cannot reach the provider at {url}: {reason}") from None

    def _check_against_order(self, lease_id: int, manifest: list[dict[str, Any]]) -> None:
        try:
            spec = decode(str(self._order(lease_id)[6][0]))
        except OrderSpecError:
            return  # the provider will say what is wrong with the order itself
        problem = manifest_mismatch(manifest, spec)
        if problem:
            raise DevnetError(f"{problem}: the provider would refuse it")

    def _order(self, order_id: int) -> Any:
        try:
            return self.client.contract("OrderRequest").functions.getOrderById(order_id).call()
        except ContractLogicError as error:
            raise DevnetError(f"order {order_id}: {revert_reason(error)}") from None


def _manifest_url(base: str, lease_id: int) -> str:
    if "://" not in base:
        base = f"https://{base}"
    parsed = urllib.parse.urlsplit(base)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise DevnetError(f"{base!r} is not an http(s) URL of a provider")
    return f"{base.rstrip('/')}/deployment/{lease_id}/manifest"
