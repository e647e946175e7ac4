"""The bid journal of one ProviderNode: a ConfigMap in the operator namespace.

Bids come in bursts (a block with 200 orders) far beyond the 64 intents `status.pendingTxs`
holds, so the bid engine's intents (`bid:<orderId>`) are journaled here instead, with the same
record format (`PendingTx`, wire form) as JSON in `data.pendingTxs`. Writes are JSON merge
patches of `data` (one key, replaced whole), so the ConfigMap holds exactly what the store
handed over last; the first write creates it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gpu_provider.kube.client import FIELD_MANAGER, off_loop

__all__ = ["bid_journal_name", "read_bid_journal", "write_bid_journal"]

_KEY: Final = "pendingTxs"
_MERGE_PATCH: Final = "application/merge-patch+json"


def bid_journal_name(provider_node: str) -> str:
    return f"gpu-provider-bids-{provider_node}"[:253]


async def read_bid_journal(
    api: client.ApiClient, namespace: str, provider_node: str
) -> list[dict[str, Any]]:
    """The journaled bid intents (empty when the ConfigMap does not exist yet)."""
    core = client.CoreV1Api(api)
    try:
        cm = await off_loop(
            core.read_namespaced_config_map, bid_journal_name(provider_node), namespace
        )
    except ApiException as error:
        if error.status == 404:
            return []
        raise
    text = (cm.data or {}).get(_KEY) or "[]"
    return cast(list[dict[str, Any]], json.loads(text))


async def write_bid_journal(
    api: client.ApiClient,
    namespace: str,
    provider_node: str,
    records: Sequence[dict[str, Any]],
) -> None:
    """Replace the journal with `records`; raises if the apiserver did not take it."""
    core = client.CoreV1Api(api)
    name = bid_journal_name(provider_node)
    data = {_KEY: json.dumps(list(records), separators=(",", ":"))}
    try:
        await off_loop(
            core.patch_namespaced_config_map,
            name,
            namespace,
            {"data": data},
            field_manager=FIELD_MANAGER,
            _content_type=_MERGE_PATCH,
        )
    except ApiException as error:
        if error.status != 404:
            raise
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name=name,
                namespace=namespace,
                labels={
                    "app.kubernetes.io/managed-by": "gpu-provider",
                    "gpuprovider.dev/provider-node": provider_node,
                },
            ),
            data=data,
        )
        await off_loop(
            core.create_namespaced_config_map, namespace, body, field_manager=FIELD_MANAGER
        )
