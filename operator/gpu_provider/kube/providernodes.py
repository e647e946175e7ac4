"""ProviderNode reads and status writes (the controller's only path to its own object).

Status is written with a JSON merge patch on the status subresource: a list given in the patch
(`pendingTxs`, `conditions`) replaces the stored one whole, which is what the intent journal
needs (the store hands over the complete list), and fields not named stay as they are, so the
journal and the reconcile can write their parts independently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gpu_provider.api.v1alpha1.common import GROUP, VERSION
from gpu_provider.api.v1alpha1.providernode import PROVIDER_NODE_PLURAL
from gpu_provider.kube.client import FIELD_MANAGER, off_loop

__all__ = ["ProviderNodeGone", "patch_status", "read_provider_node"]

_MERGE_PATCH: Final = "application/merge-patch+json"


class ProviderNodeGone(LookupError):
    """The ProviderNode was deleted."""


async def read_provider_node(api: client.ApiClient, name: str) -> dict[str, Any]:
    """The ProviderNode as stored now (the journal is read from here at takeover)."""
    objects = client.CustomObjectsApi(api)
    try:
        body = await off_loop(
            objects.get_cluster_custom_object, GROUP, VERSION, PROVIDER_NODE_PLURAL, name
        )
    except ApiException as error:
        if error.status == 404:
            raise ProviderNodeGone(name) from None
        raise
    return cast(dict[str, Any], body)


async def patch_status(api: client.ApiClient, name: str, status: Mapping[str, Any]) -> None:
    """Merge `status` into the ProviderNode's status; raises if the apiserver did not take it."""
    objects = client.CustomObjectsApi(api)
    try:
        await off_loop(
            objects.patch_cluster_custom_object_status,
            GROUP,
            VERSION,
            PROVIDER_NODE_PLURAL,
            name,
            {"status": dict(status)},
            field_manager=FIELD_MANAGER,
            _content_type=_MERGE_PATCH,
        )
    except ApiException as error:
        if error.status == 404:
            raise ProviderNodeGone(name) from None
        raise
