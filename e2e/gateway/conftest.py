"""A ProviderNode for the gateway tests: the production-shaped example under its own name."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from tests.samples import load_example

from e2e.gateway.process import Gateway, start_gateway
from e2e.harness.stack import KwokCluster
from gpu_provider.api.v1alpha1 import GROUP, VERSION


@pytest.fixture(scope="module")
def provider_node(api_client: client.ApiClient, crds: list[str]) -> Iterator[dict[str, Any]]:
    body = copy.deepcopy(load_example("providernode.yaml"))
    body["metadata"] = {"name": f"gateway-e2e-{uuid.uuid4().hex[:6]}"}
    custom = client.CustomObjectsApi(api_client)
    created = custom.create_cluster_custom_object(GROUP, VERSION, "providernodes", body)
    yield created
    custom.delete_cluster_custom_object(GROUP, VERSION, "providernodes", body["metadata"]["name"])


@pytest.fixture(scope="module")
def gateway(
    kwok_cluster: KwokCluster,
    provider_node: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("gateway")
    running = start_gateway(
        kwok_cluster.kubeconfig,
        tmp,
        "--provider-node",
        provider_node["metadata"]["name"],
        "--devnet-self-signed",
    )
    yield running
    running.stop()
