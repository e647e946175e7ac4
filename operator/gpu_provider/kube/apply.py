"""Server-side apply of a lease's objects, pruning what the manifest no longer renders, and the
lease namespace's deletion.

Every write is a server-side apply with the field manager `gpu-provider` and `force`: the
objects are ours (labelled with the lease, in the lease's own namespace), so a field someone
changed by hand is taken back, which is how drift is corrected. A field we do not set (an
annotation another controller adds) is left to its owner. Applying what is already there
changes nothing (no new resourceVersion, no restart).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gpu_provider.kube.client import FIELD_MANAGER, off_loop

__all__ = [
    "KINDS",
    "AppliedObject",
    "ApplyRefused",
    "apply_objects",
    "delete_collection",
    "delete_namespace",
    "prune_objects",
    "wait_quota_counted",
]

_APPLY_PATCH: Final = "application/apply-patch+yaml"
_TIMEOUT: Final = 15.0


@dataclass(frozen=True, slots=True)
class Kind:
    """Where a kind lives in the REST API."""

    prefix: str  # "/api/v1" or "/apis/<group>/<version>"
    plural: str
    namespaced: bool = True


KINDS: Final[Mapping[str, Kind]] = {
    "Namespace": Kind("/api/v1", "namespaces", namespaced=False),
    "ResourceQuota": Kind("/api/v1", "resourcequotas"),
    "LimitRange": Kind("/api/v1", "limitranges"),
    "ServiceAccount": Kind("/api/v1", "serviceaccounts"),
    "Secret": Kind("/api/v1", "secrets"),
    "Service": Kind("/api/v1", "services"),
    "NetworkPolicy": Kind("/apis/networking.k8s.io/v1", "networkpolicies"),
    "Ingress": Kind("/apis/networking.k8s.io/v1", "ingresses"),
    "Deployment": Kind("/apis/apps/v1", "deployments"),
    "StatefulSet": Kind("/apis/apps/v1", "statefulsets"),
}
"""The kinds `render_lease_objects` produces."""
PRUNED: Final = ("Deployment", "StatefulSet", "Service", "Ingress", "Secret", "NetworkPolicy")
"""Kinds whose objects depend on the manifest (one per service, or per credentials)."""


class ApplyRefused(RuntimeError):
    """The API server refused an object; the message names it and says why."""

    def __init__(self, obj: Mapping[str, Any], status: int, reason: str) -> None:
        super().__init__(f"{obj.get('kind')} {_name(obj)}: {reason}")
        self.status = status
        self.kind = str(obj.get("kind"))


@dataclass(frozen=True, slots=True)
class AppliedObject:
    kind: str
    name: str
    resource_version: str


def _name(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    return f"{namespace}/{metadata.get('name')}" if namespace else str(metadata.get("name"))


def _path(kind: Kind, name: str, namespace: str | None) -> str:
    if kind.namespaced:
        return f"{kind.prefix}/namespaces/{namespace}/{kind.plural}/{name}"
    return f"{kind.prefix}/{kind.plural}/{name}"


def _call(
    api: client.ApiClient,
    method: str,
    path: str,
    *,
    query_params: list[tuple[str, str]] | None = None,
    header_params: dict[str, str] | None = None,
    body: str | Mapping[str, Any] | None = None,
) -> Any:
    """One REST call through the client's own serialisation and credentials."""
    # What the generated client's own methods do: serialise, send, read, raise on an error.
    method_, url, headers, data, post = api.param_serialize(
        method,
        path,
        query_params=query_params,
        header_params=header_params,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(
        method_, url, header_params=headers, body=data, post_params=post, _request_timeout=_TIMEOUT
    )
    response.read()  # type: ignore[no-untyped-call]
    text = response.data.decode("utf-8") if response.data else ""
    if not 200 <= response.status <= 299:
        raise ApiException.from_response(http_resp=response, body=text, data=None)
    return json.loads(text) if text else {}


def _reason(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except ValueError:
        return str(error.reason)


async def apply_object(api: client.ApiClient, obj: Mapping[str, Any]) -> AppliedObject:
    """Server-side apply `obj` (force: the object is ours); its resourceVersion after."""
    kind = KINDS[str(obj["kind"])]
    metadata = obj["metadata"]
    path = _path(kind, metadata["name"], metadata.get("namespace"))
    try:
        stored = await off_loop(
            _call,
            api,
            "PATCH",
            path,
            query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            header_params={"Content-Type": _APPLY_PATCH, "Accept": "application/json"},
            body=json.dumps(obj),
        )
    except ApiException as error:
        raise ApplyRefused(obj, error.status or 0, _reason(error)) from None
    fields = stored.get("metadata") or {}
    return AppliedObject(
        str(obj["kind"]), str(metadata["name"]), str(fields.get("resourceVersion"))
    )


async def apply_objects(
    api: client.ApiClient, objects: Sequence[Mapping[str, Any]]
) -> list[AppliedObject]:
    """Apply in order; the first refusal stops (later objects may depend on it)."""
    return [await apply_object(api, obj) for obj in objects]


async def delete_object(api: client.ApiClient, kind: str, namespace: str, name: str) -> None:
    """Delete one object (gone already is fine); dependents go in the background."""
    where = KINDS[kind]
    # A dict: the client serialises a JSON body itself (a str would be sent as a JSON string).
    body = {"propagationPolicy": "Background"}
    try:
        await off_loop(
            _call,
            api,
            "DELETE",
            _path(where, name, namespace),
            header_params={"Content-Type": "application/json", "Accept": "application/json"},
            body=body,
        )
    except ApiException as error:
        if error.status != 404:
            raise


async def delete_collection(
    api: client.ApiClient,
    kind: str,
    namespace: str,
    selector: str,
    *,
    exclude: Sequence[str] = (),
) -> list[str]:
    """Delete the objects of `kind` that match `selector`, but those named in `exclude`, with
    one `deletecollection` (a right RBAC grants without `list` or `get`); their names."""
    where = KINDS[kind]
    fields = ",".join(f"metadata.name!={name}" for name in exclude)
    query = [("labelSelector", selector), ("propagationPolicy", "Background")]
    if fields:
        query.append(("fieldSelector", fields))
    try:
        answer = await off_loop(
            _call,
            api,
            "DELETE",
            f"{where.prefix}/namespaces/{namespace}/{where.plural}",
            query_params=query,
            header_params={"Accept": "application/json"},
        )
    except ApiException as error:
        if error.status == 404:  # the namespace is gone: nothing left to delete
            return []
        raise
    return [str((i.get("metadata") or {}).get("name")) for i in answer.get("items") or []]


async def prune_objects(
    api: client.ApiClient,
    namespace: str,
    selector: str,
    keep: Iterable[Mapping[str, Any]],
) -> list[str]:
    """Delete the lease's objects of the manifest-dependent kinds that `keep` does not name
    (a service the new manifest dropped, a Deployment that became a StatefulSet); returns
    `Kind/name` of each deleted."""
    wanted = {(str(o["kind"]), str(o["metadata"]["name"])) for o in keep}
    deleted: list[str] = []
    for kind in PRUNED:
        where = KINDS[kind]
        if kind == "Secret":
            # Never listed: RBAC cannot grant `list` on Secrets but cluster-wide, which would
            # make every Secret readable. One delete of the lease's others, by label and name.
            keep_names = sorted(name for k, name in wanted if k == kind)
            gone = await delete_collection(api, kind, namespace, selector, exclude=keep_names)
            deleted.extend(f"{kind}/{name}" for name in gone)
            continue
        listed = await off_loop(
            _call,
            api,
            "GET",
            f"{where.prefix}/namespaces/{namespace}/{where.plural}",
            query_params=[("labelSelector", selector)],
            header_params={"Accept": "application/json"},
        )
        for item in listed.get("items") or []:
            name = str((item.get("metadata") or {}).get("name"))
            if (kind, name) not in wanted:
                await delete_object(api, kind, namespace, name)
                deleted.append(f"{kind}/{name}")
    return deleted


async def wait_quota_counted(
    api: client.ApiClient, namespace: str, name: str, within: float = 5.0
) -> bool:
    """Wait until the quota controller has counted the ResourceQuota: until then the quota
    admission refuses every Pod, and the ReplicaSet controller backs off for seconds."""
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + within
    while True:
        try:
            quota = await off_loop(core.read_namespaced_resource_quota, name, namespace)
            if quota.status is not None and quota.status.hard:
                return True
        except ApiException as error:
            if error.status != 404:
                raise
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.02)


async def delete_namespace(api: client.ApiClient, name: str) -> bool:
    """Ask for the namespace's deletion; True when it is gone already (404)."""
    core = client.CoreV1Api(api)
    try:
        await off_loop(
            core.delete_namespace,
            name,
            propagation_policy="Background",
            _request_timeout=_TIMEOUT,
        )
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False
