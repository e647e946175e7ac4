"""`gpu-provider devnet up`/`down`: anvil, the marketplace contracts, roles, test tokens, state.

`deploy_to(rpc_url, ...)` does the chain part on an anvil that is already running (the
`make demo` harness starts its own), `start_devnet` starts anvil first. Both end with
`.local/devnet.json` describing everything (see `state.py`) and return it as a `DevnetState`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from web3 import AsyncHTTPProvider, AsyncWeb3

from gpu_provider.chain.wallet import Wallet
from gpu_provider.devnet.accounts import (
    DEFAULT_ROLE_INDEXES,
    FUNDED_ROLES,
    Role,
    derive_account,
)
from gpu_provider.devnet.anvil import DEFAULT_MNEMONIC, Anvil, AnvilError
from gpu_provider.devnet.blocking import run_blocking
from gpu_provider.devnet.deploy import (
    DEFAULT_BID_WINDOW_BLOCKS,
    DEFAULT_PROVIDER_TIER,
    DeployError,
    DevnetContracts,
    TestTokenConfig,
    deploy_marketplace,
)
from gpu_provider.devnet.errors import DevnetError
from gpu_provider.devnet.paths import pid_file_for
from gpu_provider.devnet.session import DevnetChain
from gpu_provider.devnet.state import (
    PAYMENT_TOKEN_KEY,
    DevnetAccount,
    DevnetState,
    TokenInfo,
    save_state,
)

__all__ = [
    "DEFAULT_MINT_TOKENS",
    "build_state",
    "deploy_to",
    "deploy_to_async",
    "describe",
    "process_alive",
    "running_pid",
    "start_devnet",
    "stop_devnet",
    "token_balances",
]

DEFAULT_MINT_TOKENS: Final = 1_000_000
"""Whole test tokens (1 token = 1 USD) minted to each funded role."""


def build_state(
    contracts: DevnetContracts,
    *,
    rpc_url: str,
    block_time: float,
    mnemonic: str,
    accounts: Mapping[Role, DevnetAccount],
) -> DevnetState:
    """The devnet description for a deployment (pure: no chain access)."""
    addresses: dict[str, str] = dict(contracts.by_contract())
    addresses[PAYMENT_TOKEN_KEY] = contracts.test_token
    return DevnetState.model_validate(
        {
            "chain_id": contracts.chain_id,
            "rpc_url": rpc_url,
            "block_time": block_time,
            "mnemonic": mnemonic,
            "accounts": dict(accounts),
            "contracts": addresses,
            "token": TokenInfo(symbol=contracts.token.symbol, decimals=contracts.token.decimals),
            "deploy_block": contracts.deploy_block,
            "bid_window_blocks": contracts.bid_window_blocks,
        }
    )


def deploy_to(
    rpc_url: str,
    *,
    block_time: float,
    mnemonic: str = DEFAULT_MNEMONIC,
    bid_window_blocks: int = DEFAULT_BID_WINDOW_BLOCKS,
    mint_tokens: int = DEFAULT_MINT_TOKENS,
    state_file: Path | None = None,
    role_indexes: Mapping[Role, int] = DEFAULT_ROLE_INDEXES,
    provider_tier: int = DEFAULT_PROVIDER_TIER,
) -> DevnetState:
    """`deploy_to_async` for synchronous callers (the `make demo` harness, `devnet up`)."""
    return run_blocking(
        deploy_to_async(
            rpc_url,
            block_time=block_time,
            mnemonic=mnemonic,
            bid_window_blocks=bid_window_blocks,
            mint_tokens=mint_tokens,
            state_file=state_file,
            role_indexes=role_indexes,
            provider_tier=provider_tier,
        )
    )


async def deploy_to_async(
    rpc_url: str,
    *,
    block_time: float,
    mnemonic: str = DEFAULT_MNEMONIC,
    bid_window_blocks: int = DEFAULT_BID_WINDOW_BLOCKS,
    mint_tokens: int = DEFAULT_MINT_TOKENS,
    state_file: Path | None = None,
    role_indexes: Mapping[Role, int] = DEFAULT_ROLE_INDEXES,
    provider_tier: int = DEFAULT_PROVIDER_TIER,
) -> DevnetState:
    """Deploy the marketplace onto a running anvil, grant the roles, mint test tokens.

    The deployer is the admin and registry admin; MATCHMAKER_ROLE, VERIFIER_ROLE and the
    treasury go to their well-known accounts; each funded role gets `mint_tokens` whole test
    tokens. When `state_file` is given the description is written there too.
    """
    if mint_tokens < 0:
        raise DevnetError("the amount of test tokens to mint cannot be negative")
    signers = {role: derive_account(mnemonic, index) for role, index in role_indexes.items()}
    token = TestTokenConfig()
    mint: dict[str, int] = {
        signers[role].address: mint_tokens * 10**token.decimals
        for role in FUNDED_ROLES
        if role in signers and mint_tokens
    }
    w3 = AsyncWeb3(AsyncHTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    try:
        contracts = await deploy_marketplace(
            w3,
            Wallet(signers[Role.DEPLOYER]),
            matchmaker=signers[Role.MATCHMAKER].address,
            verifier=signers[Role.VERIFIER].address,
            registry_admin=signers[Role.DEPLOYER].address,
            treasury=signers[Role.TREASURY].address,
            mint=mint,
            token=token,
            bid_window_blocks=bid_window_blocks,
            provider_tier=provider_tier,
        )
    except DeployError as error:
        raise DevnetError(f"deploying the contracts failed: {error}") from None
    except ValueError as error:
        raise DevnetError(f"cannot deploy: {error}") from None
    except OSError:
        raise DevnetError(f"the chain at {rpc_url} does not answer") from None
    finally:
        await w3.provider.disconnect()
    state = build_state(
        contracts,
        rpc_url=rpc_url,
        block_time=block_time,
        mnemonic=mnemonic,
        accounts={
            role: DevnetAccount(index=role_indexes[role], address=signer.address)
            for role, signer in signers.items()
        },
    )
    if state_file is not None:
        save_state(state, state_file)
    return state


def running_pid(state_file: Path) -> int | None:
    """The pid of the anvil a previous `devnet up` left running for this state file, if alive.

    A pid file whose process is gone, or is no longer anvil (the pid was reused), is stale.
    """
    pid_file = pid_file_for(state_file)
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        command = b""
    if b"anvil" not in command or not process_alive(pid):
        return None
    return pid


def process_alive(pid: int) -> bool:
    """Whether the process runs (an exited child of ours is reaped, and a zombie is not alive)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state letter follows the command name, which is in parentheses.
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def start_devnet(
    *,
    state_file: Path,
    block_time: float,
    port: int = 0,
    bid_window_blocks: int = DEFAULT_BID_WINDOW_BLOCKS,
    mint_tokens: int = DEFAULT_MINT_TOKENS,
    provider_tier: int = DEFAULT_PROVIDER_TIER,
    log_file: Path | None = None,
) -> tuple[Anvil, DevnetState]:
    """Start anvil and deploy onto it; the caller owns the returned anvil (stop it, or detach).

    `block_time` 0 mines one block per transaction. The anvil's pid goes to `anvil.pid` next to
    the state file, so `devnet down` (and `make stack-down`) can stop it later.
    """
    pid = running_pid(state_file)
    if pid is not None:
        raise DevnetError(
            f"a devnet is already running for {state_file} (anvil pid {pid}): stop it with "
            f"`gpu-provider devnet down --state-file {state_file}` first"
        )
    state_file.parent.mkdir(parents=True, exist_ok=True)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
    node = Anvil(block_time=block_time or None, port=port, log_file=log_file)
    try:
        node.start()
    except AnvilError as error:
        raise DevnetError(str(error)) from None
    try:
        state = deploy_to(
            node.url,
            block_time=block_time,
            bid_window_blocks=bid_window_blocks,
            mint_tokens=mint_tokens,
            state_file=state_file,
            provider_tier=provider_tier,
        )
        assert node.process is not None
        pid_file_for(state_file).write_text(f"{node.process.pid}\n")
    except BaseException:
        node.stop()
        raise
    return node, state


def stop_devnet(state_file: Path, timeout: float = 10.0) -> int | None:
    """Stop the anvil `devnet up --detach` left running and remove its files.

    Returns the pid it stopped, or None when nothing was running (the files are removed
    anyway, so a stale description cannot mislead the next command).
    """
    pid = running_pid(state_file)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if process_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    pid_file_for(state_file).unlink(missing_ok=True)
    state_file.unlink(missing_ok=True)
    return pid


async def token_balances(chain: DevnetChain) -> dict[Role, int]:
    """Test-token balance (base units) of every role's wallet."""
    token = chain.contract("TestToken").functions
    return {
        role: int(await token.balanceOf(account.address).call())
        for role, account in chain.state.accounts.items()
    }


def describe(state: DevnetState, balances: Mapping[Role, int], state_file: Path) -> str:
    """The summary `devnet up` prints: where things are and who is who. Never a key."""
    block = f"a block every {state.block_time:g} s" if state.block_time else "a block per tx"
    lines = [
        f"devnet: chain id {state.chain_id}, RPC {state.rpc_url}, {block}, "
        f"bid window {state.bid_window_blocks} blocks",
        f"described in {state_file}",
        "",
        "contracts:",
    ]
    width = max(len(name) for name in state.contracts)
    lines += [f"  {name.ljust(width)}  {address}" for name, address in state.contracts.items()]
    lines += ["", f"accounts (anvil's test mnemonic; {state.token.symbol} held):"]
    role_width = max(len(role) for role in state.accounts)
    for role, account in sorted(state.accounts.items(), key=lambda item: item[1].index):
        held = balances.get(role, 0) // 10**state.token.decimals
        lines.append(
            f"  #{account.index} {role.value.ljust(role_width)}  {account.address}  {held:,}"
        )
    return "\n".join(lines)
