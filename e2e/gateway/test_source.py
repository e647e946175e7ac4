"""The refresher stays cheap: an unchanged cluster is re-listed, never recomputed."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes import client

from gpu_provider.api.v1alpha1 import ProviderNodeSpec
from gpu_provider.gateway.source import ClusterStatusSource
from gpu_provider.inventory import InventoryReport, build_inventory


class CountingBuild:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(
        self,
        nodes: Sequence[Mapping[str, Any]],
        pods: Sequence[Mapping[str, Any]],
        spec: ProviderNodeSpec,
    ) -> InventoryReport:
        self.calls += 1
        return build_inventory(nodes, pods, spec)


async def test_unchanged_cluster_is_not_recomputed_and_a_cordon_is(
    api_client: client.ApiClient, core: client.CoreV1Api, provider_node: dict[str, Any]
) -> None:
    build = CountingBuild()
    source = ClusterStatusSource(api_client, build, provider_node=provider_node["metadata"]["name"])
    await source.refresh()
    assert source.current() is not None
    # Another component may touch a Node between two passes; a quiet pair must exist.
    for _ in range(5):
        before = build.calls
        await source.refresh()
        if build.calls == before:
            break
    else:
        raise AssertionError("every refresh recomputed the inventory of an unchanged cluster")
    core.patch_node("gpu-a100-0", {"spec": {"unschedulable": True}})
    try:
        before = build.calls
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            await source.refresh()
            document = source.current()
            assert document is not None
            names = {n["name"] for n in document["cluster"]["inventory"]["available"]["nodes"]}
            if "gpu-a100-0" not in names:
                break
        else:
            raise AssertionError("the cordoned node never left /status")
        assert build.calls > before
    finally:
        core.patch_node("gpu-a100-0", {"spec": {"unschedulable": False}})
