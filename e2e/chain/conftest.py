"""Fixtures for the marketplace contract tests: an automining anvil with the devnet deployed.

The chain mines one block per transaction (no interval mining), so a test decides exactly
when blocks pass (`market.mine(n)`) and every escrow amount can be asserted to the wei.
The contracts are deployed once per session; each test runs on a snapshot that is reverted
afterwards, so tests never see each other's orders or balances.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import RPCEndpoint, TxReceipt

from gpu_provider.chain.artifacts import load_artifact
from gpu_provider.chain.decoding import Revert, decode_revert
from gpu_provider.devnet.anvil import DEFAULT_MNEMONIC, Anvil
from gpu_provider.devnet.deploy import DevnetContracts, deploy_devnet

TOKEN = 10**18  # one whole test token (18 decimals)
FUNDS = 1_000_000 * TOKEN  # minted to every participant
MODE_PROVIDER = 1
ORDER_OPEN, ORDER_CLOSED, ORDER_MATCHED = 0, 2, 3
LEASE_ACTIVE, LEASE_TERMINATED = 0, 1
STATUS_REGISTERED, STATUS_ACTIVE, STATUS_MAINTENANCE, STATUS_SUSPENDED = 1, 2, 3, 4
# Trust tiers on chain are enum indexes: tier N is N - 1. New providers start in tier 4.
TIER_ONE, TIER_FOUR = 0, 3
BID_WINDOW = 5
# One service with one H100, in the SDK's compressed order-spec notation.
SPEC = (
    "{n:ml,s:[{n:py,r:{i:1,c:{u:4000},m:{u:17179869184},"
    "g:{u:1,a:[{k:vendor/nvidia/model/h100,v:true}]}},c:1}]}"
)
LEASE_FIELDS = (
    "leaseId",
    "fizzId",
    "requestId",
    "acceptedPrice",
    "providerAddress",
    "tenantAddress",
    "startBlock",
    "startTime",
    "endTime",
    "state",
)

Account.enable_unaudited_hdwallet_features()


def _account(index: int) -> LocalAccount:
    account: LocalAccount = Account.from_mnemonic(
        DEFAULT_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}"
    )
    return account


@dataclass(frozen=True)
class People:
    deployer: LocalAccount
    matchmaker: LocalAccount
    verifier: LocalAccount
    tenant: LocalAccount
    provider: LocalAccount
    reward_wallet: LocalAccount
    stranger: LocalAccount
    treasury: LocalAccount
    other_provider: LocalAccount


@dataclass
class Market:
    """The deployed marketplace plus the user actions the tests are written in."""

    w3: Web3
    addresses: DevnetContracts
    people: People

    def contract(self, name: str) -> Contract:
        return self.w3.eth.contract(
            address=self.addresses.address_of(name), abi=load_artifact(name).abi
        )

    @property
    def token(self) -> Contract:
        return self.contract("TestToken")

    @property
    def escrow(self) -> Contract:
        return self.contract("EscrowUser")

    @property
    def protocol(self) -> Contract:
        return self.contract("EscrowProtocol")

    @property
    def providers(self) -> Contract:
        return self.contract("ProviderRegistry")

    @property
    def attributes(self) -> Contract:
        return self.contract("ProviderAttributeRegistry")

    @property
    def orders(self) -> Contract:
        return self.contract("OrderRequest")

    @property
    def bids(self) -> Contract:
        return self.contract("Bid")

    @property
    def leases(self) -> Contract:
        return self.contract("ComputeLease")

    # chain control

    def block(self) -> int:
        return self.w3.eth.block_number

    def mine(self, blocks: int) -> None:
        assert blocks > 0, "anvil_mine mines at least one block"
        self.w3.provider.make_request(RPCEndpoint("anvil_mine"), [hex(blocks)])

    def send(self, call: ContractFunction, sender: LocalAccount) -> TxReceipt:
        tx_hash = call.transact({"from": sender.address})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
        assert receipt["status"] == 1, f"{call.fn_name} reverted"
        return receipt

    def refused(
        self, call: ContractFunction, sender: LocalAccount, error: str, **args: Any
    ) -> Revert:
        """The call reverts with custom error `error` (with these arguments, by name, if
        given), as the chain client decodes it, and changes nothing."""
        block = self.block()
        with pytest.raises(ContractLogicError) as refusal:
            call.transact({"from": sender.address})
        data = refusal.value.data
        revert = decode_revert(data if isinstance(data, str) else None, [call.contract_abi])
        assert revert.error_name == error, f"expected {error}, got {revert.reason}"
        assert revert.selector is not None, f"{revert.reason} is not a custom error"
        for name, value in args.items():
            assert revert.error_args[name] == value, f"{error}.{name}: {revert.error_args}"
        assert self.block() == block
        return revert

    def events(self, receipt: TxReceipt, contract: str, event: str) -> list[dict[str, Any]]:
        """Decoded `event`s that `contract` emitted in the transaction, in log order."""
        emitter = self.contract(contract)
        found = emitter.events[event]().process_receipt(receipt, errors=DISCARD)
        return [dict(log["args"]) for log in found if log["address"] == emitter.address]

    # balances

    def escrow_of(self, who: LocalAccount) -> tuple[int, int]:
        """(locked, unlocked) escrow of `who` in the test token."""
        data = self.escrow.functions.getUserData(who.address, self.addresses.test_token, False)
        locked, unlocked = data.call()
        return int(locked), int(unlocked)

    def earnings_of(self, provider: LocalAccount) -> tuple[int, int, int]:
        """(earned, withdrawn, balance) of `provider` in the test token."""
        call = self.protocol.functions.providerEarnings(provider.address, self.addresses.test_token)
        earned, withdrawn, balance = call.call()
        return int(earned), int(withdrawn), int(balance)

    def tokens_of(self, who: LocalAccount | ChecksumAddress) -> int:
        address = who if isinstance(who, str) else who.address
        return int(self.token.functions.balanceOf(address).call())

    # user actions

    def deposit(self, tenant: LocalAccount, amount: int) -> TxReceipt:
        self.send(self.token.functions.approve(self.addresses.escrow_user, amount), tenant)
        return self.send(self.escrow.functions.deposit(self.addresses.test_token, amount), tenant)

    def register_provider(
        self, provider: LocalAccount, reward_wallet: LocalAccount | None = None
    ) -> TxReceipt:
        params = (
            provider.address,
            [self.addresses.test_token],
            '{"Name":"devnet-provider","Region":"eu-west","Attributes":[]}',
            "provider.devnet.example",
            "-----BEGIN CERTIFICATE-----\ndevnet\n-----END CERTIFICATE-----",
            (reward_wallet or provider).address,
        )
        return self.send(self.providers.functions.addProvider(params), provider)

    def activate(self, provider: LocalAccount) -> TxReceipt:
        call = self.providers.functions.setProviderStatus(provider.address, STATUS_ACTIVE)
        return self.send(call, provider)

    def order_details(
        self, max_price: int, blocks: int, spec: str = SPEC
    ) -> tuple[int, int, str, str, int, int, list[int]]:
        return (max_price, blocks, self.addresses.test_token, spec, 1, MODE_PROVIDER, [0, 1, 2])

    def create_order(self, tenant: LocalAccount, max_price: int, blocks: int) -> int:
        receipt = self.send(
            self.orders.functions.createOrder(self.order_details(max_price, blocks)), tenant
        )
        (created,) = self.events(receipt, "OrderRequest", "OrderCreated")
        return int(created["orderId"])

    def bid(self, provider: LocalAccount, order_id: int, price: int) -> TxReceipt:
        return self.send(self.bids.functions.placeBid(order_id, price, 0), provider)

    def match(self, order_id: int, provider: LocalAccount, price: int) -> TxReceipt:
        call = self.bids.functions.matchOrder(order_id, provider.address, price)
        return self.send(call, self.people.matchmaker)

    def lease(self, lease_id: int) -> dict[str, Any]:
        return dict(zip(LEASE_FIELDS, self.leases.functions.leases(lease_id).call(), strict=True))

    def order_state(self, order_id: int) -> int:
        return int(self.orders.functions.getOrderById(order_id).call()[5])


@pytest.fixture(scope="session")
def chain() -> Iterator[Anvil]:
    """anvil mining one block per transaction, so tests decide when blocks pass."""
    with Anvil(block_time=None) as node:
        yield node


@pytest.fixture(scope="session")
def people() -> People:
    return People(*(_account(i) for i in range(9)))


@pytest.fixture(scope="session")
def w3(chain: Anvil) -> Web3:
    web3 = Web3(Web3.HTTPProvider(chain.url, request_kwargs={"timeout": 30}))
    assert web3.eth.chain_id == 31337
    return web3


@pytest.fixture(scope="session")
def deployed(w3: Web3, people: People) -> DevnetContracts:
    return deploy_devnet(
        w3,
        people.deployer,
        matchmaker=people.matchmaker.address,
        verifier=people.verifier.address,
        treasury=people.treasury.address,
        mint={p.address: FUNDS for p in (people.tenant, people.provider, people.stranger)},
        bid_window_blocks=BID_WINDOW,
    )


@pytest.fixture
def market(w3: Web3, deployed: DevnetContracts, people: People) -> Iterator[Market]:
    snapshot = w3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"]
    try:
        yield Market(w3=w3, addresses=deployed, people=people)
    finally:
        reverted = w3.provider.make_request(RPCEndpoint("evm_revert"), [snapshot])["result"]
        assert reverted, "could not revert the chain to the pre-test snapshot"
