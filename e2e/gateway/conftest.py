"""A ProviderNode for the gateway tests: the production-shaped example under its own name."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from e2e.gateway.process import Gateway, example_provider_node, serving
from e2e.harness.stack import KwokCluster


@pytest.fixture(scope="module")
def provider_node(api_client: client.ApiClient, crds: list[str]) -> Iterator[dict[str, Any]]:
    with example_provider_node(api_client, f"gateway-e2e-{uuid.uuid4().hex[:6]}") as created:
        yield created


@pytest.fixture(scope="module")
def gateway(
    kwok_cluster: KwokCluster,
    provider_node: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("gateway")
    with serving(kwok_cluster.kubeconfig, tmp, provider_node["metadata"]["name"]) as running:
        yield running
