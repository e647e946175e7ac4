"""`gpu-provider devnet up`: a real anvil with every contract, role and balance in place, and a
devnet.json the other commands work from. Then a tenant's whole round trip through the CLI.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from web3 import Web3
from web3.contract import Contract

from gpu_provider.chain.artifacts import CONTRACT_NAMES, load_artifact
from gpu_provider.cli import main
from gpu_provider.devnet.accounts import DEFAULT_ROLE_INDEXES, FUNDED_ROLES, Role, derive_account
from gpu_provider.devnet.anvil import DEFAULT_MNEMONIC, Anvil, rpc_call
from gpu_provider.devnet.deploy import MATCHMAKER_ROLE, REGISTRY_ADMIN_ROLE, VERIFIER_ROLE
from gpu_provider.devnet.state import DevnetState, load_state
from gpu_provider.devnet.tenant import format_amount
from gpu_provider.devnet.up import deploy_to, process_alive, stop_devnet

pytestmark = pytest.mark.e2e

REPO = Path(__file__).parents[2]
TOKEN = 10**18
BID_WINDOW = 4
STATUS_ACTIVE = 2


def _cli(*argv: str) -> Result:
    return CliRunner().invoke(main, ["devnet", *argv])


class DevnetClient:
    """The test's own view of the chain (plain web3), to check what the tools did."""

    def __init__(self, state: DevnetState) -> None:
        self.state = state
        self.w3 = Web3(Web3.HTTPProvider(state.rpc_url, request_kwargs={"timeout": 30}))

    def contract(self, name: str) -> Contract:
        return self.w3.eth.contract(address=self.state.address(name), abi=load_artifact(name).abi)

    def head(self) -> int:
        return int(self.w3.eth.block_number)


def connect(state: DevnetState) -> DevnetClient:
    return DevnetClient(state)


@pytest.fixture
def detached(tmp_path: Path) -> Iterator[Path]:
    """`devnet up --detach` with 1 s blocks; always stopped afterwards."""
    state_file = tmp_path / "devnet.json"
    try:
        result = _cli(
            "up",
            "--detach",
            "--block-time",
            "1",
            "--bid-window",
            str(BID_WINDOW),
            "--state-file",
            str(state_file),
        )
        assert result.exit_code == 0, result.output
        yield state_file
    finally:
        stop_devnet(state_file)


def _check_deployment(client: DevnetClient, *, mint_tokens: int) -> None:
    state, w3 = client.state, client.w3
    for name in (*CONTRACT_NAMES, "testToken"):
        assert w3.eth.get_code(state.address(name)), f"{name} has no code"
    access = client.contract("AccessControlManager").functions
    assert access.hasRole(MATCHMAKER_ROLE, state.account_address(Role.MATCHMAKER)).call()
    assert access.hasRole(VERIFIER_ROLE, state.account_address(Role.VERIFIER)).call()
    assert access.hasRole(REGISTRY_ADMIN_ROLE, state.account_address(Role.DEPLOYER)).call()
    assert not access.hasRole(MATCHMAKER_ROLE, state.account_address(Role.TENANT)).call()
    assert client.contract("EscrowProtocol").functions.treasury().call() == (
        state.account_address(Role.TREASURY)
    )
    token = client.contract("TestToken").functions
    for role in Role:
        expected = mint_tokens * TOKEN if role in FUNDED_ROLES else 0
        assert token.balanceOf(state.account_address(role)).call() == expected, role
        # And every role has native currency for gas (anvil funds its accounts).
        assert w3.eth.get_balance(state.account_address(role)) > 0
    registry = client.contract("TokenRegistry").functions
    assert registry.isAcceptedToken(state.payment_token).call()


def test_devnet_up_detached_describes_a_funded_marketplace(detached: Path) -> None:
    state = load_state(detached)
    document = json.loads(detached.read_text())
    assert set(document["contracts"]) == {*CONTRACT_NAMES, "testToken"}
    assert document["contracts"]["testToken"] == document["contracts"]["TestToken"]
    assert (document["chainId"], document["blockTime"], document["bidWindowBlocks"]) == (
        31337,
        1.0,
        BID_WINDOW,
    )
    assert document["mnemonic"] == DEFAULT_MNEMONIC
    for role, index in DEFAULT_ROLE_INDEXES.items():
        assert document["accounts"][role.value] == {
            "index": index,
            "address": derive_account(DEFAULT_MNEMONIC, index).address,
        }
    client = connect(state)
    assert 0 < state.deploy_block <= client.head()
    assert client.contract("Bid").functions.bidWindow().call() == BID_WINDOW
    _check_deployment(client, mint_tokens=1_000_000)

    # anvil stays up after the command returned; its pid is next to devnet.json.
    pid = int((detached.parent / "anvil.pid").read_text())
    assert process_alive(pid)
    # It mines on its own, a block a second: two more blocks show up without any transaction.
    _wait_for_block(client, client.head() + 2, timeout=10)

    # A second `up` for the same file is refused rather than orphaning the first.
    again = _cli("up", "--detach", "--state-file", str(detached))
    assert again.exit_code == 1
    assert f"already running for {detached} (anvil pid {pid})" in again.output

    down = _cli("down", "--state-file", str(detached))
    assert down.exit_code == 0
    assert f"stopped anvil (pid {pid})" in down.output
    assert not detached.exists()
    assert not (detached.parent / "anvil.pid").exists()
    assert not process_alive(pid)
    gone = _cli("tenant", "balance", "--state-file", str(detached))
    assert gone.exit_code == 1
    assert "run `gpu-provider devnet up` first" in gone.output


def test_devnet_up_prints_roles_and_addresses_but_no_secret(tmp_path: Path) -> None:
    state_file = tmp_path / "devnet.json"
    try:
        result = _cli("up", "--detach", "--block-time", "0", "--state-file", str(state_file))
        assert result.exit_code == 0, result.output
        state = load_state(state_file)
        for name, address in state.contracts.items():
            assert re.search(rf"{name}\s+{address}", result.output)
        for role, account in state.accounts.items():
            assert re.search(rf"#{account.index} {role.value}\s+{account.address}", result.output)
        assert "1,000,000" in result.output  # test tokens held by the funded roles
        assert DEFAULT_MNEMONIC not in result.output
        for index in range(10):
            key = derive_account(DEFAULT_MNEMONIC, index).key.hex()
            assert key not in result.output
            assert key.removeprefix("0x") not in result.output
    finally:
        stop_devnet(state_file)


def test_deploy_to_an_anvil_the_harness_started(tmp_path: Path) -> None:
    """What `make demo` does: anvil first (e2e.harness.chain_up), then the contracts."""
    state_file = tmp_path / "devnet.json"
    with Anvil(block_time=1.0) as node:
        state = deploy_to(
            node.url, block_time=1.0, mint_tokens=500, state_file=state_file, provider_tier=6
        )
        assert load_state(state_file) == state
        assert state.rpc_url == node.url
        client = connect(state)
        _check_deployment(client, mint_tokens=500)
        # New providers start in the tier asked for (enum value tier - 1).
        assert client.contract("ProviderRegistry").functions.defaultTier().call() == 5


def test_devnet_up_in_the_foreground_stops_anvil_on_ctrl_c(tmp_path: Path) -> None:
    state_file = tmp_path / "devnet.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "gpu_provider", "devnet", "up", "--state-file", str(state_file)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    shown = []
    try:
        # Wait until it says it is up, as a person at the terminal would.
        for line in process.stdout:
            shown.append(line)
            if "anvil runs until you press Ctrl-C" in line:
                break
        assert "anvil runs until" in shown[-1], "".join(shown)
        state = load_state(state_file)
        pid = int((tmp_path / "anvil.pid").read_text())
        assert rpc_call(state.rpc_url, "eth_chainId") == hex(31337)
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    output = "".join(shown) + rest
    assert process.returncode == 0, output
    assert "stopping anvil" in output
    assert not state_file.exists()
    # anvil was the subprocess's child: once stopped it is gone (or reaped by init).
    deadline = time.monotonic() + 5
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_alive(pid)


def test_a_tenant_round_trip_through_the_cli(detached: Path) -> None:
    """deposit -> order (YAML) -> a provider bids -> matchmaker -> lease -> close, all via CLI."""
    state = load_state(detached)
    client = connect(state)
    provider = state.account_address(Role.PROVIDER)
    registry = client.contract("ProviderRegistry").functions
    _transact(
        client,
        registry.addProvider(
            (provider, [state.payment_token], '{"Name":"p"}', "127.0.0.1", "cert", provider)
        ),
        provider,
    )
    _transact(client, registry.setProviderStatus(provider, STATUS_ACTIVE), provider)
    at = ["--state-file", str(detached)]

    # The example order wants a `secured` provider (tiers 1-3): the registry admin moves the
    # provider there from the CLI.
    tier = _cli("provider", "set-tier", provider, "2", *at)
    assert tier.exit_code == 0, tier.output
    # (It registered in tier 4, where `devnet up` starts new providers by default.)
    assert f"provider {provider}: trust tier 4 -> 2" in tier.output
    assert registry.getProviderTrustTier(provider).call() == 1  # tier N is enum value N-1
    deposit = _cli("tenant", "deposit", "--amount", "25", *at)
    assert deposit.exit_code == 0, deposit.output
    assert "escrow, free     25 USDT" in deposit.output

    order = _cli("tenant", "order", str(REPO / "manifests/examples/order.yaml"), *at)
    assert order.exit_code == 0, order.output
    match = re.search(r"order (\d+) created", order.output)
    assert match, order.output
    order_id = int(match.group(1))
    # 1 h at 1 s blocks = 3600 blocks, 4 USD/h = 4e18 / 3600 per block.
    assert "3600 s = 3600 blocks" in order.output
    assert f"4.00 USD/h = {4 * TOKEN // 3600} per block" in order.output

    bid_price = 10**15  # 3.6 USD/h at 1 s blocks
    bid = client.contract("Bid").functions.placeBid(order_id, bid_price, 0)
    _transact(client, bid, provider)

    waiting = _cli("tenant", "wait-lease", str(order_id), "--timeout", "0", *at)
    assert waiting.exit_code == 1
    assert "is `gpu-provider devnet matchmaker` running" in waiting.output

    created = client.contract("OrderRequest").functions.orderCreatedBlock(order_id).call()
    _wait_for_block(client, created + BID_WINDOW)
    matched = _cli("matchmaker", "--once", *at)
    assert matched.exit_code == 0, matched.output
    assert "matched 1 order(s)" in matched.output

    lease = _cli("tenant", "wait-lease", str(order_id), "--json", *at)
    assert lease.exit_code == 0, lease.output
    details = json.loads(lease.output)
    assert (details["state"], details["provider"], details["accepted_price"]) == (
        "ACTIVE",
        provider,
        bid_price,
    )
    assert details["usd_per_hour"] == "3.6"

    shown = _cli("tenant", "lease", str(order_id), *at)
    assert shown.exit_code == 0
    assert f"lease {order_id}: ACTIVE" in shown.output
    assert f"{bid_price} per block = 3.6 USD/h" in shown.output

    closed = _cli("tenant", "close", str(order_id), *at)
    assert closed.exit_code == 0, closed.output
    paid = int(
        client.contract("EscrowProtocol")
        .functions.providerEarnings(provider, state.payment_token)
        .call()[0]
    )
    assert paid > 0
    assert paid % bid_price == 0
    assert "escrow, locked   0 USDT" in closed.output
    assert f"escrow, free     {format_amount(25 * TOKEN - paid, 18)} USDT" in closed.output

    refused = _cli("tenant", "close", str(order_id), *at)
    assert refused.exit_code == 1
    assert re.search(
        r"Error: closing lease \d+ was refused: the lease is already closed "
        r"\(LeaseAlreadyTerminated\)",
        refused.output,
    ), refused.output


def _transact(client: DevnetClient, call: object, sender: str) -> None:
    tx_hash = call.transact({"from": sender})  # type: ignore[attr-defined]
    receipt = client.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    assert receipt["status"] == 1


def _wait_for_block(client: DevnetClient, block: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while client.head() < block:
        assert time.monotonic() < deadline, f"block {block} was not mined in time"
        time.sleep(0.2)
