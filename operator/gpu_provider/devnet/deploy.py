"""Deploy the devnet marketplace contracts, wire them together, list the test token.

`deploy_marketplace` sends every transaction from the deployer through the chain layer's
`TxManager`, in two batches: first all ten contract creations (their addresses are known in
advance from the nonces, so constructors can point at contracts not yet mined), then the
wiring, role grants, token listing and mints. On a chain that mines a block every few
seconds this takes two blocks instead of twenty-odd. `deploy_devnet` is the same for callers
holding a synchronous `Web3` (the contract tests' fixtures).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final

from eth_abi import abi as eth_abi
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils.abi import collapse_if_tuple
from hexbytes import HexBytes
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from web3 import AsyncHTTPProvider, AsyncWeb3, Web3

from gpu_provider.chain.artifacts import CONTRACT_NAMES, load_artifact
from gpu_provider.chain.contracts import bind
from gpu_provider.chain.tx import TxManager, TxRequest, TxTimings
from gpu_provider.chain.wallet import Wallet
from gpu_provider.devnet.batch import BatchError, BatchSender, JournalWatch
from gpu_provider.devnet.blocking import run_blocking

__all__ = [
    "DEFAULT_BID_WINDOW_BLOCKS",
    "DEFAULT_MAX_ORDER_BLOCKS",
    "DEFAULT_MIN_ORDER_BLOCKS",
    "DEFAULT_PROVIDER_TIER",
    "MATCHMAKER_ROLE",
    "MAX_PROTOCOL_FEE_BPS",
    "REGISTRY_ADMIN_ROLE",
    "VERIFIER_ROLE",
    "DeployError",
    "DevnetContracts",
    "TestTokenConfig",
    "deploy_devnet",
    "deploy_marketplace",
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
# Tier 4, the first `community` tier: Spheron's SDK orders community tiers by default.
DEFAULT_PROVIDER_TIER: Final = 4
# EscrowProtocol.MAX_PROTOCOL_FEE_PERCENTAGE, in basis points.
MAX_PROTOCOL_FEE_BPS: Final = 1_000

# anvil is local and never reorganises: poll receipts often, wait for no confirmations.
_DEFAULT_TIMINGS: Final = TxTimings(
    poll_interval=0.1, replace_after=30.0, receipt_timeout=120.0, confirmations=0
)


DeployError = BatchError
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


def _constructor_inputs(name: str) -> list[dict[str, Any]]:
    abi = load_artifact(name).abi
    return next((list(e["inputs"]) for e in abi if e.get("type") == "constructor"), [])


def _creation(name: str, args: Sequence[Any]) -> TxRequest:
    """A contract creation: the bytecode followed by the ABI-encoded constructor arguments."""
    artifact = load_artifact(name)
    types = [collapse_if_tuple(dict(i)) for i in _constructor_inputs(name)]
    encoded = eth_abi.encode(types, list(args))
    return TxRequest(to=None, data=artifact.bytecode + encoded.hex(), abi=artifact.abi)


async def deploy_marketplace(
    w3: AsyncWeb3[Any],
    deployer: Wallet,
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
    provider_tier: int = DEFAULT_PROVIDER_TIER,
    timings: TxTimings | None = None,
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
    if not 1 <= provider_tier <= 7:
        raise ValueError("provider_tier must be a trust tier within 1..7")
    if not 0 <= protocol_fee_bps <= MAX_PROTOCOL_FEE_BPS:
        raise ValueError(f"protocol_fee_bps must be within 0..{MAX_PROTOCOL_FEE_BPS}")
    admin = deployer.address
    roles = {
        "matchmaker": _checksummed(matchmaker or admin),
        "verifier": _checksummed(verifier or admin),
        "registry_admin": _checksummed(registry_admin or admin),
        "treasury": _checksummed(treasury or admin),
    }
    chain_id = int(await w3.eth.chain_id)
    store = JournalWatch()
    manager = TxManager(w3, deployer, store, chain_id=chain_id, timings=timings or _DEFAULT_TIMINGS)
    sender = BatchSender(
        manager=manager,
        store=store,
        nonce=int(await w3.eth.get_transaction_count(_checksummed(admin), "pending")),
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
    created = await sender.send_batch(
        [(f"create:{name}", _creation(name, constructor_args[name])) for name in CONTRACT_NAMES]
    )

    def call(name: str, function: str, *args: Any) -> TxRequest:
        return TxRequest.call(bind(w3, load_artifact(name).abi, at[name]), function, *args)

    wiring: list[tuple[str, TxRequest]] = [
        (
            "EscrowUser.setProtocolContracts",
            call(
                "EscrowUser",
                "setProtocolContracts",
                at["OrderRequest"],
                at["ComputeLease"],
                at["EscrowProtocol"],
            ),
        ),
        (
            "EscrowProtocol.setComputeLease",
            call("EscrowProtocol", "setComputeLease", at["ComputeLease"]),
        ),
        (
            "OrderRequest.setMarketContracts",
            call("OrderRequest", "setMarketContracts", at["Bid"], at["ComputeLease"]),
        ),
        ("ComputeLease.setBidContract", call("ComputeLease", "setBidContract", at["Bid"])),
        # The tier new providers start in; on chain tier N is enum value N - 1.
        (
            "ProviderRegistry.setDefaultTier",
            call("ProviderRegistry", "setDefaultTier", provider_tier - 1),
        ),
        *(
            (f"grant:{name}", call("AccessControlManager", "grantRole", role, roles[holder]))
            for name, role, holder in (
                ("MATCHMAKER_ROLE", MATCHMAKER_ROLE, "matchmaker"),
                ("VERIFIER_ROLE", VERIFIER_ROLE, "verifier"),
                ("REGISTRY_ADMIN_ROLE", REGISTRY_ADMIN_ROLE, "registry_admin"),
            )
        ),
        (
            "TokenRegistry.addToken",
            call(
                "TokenRegistry",
                "addToken",
                [token.symbol],
                [at["TestToken"]],
                [token.decimals],
                [token.minimum_deposit],
                [True],
            ),
        ),
    ]
    for account, amount in (mint or {}).items():
        wiring.append(
            (
                f"mint:{_checksummed(account)}",
                call("TestToken", "mint", _checksummed(account), amount),
            )
        )
    await sender.send_batch(wiring)

    return DevnetContracts(
        chain_id=chain_id,
        deploy_block=min(result.block_number for result in created),
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


def deploy_devnet(
    w3: Web3,
    deployer: LocalAccount,
    **options: Any,
) -> DevnetContracts:
    """`deploy_marketplace` for callers holding a synchronous `Web3` (the contract tests)."""
    endpoint = getattr(w3.provider, "endpoint_uri", None)
    if not endpoint:
        raise DeployError("deploy_devnet needs a Web3 over HTTP (it reads the endpoint URL)")

    async def deploy() -> DevnetContracts:
        w3_async = AsyncWeb3(AsyncHTTPProvider(str(endpoint)))
        try:
            return await deploy_marketplace(w3_async, Wallet(deployer), **options)
        finally:
            await w3_async.provider.disconnect()

    return run_blocking(deploy())
