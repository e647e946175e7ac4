"""Read and write one annotation on one Node (the node agent's own).

A JSON merge patch touches only that key, so labels and annotations written by the kubelet,
GPU Feature Discovery or anyone else are left alone, and no resourceVersion race can fail it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from gpu_provider.kube.client import FIELD_MANAGER, off_loop

__all__ = ["NodeAnnotation", "NodeApiError", "NodeNotFound"]

_MERGE_PATCH: Final = "application/merge-patch+json"


class NodeNotFound(LookupError):
    """The Node does not exist: the name is wrong, not the network."""


class NodeApiError(RuntimeError):
    """The apiserver refused or could not be reached; worth retrying."""


class NodeAnnotation:
    """One annotation key on one Node."""

    def __init__(self, api_client: client.ApiClient, node_name: str, key: str) -> None:
        self._api = client.CoreV1Api(api_client)
        self.node_name = node_name
        self.key = key

    async def read(self) -> str | None:
        """The annotation's value; None when the Node has no such annotation."""
        node = await self._call(self._api.read_node, self.node_name)
        annotations = (node.metadata.annotations if node.metadata else None) or {}
        value = annotations.get(self.key)
        return value if isinstance(value, str) else None

    async def write(self, value: str) -> str:
        """Set the annotation; returns the Node's new resourceVersion."""
        body = {"metadata": {"annotations": {self.key: value}}}
        node = await self._call(
            self._api.patch_node,
            self.node_name,
            body,
            field_manager=FIELD_MANAGER,
            _content_type=_MERGE_PATCH,
        )
        return str(node.metadata.resource_version if node.metadata else "")

    async def _call(
        self, fn: Callable[..., client.V1Node], *args: object, **kwargs: object
    ) -> client.V1Node:
        try:
            node = await off_loop(fn, *args, **kwargs)
        except ApiException as exc:
            if exc.status == 404:
                raise NodeNotFound(
                    f"there is no Node named {self.node_name!r}: set NODE_NAME from the "
                    "downward API (fieldRef spec.nodeName) or pass --node-name"
                ) from None
            if exc.status in (401, 403):
                raise NodeApiError(
                    f"not allowed to read or patch Node {self.node_name!r} (HTTP {exc.status}): "
                    "the agent's ServiceAccount needs get and patch on nodes"
                ) from None
            raise NodeApiError(f"Node {self.node_name!r}: HTTP {exc.status} {exc.reason}") from None
        except (HTTPError, OSError) as exc:
            raise NodeApiError(f"cannot reach the apiserver: {exc}") from None
        return node
