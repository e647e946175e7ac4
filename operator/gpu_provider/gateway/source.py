"""Keeps the `/status` document fresh: reads the cluster every few seconds, renders on change.

Each pass lists the offered Nodes (the ProviderNode's `nodeSelector`, server-side) and the
scheduled Pods from the apiserver's watch cache, then rebuilds the inventory only when a
resourceVersion moved: at 1,000 idle Nodes a pass is two cached lists and no recompute.
A request never waits for the cluster; it gets the last document built. When the cluster
has not answered for `stale_after_seconds`, `/status` says so (503) instead of serving an
old offer as if it were current.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from gpu_provider.api.v1alpha1 import ProviderNodeSpec
from gpu_provider.gateway.status import count_leases, render_status
from gpu_provider.inventory.report import InventoryReport
from gpu_provider.kube import reads

__all__ = ["BuildInventory", "ClusterStatusSource", "ProviderNodeMissing"]

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]
BuildInventory = Callable[[list[JsonObject], list[JsonObject], ProviderNodeSpec], InventoryReport]


class ProviderNodeMissing(RuntimeError):
    """No ProviderNode to serve, or several and none named; the message says which."""


class ClusterStatusSource:
    def __init__(
        self,
        api: client.ApiClient,
        build: BuildInventory,
        *,
        provider_node: str | None = None,
        refresh_seconds: float = 5.0,
        stale_after_seconds: float = 60.0,
    ) -> None:
        self._api = api
        self._build = build
        self._provider_node = provider_node
        self.refresh_seconds = refresh_seconds
        self._stale_after = stale_after_seconds
        self._document: JsonObject | None = None
        self._body: bytes | None = None
        self._read_at = 0.0
        self._versions: tuple[str, ...] = ()

    def current(self) -> JsonObject | None:
        return None if self._stale() else self._document

    def current_json(self) -> bytes | None:
        return None if self._stale() else self._body

    def _stale(self) -> bool:
        return self._body is None or time.monotonic() - self._read_at > self._stale_after

    async def provider_node(self) -> JsonObject:
        """The ProviderNode served: the one named, else the only one in the cluster."""
        if self._provider_node:
            found = await reads.read_provider_node(self._api, self._provider_node)
            if found is None:
                raise ProviderNodeMissing(f"ProviderNode {self._provider_node} does not exist")
            return found
        items = await reads.list_provider_nodes(self._api)
        if len(items) != 1:
            names = ", ".join(sorted(i["metadata"]["name"] for i in items)) or "none"
            raise ProviderNodeMissing(
                f"pass --provider-node: the gateway serves one ProviderNode, the cluster has "
                f"{len(items)} ({names})"
            )
        return items[0]

    async def refresh(self) -> None:
        """One pass: read, and rebuild the document if anything it depends on changed."""
        provider = await self.provider_node()
        name = provider["metadata"]["name"]
        try:
            spec = ProviderNodeSpec.model_validate(provider.get("spec") or {})
        except ValidationError as exc:
            raise ProviderNodeMissing(f"ProviderNode {name} has an invalid spec: {exc}") from None
        selector = reads.selector_string(spec.node_selector)
        nodes, pods, leases = await asyncio.gather(
            reads.list_nodes(self._api, label_selector=selector or None),
            reads.list_scheduled_pods(self._api),
            reads.list_gpu_leases(self._api),
        )
        counts = count_leases(leases, name)
        versions = (
            provider["metadata"].get("resourceVersion", ""),
            nodes.resource_version,
            pods.resource_version,
            repr(counts),
        )
        if versions != self._versions or self._document is None:
            report = self._build(nodes.items, pods.items, spec)
            self._document = render_status(report, hostname=spec.host_uri, counts=counts)
            self._body = json.dumps(self._document, separators=(",", ":")).encode()
            self._versions = versions
        self._read_at = time.monotonic()

    async def run(self) -> None:
        """Refresh forever; a failed pass is logged and retried at the next interval."""
        while True:
            try:
                await self.refresh()
            except (ApiException, ProviderNodeMissing, OSError) as exc:
                log.warning("inventory not refreshed: %s", _short(exc))
            await asyncio.sleep(self.refresh_seconds)


def _short(exc: Exception) -> str:
    if isinstance(exc, ApiException):
        return f"apiserver answered {exc.status} {exc.reason}"
    return str(exc)
