"""The operator as a provider runs it: `gpu-provider run` processes against the kwok GPU nodes
and a devnet on anvil, with the devnet verifier approving what the provider submits.

Each module gets its own chain (a fresh deployment, so the provider starts unregistered) and
its own Lease name; the operators are subprocesses started with a settings file, like
`make operator`. Reconcile interval and debounce are short so a change shows quickly.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from web3 import AsyncWeb3

from e2e.harness.operator_process import (  # noqa: F401 - the tests import wait_for from here
    OperatorProcess,
    start_operator,
    wait_for,
)
from e2e.harness.operator_setup import OPERATOR_NAMESPACE, operator_settings, wallet_objects
from e2e.harness.stack import LOCAL, KwokCluster, apply_objects
from gpu_provider.chain.contracts import Contracts
from gpu_provider.chain.registry import read_provider
from gpu_provider.chain.rpc import connect
from gpu_provider.devnet.accounts import Role
from gpu_provider.devnet.anvil import Anvil
from gpu_provider.devnet.state import DevnetState, save_state
from gpu_provider.devnet.up import deploy_to
from gpu_provider.market.advertise import ActualProvider

RECONCILE_INTERVAL = 3.0
LEASE_SECONDS = 4.0
PN_GROUP, PN_VERSION, PN_PLURAL = "gpuprovider.dev", "v1alpha1", "providernodes"
EXAMPLE = Path(__file__).parents[2] / "manifests/examples/providernode-devnet.yaml"
VERIFIER = (sys.executable, "-m", "gpu_provider", "devnet", "verifier")


@dataclass
class Chain:
    """The module's devnet, read the way a marketplace client reads it."""

    anvil: Anvil
    state: DevnetState
    state_file: Path

    @property
    def provider(self) -> str:
        return str(self.state.account_address(Role.PROVIDER))

    def _run(self, work: Callable[[AsyncWeb3[Any]], Any]) -> Any:
        async def go() -> Any:
            w3 = await connect(self.state.chain_settings())
            try:
                return await work(w3)
            finally:
                await w3.provider.disconnect()

        return asyncio.run(go())

    def read(self, address: str | None = None) -> ActualProvider:
        settings = self.state.chain_settings()

        async def work(w3: AsyncWeb3[Any]) -> ActualProvider:
            return await read_provider(Contracts(w3, settings.contracts), address or self.provider)

        result: ActualProvider = self._run(work)
        return result

    def nonce(self, address: str | None = None) -> int:
        async def work(w3: AsyncWeb3[Any]) -> int:
            return int(await w3.eth.get_transaction_count(address or self.provider))

        result: int = self._run(work)
        return result

    def transactions_from(self, address: str | None = None) -> list[tuple[str, str]]:
        """(to, calldata) of every transaction the address sent, oldest first."""
        sender = (address or self.provider).lower()

        async def work(w3: AsyncWeb3[Any]) -> list[tuple[str, str]]:
            found = []
            for number in range(await w3.eth.block_number + 1):
                block = await w3.eth.get_block(number, full_transactions=True)
                for tx in block["transactions"]:
                    if str(tx["from"]).lower() == sender:  # type: ignore[index]
                        found.append((str(tx["to"]), tx["input"].hex()))  # type: ignore[index]
            return found

        result: list[tuple[str, str]] = self._run(work)
        return result


def approved_gpus(chain: Chain) -> dict[int, int]:
    return dict(chain.read().approved_units("GPU"))


@pytest.fixture(scope="module")
def chain(stack_tools: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    """Anvil mining a block a second, the marketplace deployed, the verifier approving."""
    workdir = tmp_path_factory.mktemp("devnet")
    with Anvil(block_time=1.0, log_file=LOCAL / f"anvil-operator-{os.getpid()}.log") as node:
        state_file = workdir / "devnet.json"
        state = deploy_to(node.url, block_time=1.0, state_file=state_file)
        save_state(state, state_file)
        with (workdir / "verifier.log").open("ab") as out:
            verifier = subprocess.Popen(
                [*VERIFIER, "--delay", "0.5", "--state-file", str(state_file)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            yield Chain(node, state, state_file)
        finally:
            verifier.terminate()
            verifier.wait(timeout=30)


@pytest.fixture(scope="module")
def operator_namespace(kwok_cluster: KwokCluster, crds: list[str], chain: Chain) -> str:
    """`gpu-provider-system` with the devnet provider's wallet Secret, as `make stack` makes."""
    apply_objects(wallet_objects(chain.state), kubeconfig=kwok_cluster.kubeconfig)
    return OPERATOR_NAMESPACE


@dataclass
class OperatorLauncher:
    kubeconfig: Path
    chain: Chain
    workdir: Path
    lease_name: str
    started: list[OperatorProcess] = field(default_factory=list)

    def start(self, wait_healthy: bool = True) -> OperatorProcess:
        settings = operator_settings(
            self.chain.state,
            reconcile_interval_seconds=RECONCILE_INTERVAL,
            debounce_seconds=0.3,
            lease_name=self.lease_name,
            lease_duration_seconds=LEASE_SECONDS,
            lease_renew_seconds=1,
            stop_timeout_seconds=10,
        )
        operator = start_operator(
            settings,
            kubeconfig=self.kubeconfig,
            workdir=self.workdir,
            name=f"operator-{len(self.started)}",
            wait_healthy=wait_healthy,
        )
        self.started.append(operator)
        return operator

    def stop_all(self) -> None:
        for operator in self.started:
            if operator.process.poll() is None:
                operator.stop()


def _logs_dir() -> Path:
    # Under .local, not pytest's tmp: the operators' logs outlive the run for a post-mortem.
    path = LOCAL / f"e2e-operator-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    path.mkdir(parents=True)
    return path


@pytest.fixture(scope="module")
def operators(
    kwok_cluster: KwokCluster,
    operator_namespace: str,
    chain: Chain,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorLauncher]:
    launcher = OperatorLauncher(
        kwok_cluster.kubeconfig,
        chain,
        _logs_dir(),
        f"gpu-provider-e2e-{uuid.uuid4().hex[:6]}",
    )
    try:
        yield launcher
    finally:
        launcher.stop_all()


@pytest.fixture(scope="module")
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


def example_provider(name: str = "devnet-provider", **spec: Any) -> dict[str, Any]:
    """manifests/examples/providernode-devnet.yaml, renamed, with `spec` fields replaced."""
    body: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    body["metadata"]["name"] = name
    body["spec"].update(spec)
    return body


def provider_node(custom: client.CustomObjectsApi, name: str) -> dict[str, Any]:
    result: dict[str, Any] = custom.get_cluster_custom_object(PN_GROUP, PN_VERSION, PN_PLURAL, name)
    return result


def condition(custom: client.CustomObjectsApi, name: str, type_: str) -> dict[str, Any]:
    status = provider_node(custom, name).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), {})


def delete_provider_node(custom: client.CustomObjectsApi, name: str) -> None:
    """Delete it and drop our finalizer (the operator that would remove it may be gone)."""
    try:
        custom.delete_cluster_custom_object(PN_GROUP, PN_VERSION, PN_PLURAL, name)
        custom.patch_cluster_custom_object(
            PN_GROUP, PN_VERSION, PN_PLURAL, name, {"metadata": {"finalizers": None}}
        )
    except client.ApiException as error:
        if error.status != 404:
            raise
