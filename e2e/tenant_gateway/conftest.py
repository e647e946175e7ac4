"""The real gateway process against the kwok cluster, with GpuLeases the tests create.

GpuLeases live in a namespace of their own (the gateway is started with
`GPU_PROVIDER_NAMESPACE` set to it), are made by `build_gpulease` from a chain lease and its
order, and carry the status the operator writes after creating them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from e2e.gateway.process import Gateway, example_provider_node, serving
from e2e.harness.stack import KwokCluster
from gpu_provider.api.v1alpha1 import GPU_LEASE_PLURAL, GROUP, VERSION
from gpu_provider.devnet.accounts import DEFAULT_ROLE_INDEXES, Role, derive_account
from gpu_provider.devnet.anvil import DEFAULT_MNEMONIC
from gpu_provider.devnet.orderfile import parse_order_yaml
from gpu_provider.market import decode, encode
from gpu_provider.market.leases import ChainLease, ChainOrder, LeaseState, OrderState
from gpu_provider.render import ProviderNodeRef, build_gpulease

TENANT = derive_account(DEFAULT_MNEMONIC, DEFAULT_ROLE_INDEXES[Role.TENANT])
TENANT_2 = derive_account(DEFAULT_MNEMONIC, DEFAULT_ROLE_INDEXES[Role.TENANT_2])
PROVIDER = derive_account(DEFAULT_MNEMONIC, DEFAULT_ROLE_INDEXES[Role.PROVIDER])
TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"

# The order Spheron's README manifest was written for: one RTX 4090, 8 CPUs, 16 GiB, 200 GiB.
ORDER_YAML = """
name: westcoast
duration: 1h
maxUsdPerHour: "1.00"
services:
  - name: py-cuda
    replicas: 1
    cpu: 8
    memory: 16Gi
    storage:
      - name: default
        size: 200Gi
    gpu:
      units: 1
      models: [rtx4090]
    endpoints:
      - kind: shared-http
"""


@pytest.fixture(scope="module")
def lease_namespace(core: client.CoreV1Api) -> Iterator[str]:
    name = f"tg-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="module")
def provider_node(api_client: client.ApiClient, crds: list[str]) -> Iterator[dict[str, Any]]:
    with example_provider_node(api_client, f"tenant-gw-{uuid.uuid4().hex[:6]}") as created:
        yield created


@pytest.fixture(scope="module")
def gateway(
    kwok_cluster: KwokCluster,
    provider_node: dict[str, Any],
    lease_namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("tenant-gateway")
    name = provider_node["metadata"]["name"]
    env = {"GPU_PROVIDER_NAMESPACE": lease_namespace}
    with serving(kwok_cluster.kubeconfig, tmp, name, env) as running:
        yield running


MakeLease = Callable[..., dict[str, Any]]


@pytest.fixture
def make_lease(
    api_client: client.ApiClient, provider_node: dict[str, Any], lease_namespace: str
) -> MakeLease:
    """Create the GpuLease of a fresh lease id as the operator would; return it as stored."""
    custom = client.CustomObjectsApi(api_client)

    def make(
        *, tenant: str = TENANT.address, order_yaml: str = ORDER_YAML, phase: str | None = None
    ) -> dict[str, Any]:
        lease_id = int(uuid.uuid4().int % 10**12)
        spec = parse_order_yaml(order_yaml, "order").spec
        order = ChainOrder(
            order_id=lease_id,
            max_price=10**15,
            num_of_blocks=1800,
            token=TOKEN,
            creator=tenant,
            state=OrderState.MATCHED,
            spec_text=encode(spec),
            version=1,
            mode=1,
            tiers=(1, 2, 3),
            spec=decode(encode(spec)),
        )
        lease = ChainLease(
            lease_id=lease_id,
            fizz_id=0,
            request_id=lease_id,
            accepted_price=10**14,
            provider=PROVIDER.address,
            tenant=tenant,
            start_block=1,
            start_time=1_795_608_000,
            end_time=0,
            state=LeaseState.ACTIVE,
        )
        node = ProviderNodeRef(provider_node["metadata"]["name"], provider_node["metadata"]["uid"])
        rendered = build_gpulease(
            lease, order, node, lease_namespace, taken_in_at=datetime.now(UTC)
        )
        custom.create_namespaced_custom_object(
            GROUP, VERSION, lease_namespace, GPU_LEASE_PLURAL, rendered.body
        )
        status = dict(rendered.status, **({"phase": phase} if phase else {}))
        return dict(
            custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                lease_namespace,
                GPU_LEASE_PLURAL,
                rendered.name,
                {"status": status},
                _content_type="application/merge-patch+json",
            )
        )

    return make


@pytest.fixture
def read_lease(api_client: client.ApiClient, lease_namespace: str) -> Callable[[str], Any]:
    custom = client.CustomObjectsApi(api_client)

    def read(name: str) -> Any:
        return custom.get_namespaced_custom_object(
            GROUP, VERSION, lease_namespace, GPU_LEASE_PLURAL, name
        )

    return read
