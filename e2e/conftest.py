"""Session fixtures for the real local stack: one kwok cluster and one anvil per test run.

Every test under e2e/ is marked `e2e`. The cluster is created once per session (about 5 s
warm; the first run on a fresh machine builds the binaries, see docs/local-stack.md) and is
always deleted at the end, even when tests fail. Each test that needs one gets a fresh
namespace.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from e2e.harness.stack import LOCAL, KwokCluster, apply_objects, build_tools
from e2e.harness.topology import build_nodes
from gpu_provider.devnet.anvil import Anvil

E2E_DIR = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def stack_tools() -> Path:
    return build_tools()


@pytest.fixture(scope="session")
def kwok_cluster(stack_tools: Path) -> Iterator[KwokCluster]:
    """A fresh control plane with the GPU topology applied; deleted after the session."""
    name = os.environ.get("E2E_CLUSTER_NAME", f"e2e-{os.getpid()}")
    cluster = KwokCluster(name=name, kubeconfig=LOCAL / f"{name}.kubeconfig")
    try:
        cluster.create()
        apply_objects(build_nodes(), kubeconfig=cluster.kubeconfig)
        _wait_nodes_ready(cluster.kubeconfig, len(build_nodes()))
        yield cluster
    finally:
        cluster.delete()
        cluster.kubeconfig.unlink(missing_ok=True)


def _wait_nodes_ready(kubeconfig: Path, count: int, timeout: float = 60) -> None:
    api = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = api.list_node().items
        ready = [
            n
            for n in nodes
            if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
        ]
        if len(ready) >= count:
            return
        time.sleep(0.5)
    raise TimeoutError(f"only {len(ready)} of {count} nodes became Ready")


@pytest.fixture(scope="session")
def api_client(kwok_cluster: KwokCluster) -> client.ApiClient:
    return config.new_client_from_config(str(kwok_cluster.kubeconfig))


@pytest.fixture(scope="session")
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def namespace(core: client.CoreV1Api) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting for it to go)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    _wait_default_service_account(core, name)
    try:
        yield name
    finally:
        core.delete_namespace(name)


def _wait_default_service_account(core: client.CoreV1Api, name: str, timeout: float = 30) -> None:
    # Pods are refused until the controller-manager has made the `default` ServiceAccount.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if core.list_namespaced_service_account(name).items:
            return
        time.sleep(0.2)
    raise TimeoutError(f"no default ServiceAccount in {name}")


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    """A chain that mines every 1 s (tests may use a shorter interval than production's 2 s)."""
    with Anvil(block_time=1.0, log_file=LOCAL / f"anvil-e2e-{os.getpid()}.log") as node:
        yield node


@pytest.fixture(scope="session")
def crds(api_client: client.ApiClient) -> list[str]:
    """Install the generated CRDs into the session cluster and wait until they are served."""
    from gpu_provider.api.crd import all_crds

    ext = client.ApiextensionsV1Api(api_client)
    names = []
    for crd in all_crds():
        ext.create_custom_resource_definition(crd)
        names.append(crd["metadata"]["name"])
    deadline = time.monotonic() + 30
    for name in names:
        while True:
            status = ext.read_custom_resource_definition(name).status
            conditions = {c.type: c.status for c in (status.conditions or [])}
            if conditions.get("Established") == "True":
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not established: {conditions}")
            time.sleep(0.2)
    return names
