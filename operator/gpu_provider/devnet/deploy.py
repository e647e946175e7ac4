"""Deploy the devnet marketplace contracts, wire them together, list the test token.

`deploy_devnet` sends every transaction from one local account with nonces it assigns
itself, in two batches: first all ten contract creations (their addresses are known in
advance from the nonces, so constructors can point at contracts not yet mined), then the
wiring, role grants, token listing and mints. On a chain that mines a block every few
seconds this takes two blocks instead of twenty-odd.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Protocol

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress, HexAddress, HexStr
from hexbytes import HexBytes
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from web3 import Web3
from web3.contract import Contract
from web3.types import Nonce, TxParams, TxReceipt
from web3.utils import get_create_address

from gpu_provider.chain.artifacts import CONTRACT_NAMES, load_artifact

__all__ = [
    "DEFAULT_BID_WINDOW_BLOCKS",
    "DEFAULT_MAX_ORDER_BLOCKS",
    "DEFAULT_MIN_ORDER_BLOCKS",
    "MATCHMAKER_ROLE",
    "MAX_PROTOCOL_FEE_BPS",
    "REGISTRY_ADMIN_ROLE",
    "VERIFIER_ROLE",
    "DeployError",
    "DevnetContracts",
    "TestTokenConfig",
    "deploy_devnet",
]

# Role ids, as the contracts compute them (keccak256 of the name, like OpenZeppelin).
MATCHMAKER_ROLE: Final[HexBytes] = Web3.keccak(text="MATCHMAKER_ROLE")
VERIFIER_ROLE: Final[HexBytes] = Web3.keccak(text="VERIFIER_ROLE")
REGISTRY_ADMIN_ROLE: Final[HexBytes] = Web3.keccak(text="REGISTRY_ADMIN_ROLE")

# Spheron's window is 1-2 blocks; the devnet is more forgiving so a provider that polls can
# still bid. It is a constructor argument (and Bid.setBidWindow) when a test needs another.
DEFAULT_BID_WINDOW_BLOCKS: Final = 10
DEFAULT_MIN_ORDER_BLOCKS: Final = 1
# 30 days of 2-second blocks.
DEFAULT_MAX_ORDER_BLOCKS: Final = 30 * 24 * 1800
# EscrowProtocol.MAX_PROTOCOL_FEE_PERCENTAGE, in basis points.
MAX_PROTOCOL_FEE_BPS: Final = 1_000

# Estimates are exact for these deterministic calls; the margin covers a state change between
# estimate and inclusion (another sender touching the same slot) at no cost on a devnet.
_GAS_MARGIN: Final = 1.25


class DeployError(RuntimeError):
    """A deployment transaction failed or could not be sent."""


def _checksummed(value: str) -> ChecksumAddress:
    return Web3.to_checksum_address(value)


Address = Annotated[ChecksumAddress, AfterValidator(_checksummed)]


class TestTokenConfig(BaseModel):
    """The ERC-20 that the devnet escrows and pays in."""

    __test__ = False  # not a pytest test class, despite the name

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "Devnet Tether USD"
    symbol: str = "USDT"
    # 18 decimals, as the SDK's price formula (USD/hour * 10^18 / 1800 per block) assumes.
    decimals: int = Field(default=18, ge=0, le=36)
    minimum_deposit: int = Field(default=0, ge=0)


class DevnetContracts(BaseModel):
    """Where everything was deployed, and with which parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain_id: int
    deploy_block: int = Field(description="First block holding a deployment: backfill start.")
    deployer: Address
    matchmaker: Address
    verifier: Address
    registry_admin: Address
    treasury: Address
    access_control_manager: Address
    test_token: Address
    token_registry: Address
    escrow_user: Address
    provider_registry: Address
    provider_attribute_registry: Address
    escrow_protocol: Address
    order_request: Address
    compute_lease: Address
    bid: Address
    token: TestTokenConfig
    bid_window_blocks: int
    min_order_blocks: int
    max_order_blocks: int
    protocol_fee_bps: int

    def address_of(self, contract: str) -> ChecksumAddress:
        """The address of a contract by its artifact name (e.g. "OrderRequest")."""
        addresses = self.by_contract()
        if contract not in addresses:
            raise KeyError(f"unknown contract {contract!r}; known: {', '.join(addresses)}")
        return addresses[contract]

    def by_contract(self) -> dict[str, ChecksumAddress]:
        """Artifact name → address, in deployment order."""
        return {
            "AccessControlManager": self.access_control_manager,
            "TestToken": self.test_token,
            "TokenRegistry": self.token_registry,
            "EscrowUser": self.escrow_user,
            "ProviderRegistry": self.provider_registry,
            "ProviderAttributeRegistry": self.provider_attribute_registry,
            "EscrowProtocol": self.escrow_protocol,
            "OrderRequest": self.order_request,
            "ComputeLease": self.compute_lease,
            "Bid": self.bid,
        }


class _Transactable(Protocol):
    """A contract call or creation that web3 can turn into a transaction."""

    def build_transaction(self, transaction: TxParams | None = None) -> TxParams: ...


@dataclass
class _Sender:
    """Signs and sends from one account, assigning nonces itself."""

    w3: Web3
    account: LocalAccount
    nonce: int
    timeout: float

    def next_create_address(self, offset: int) -> ChecksumAddress:
        return get_create_address(
            HexAddress(HexStr(self.account.address)), Nonce(self.nonce + offset)
        )

    def send_batch(self, steps: Sequence[tuple[str, _Transactable]]) -> list[TxReceipt]:
        """Send every step (none may depend on another's effects), then wait for all."""
        sent: list[tuple[str, HexBytes]] = []
        for label, step in steps:
            try:
                tx = step.build_transaction(
                    {"from": self.account.address, "nonce": Nonce(self.nonce)}
                )
            except Exception as error:  # web3 raises many types; all mean "cannot deploy"
                raise DeployError(f"{label}: cannot build the transaction: {error}") from error
            tx["gas"] = int(tx["gas"] * _GAS_MARGIN)
            # TxParams is a TypedDict; eth-account types its argument as a plain dict.
            signed = self.account.sign_transaction(dict(tx))  # type: ignore[arg-type]
            sent.append((label, self.w3.eth.send_raw_transaction(signed.raw_transaction)))
            self.nonce += 1
        receipts: list[TxReceipt] = []
        for label, tx_hash in sent:
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.timeout)
            if receipt["status"] != 1:
                raise DeployError(f"{label}: transaction {tx_hash.to_0x_hex()} reverted")
            receipts.append(receipt)
        return receipts


def _at(w3: Web3, name: str, address: ChecksumAddress) -> Contract:
    return w3.eth.contract(address=address, abi=load_artifact(name).abi)


def _factory(w3: Web3, name: str) -> type[Contract]:
    artifact = load_artifact(name)
    return w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)


def deploy_devnet(
    w3: Web3,
    deployer: LocalAccount,
    *,
    matchmaker: str | None = None,
    verifier: str | None = None,
    registry_admin: str | None = None,
    treasury: str | None = None,
    mint: Mapping[str, int] | None = None,
    token: TestTokenConfig | None = None,
    bid_window_blocks: int = DEFAULT_BID_WINDOW_BLOCKS,
    min_order_blocks: int = DEFAULT_MIN_ORDER_BLOCKS,
    max_order_blocks: int = DEFAULT_MAX_ORDER_BLOCKS,
    protocol_fee_bps: int = 0,
    receipt_timeout: float = 120.0,
) -> DevnetContracts:
    """Deploy and wire the marketplace; return every address.

    `deployer` becomes the admin of every contract (DEFAULT_ADMIN_ROLE) and the test token's
    owner. Roles default to the deployer. `mint` maps accounts to test-token amounts in base
    units. The deployer must hold enough native currency for about 25 transactions.
    """
    token = token or TestTokenConfig()
    if not 1 <= min_order_blocks <= max_order_blocks:
        raise ValueError("need 1 <= min_order_blocks <= max_order_blocks")
    if bid_window_blocks < 1:
        raise ValueError("bid_window_blocks must be at least 1")
    if not 0 <= protocol_fee_bps <= MAX_PROTOCOL_FEE_BPS:
        raise ValueError(f"protocol_fee_bps must be within 0..{MAX_PROTOCOL_FEE_BPS}")
    admin = deployer.address
    roles = {
        "matchmaker": _checksummed(matchmaker or admin),
        "verifier": _checksummed(verifier or admin),
        "registry_admin": _checksummed(registry_admin or admin),
        "treasury": _checksummed(treasury or admin),
    }
    sender = _Sender(
        w3=w3,
        account=deployer,
        nonce=w3.eth.get_transaction_count(admin, "pending"),
        timeout=receipt_timeout,
    )
    # CREATE addresses follow from the deployer's nonces: index i in CONTRACT_NAMES is
    # created with nonce + i.
    at = {name: sender.next_create_address(i) for i, name in enumerate(CONTRACT_NAMES)}
    constructor_args: dict[str, tuple[Any, ...]] = {
        "AccessControlManager": (),
        "TestToken": (token.name, token.symbol, token.decimals, 0),
        "TokenRegistry": (at["AccessControlManager"],),
        "EscrowUser": (at["TokenRegistry"], at["AccessControlManager"]),
        "ProviderRegistry": (at["TokenRegistry"], at["AccessControlManager"]),
        "ProviderAttributeRegistry": (at["ProviderRegistry"], at["AccessControlManager"]),
        "EscrowProtocol": (
            at["ProviderRegistry"],
            at["EscrowUser"],
            roles["treasury"],
            at["AccessControlManager"],
            protocol_fee_bps,
        ),
        "OrderRequest": (
            at["EscrowUser"],
            at["TokenRegistry"],
            at["AccessControlManager"],
            max_order_blocks,
            min_order_blocks,
        ),
        "ComputeLease": (
            at["OrderRequest"],
            at["EscrowUser"],
            at["EscrowProtocol"],
            at["AccessControlManager"],
        ),
        "Bid": (
            at["ProviderRegistry"],
            at["OrderRequest"],
            at["ComputeLease"],
            at["AccessControlManager"],
            bid_window_blocks,
        ),
    }
    created = sender.send_batch(
        [
            (f"deploy {name}", _factory(w3, name).constructor(*constructor_args[name]))
            for name in CONTRACT_NAMES
        ]
    )
    for name, receipt in zip(CONTRACT_NAMES, created, strict=True):
        if receipt["contractAddress"] != at[name]:
            raise DeployError(
                f"{name} landed at {receipt['contractAddress']}, expected {at[name]}: "
                "another transaction from the deployer interfered"
            )

    def contract(name: str) -> Contract:
        return _at(w3, name, at[name])

    access = contract("AccessControlManager")
    test_token = contract("TestToken")
    wiring: list[tuple[str, _Transactable]] = [
        (
            "EscrowUser.setProtocolContracts",
            contract("EscrowUser").functions.setProtocolContracts(
                at["OrderRequest"], at["ComputeLease"], at["EscrowProtocol"]
            ),
        ),
        (
            "EscrowProtocol.setComputeLease",
            contract("EscrowProtocol").functions.setComputeLease(at["ComputeLease"]),
        ),
        (
            "OrderRequest.setMarketContracts",
            contract("OrderRequest").functions.setMarketContracts(at["Bid"], at["ComputeLease"]),
        ),
        (
            "ComputeLease.setBidContract",
            contract("ComputeLease").functions.setBidContract(at["Bid"]),
        ),
        ("grant MATCHMAKER_ROLE", access.functions.grantRole(MATCHMAKER_ROLE, roles["matchmaker"])),
        ("grant VERIFIER_ROLE", access.functions.grantRole(VERIFIER_ROLE, roles["verifier"])),
        (
            "grant REGISTRY_ADMIN_ROLE",
            access.functions.grantRole(REGISTRY_ADMIN_ROLE, roles["registry_admin"]),
        ),
        (
            "TokenRegistry.addToken",
            contract("TokenRegistry").functions.addToken(
                [token.symbol], [at["TestToken"]], [token.decimals], [token.minimum_deposit], [True]
            ),
        ),
    ]
    for account, amount in (mint or {}).items():
        wiring.append(
            (f"mint to {account}", test_token.functions.mint(_checksummed(account), amount))
        )
    sender.send_batch(wiring)

    return DevnetContracts(
        chain_id=w3.eth.chain_id,
        deploy_block=min(receipt["blockNumber"] for receipt in created),
        deployer=admin,
        matchmaker=roles["matchmaker"],
        verifier=roles["verifier"],
        registry_admin=roles["registry_admin"],
        treasury=roles["treasury"],
        access_control_manager=at["AccessControlManager"],
        test_token=at["TestToken"],
        token_registry=at["TokenRegistry"],
        escrow_user=at["EscrowUser"],
        provider_registry=at["ProviderRegistry"],
        provider_attribute_registry=at["ProviderAttributeRegistry"],
        escrow_protocol=at["EscrowProtocol"],
        order_request=at["OrderRequest"],
        compute_lease=at["ComputeLease"],
        bid=at["Bid"],
        token=token,
        bid_window_blocks=bid_window_blocks,
        min_order_blocks=min_order_blocks,
        max_order_blocks=max_order_blocks,
        protocol_fee_bps=protocol_fee_bps,
    )
