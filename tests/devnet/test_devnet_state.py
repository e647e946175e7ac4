"""`.local/devnet.json`: every address by name, the roles, and errors that say what to run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from web3 import Web3

from gpu_provider.chain.artifacts import CONTRACT_NAMES
from gpu_provider.devnet.accounts import DEFAULT_ROLE_INDEXES, Role, derive_account
from gpu_provider.devnet.anvil import DEFAULT_MNEMONIC
from gpu_provider.devnet.deploy import DevnetContracts, TestTokenConfig
from gpu_provider.devnet.errors import DevnetError
from gpu_provider.devnet.state import DevnetAccount, DevnetState, load_state, save_state
from gpu_provider.devnet.up import build_state, describe

# anvil's well-known accounts under its test mnemonic.
ANVIL_ADDRESSES = {
    0: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    1: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    2: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    3: "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
}


def _address(n: int) -> str:
    return Web3.to_checksum_address(f"0x{n:040x}")


def _contracts() -> DevnetContracts:
    fields = {
        "access_control_manager": 1,
        "test_token": 2,
        "token_registry": 3,
        "escrow_user": 4,
        "provider_registry": 5,
        "provider_attribute_registry": 6,
        "escrow_protocol": 7,
        "order_request": 8,
        "compute_lease": 9,
        "bid": 10,
    }
    people = ("deployer", "matchmaker", "verifier", "registry_admin", "treasury")
    return DevnetContracts.model_validate(
        {
            **{name: _address(n) for name, n in fields.items()},
            **{name: _address(100 + i) for i, name in enumerate(people)},
            "chain_id": 31337,
            "deploy_block": 3,
            "token": TestTokenConfig(),
            "bid_window_blocks": 10,
            "min_order_blocks": 1,
            "max_order_blocks": 1000,
            "protocol_fee_bps": 0,
        }
    )


def _state(block_time: float = 2.0) -> DevnetState:
    accounts = {
        role: DevnetAccount(index=index, address=derive_account(DEFAULT_MNEMONIC, index).address)
        for role, index in DEFAULT_ROLE_INDEXES.items()
    }
    return build_state(
        _contracts(),
        rpc_url="http://127.0.0.1:8545",
        block_time=block_time,
        mnemonic=DEFAULT_MNEMONIC,
        accounts=accounts,
    )


def test_roles_are_anvils_well_known_accounts() -> None:
    for role, index in [
        (Role.DEPLOYER, 0),
        (Role.PROVIDER, 1),
        (Role.TENANT, 2),
        (Role.MATCHMAKER, 3),
    ]:
        assert DEFAULT_ROLE_INDEXES[role] == index
        assert derive_account(DEFAULT_MNEMONIC, index).address == ANVIL_ADDRESSES[index]
    assert len(set(DEFAULT_ROLE_INDEXES.values())) == len(DEFAULT_ROLE_INDEXES)


def test_the_file_names_every_contract_and_the_payment_token(tmp_path: Path) -> None:
    path = tmp_path / "devnet.json"
    save_state(_state(), path)
    document = json.loads(path.read_text())
    assert set(document) == {
        "chainId",
        "rpcUrl",
        "blockTime",
        "mnemonic",
        "accounts",
        "contracts",
        "token",
        "deployBlock",
        "bidWindowBlocks",
    }
    assert set(document["contracts"]) == {*CONTRACT_NAMES, "testToken"}
    assert document["contracts"]["testToken"] == document["contracts"]["TestToken"] == _address(2)
    assert document["contracts"]["OrderRequest"] == _address(8)
    assert document["accounts"]["tenant"] == {"index": 2, "address": ANVIL_ADDRESSES[2]}
    assert (document["deployBlock"], document["bidWindowBlocks"]) == (3, 10)
    assert document["token"] == {"symbol": "USDT", "decimals": 18}
    assert load_state(path) == _state()


def test_a_role_s_key_comes_from_the_mnemonic() -> None:
    state = _state()
    assert state.signer(Role.TENANT).address == ANVIL_ADDRESSES[2]
    assert state.account_address(Role.MATCHMAKER) == ANVIL_ADDRESSES[3]


def test_an_edited_account_address_is_caught() -> None:
    document = json.loads(_state().to_json())
    document["accounts"]["tenant"]["address"] = ANVIL_ADDRESSES[3]
    with pytest.raises(DevnetError, match="the file was edited or is corrupt"):
        DevnetState.model_validate(document).signer(Role.TENANT)


@pytest.mark.parametrize(
    ("block_time", "per_hour"), [(2.0, 1800), (1.0, 3600), (0.5, 7200), (0, 1800), (12, 300)]
)
def test_prices_use_the_devnet_s_block_time(block_time: float, per_hour: int) -> None:
    state = _state(block_time)
    assert state.blocks_per_hour == per_hour
    assert state.token_terms().blocks_per_hour == per_hour
    assert state.token_terms().decimals == 18


def test_no_file_says_to_run_devnet_up(tmp_path: Path) -> None:
    with pytest.raises(
        DevnetError, match=r"no devnet at .*devnet.json: run `gpu-provider devnet up` first"
    ):
        load_state(tmp_path / "devnet.json")


def test_a_chain_without_contracts_says_to_deploy(tmp_path: Path) -> None:
    """What `make stack` writes before anything is deployed."""
    path = tmp_path / "devnet.json"
    path.write_text(json.dumps({"chainId": 31337, "rpcUrl": "http://x", "contracts": {}}))
    with pytest.raises(DevnetError, match="no contracts deployed: run `gpu-provider devnet up`"):
        load_state(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["contracts"].pop("Bid"), "no address for Bid"),
        (lambda d: d["contracts"].update(Bidd=_address(1)), "unknown names Bidd"),
        (lambda d: d["contracts"].update(Bid="0x12"), "not an address"),
        (lambda d: d.pop("rpcUrl"), "rpcUrl"),
        (lambda d: d["accounts"].update(boss={"index": 1, "address": _address(1)}), "accounts"),
    ],
)
def test_a_broken_file_is_named(tmp_path: Path, edit: object, message: str) -> None:
    document = json.loads(_state().to_json())
    edit(document)  # type: ignore[operator]
    path = tmp_path / "devnet.json"
    path.write_text(json.dumps(document))
    with pytest.raises(DevnetError, match=message):
        load_state(path)


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "devnet.json"
    path.write_text("{")
    with pytest.raises(DevnetError, match="is not JSON"):
        load_state(path)


def test_the_summary_names_roles_and_addresses_but_never_a_key() -> None:
    state = _state()
    text = describe(state, {Role.TENANT: 5 * 10**18}, Path(".local/devnet.json"))
    assert "chain id 31337" in text
    assert "http://127.0.0.1:8545" in text
    for name in (*CONTRACT_NAMES, "testToken"):
        assert name in text
    (tenant_line,) = [line for line in text.splitlines() if "#2 tenant" in line]
    assert ANVIL_ADDRESSES[2] in tenant_line
    assert tenant_line.endswith("  5")  # whole tokens held
    assert DEFAULT_MNEMONIC not in text
    for index in range(9):
        assert derive_account(DEFAULT_MNEMONIC, index).key.hex() not in text


def test_operator_settings_point_at_every_marketplace_contract() -> None:
    state = _state(block_time=2.0)
    settings = state.chain_settings()
    assert settings.chain_id == state.chain_id
    assert settings.rpc_urls == [state.rpc_url]
    assert settings.contracts.order_request == state.contracts["OrderRequest"]
    assert settings.contracts.compute_lease == state.contracts["ComputeLease"]
    assert all(value is not None for value in settings.contracts.model_dump().values())
    assert settings.blocks_per_hour == 1800
