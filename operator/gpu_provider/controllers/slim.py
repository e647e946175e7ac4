"""The parts of Nodes and Pods the inventory reads, kept in Kopf's indexes (pure).

Indexes hold these slim copies, not whole objects: at 1,000 Nodes a Node's managed fields,
images list and heartbeat times would be most of the operator's memory. The shapes stay the
API's (camelCase dicts), so `gpu_provider.inventory` reads them as it reads a listed object.
A fingerprint of each copy tells a change the inventory would notice from a kubelet heartbeat.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from gpu_provider.api.nodefacts import GPU_FACTS_ANNOTATION

__all__ = ["fingerprint", "holds_resources", "slim_node", "slim_pod"]

_FINISHED: Final = frozenset({"Succeeded", "Failed"})


def _m(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def slim_node(body: Mapping[str, Any]) -> dict[str, Any]:
    """Labels, the agent's facts, schedulability, taints, device counts and readiness."""
    meta, spec, status = _m(body.get("metadata")), _m(body.get("spec")), _m(body.get("status"))
    annotations = _m(meta.get("annotations"))
    facts = annotations.get(GPU_FACTS_ANNOTATION)
    ready = [
        {k: c.get(k) for k in ("type", "status", "reason")}
        for c in status.get("conditions") or []
        if isinstance(c, Mapping) and c.get("type") == "Ready"
    ]
    return {
        "metadata": {
            "name": meta.get("name"),
            # Every label, not only GPU ones: the ProviderNode's selector may name any.
            "labels": dict(_m(meta.get("labels"))),
            "annotations": {GPU_FACTS_ANNOTATION: facts} if facts is not None else {},
        },
        "spec": {
            "unschedulable": bool(spec.get("unschedulable")),
            "taints": [dict(t) for t in spec.get("taints") or [] if isinstance(t, Mapping)],
        },
        "status": {
            "capacity": dict(_m(status.get("capacity"))),
            "allocatable": dict(_m(status.get("allocatable"))),
            "conditions": ready,
        },
    }


def _resources(container: Mapping[str, Any]) -> dict[str, Any]:
    res = _m(container.get("resources"))
    return {"requests": dict(_m(res.get("requests"))), "limits": dict(_m(res.get("limits")))}


def slim_pod(body: Mapping[str, Any]) -> dict[str, Any]:
    """Node, phase and the requests of every container (what the scheduler adds up)."""
    meta, spec = _m(body.get("metadata")), _m(body.get("spec"))
    return {
        "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
        "spec": {
            "nodeName": spec.get("nodeName"),
            "containers": [{"resources": _resources(_m(c))} for c in spec.get("containers") or []],
            "initContainers": [
                {"resources": _resources(_m(c)), "restartPolicy": _m(c).get("restartPolicy")}
                for c in spec.get("initContainers") or []
            ],
            "overhead": dict(_m(spec.get("overhead"))),
        },
        "status": {"phase": _m(body.get("status")).get("phase")},
    }


def holds_resources(body: Mapping[str, Any]) -> bool:
    """A Pod bound to a Node and not finished: it holds what it requested there."""
    return bool(_m(body.get("spec")).get("nodeName")) and (
        _m(body.get("status")).get("phase") not in _FINISHED
    )


def fingerprint(slim: Mapping[str, Any]) -> str:
    return json.dumps(slim, sort_keys=True, separators=(",", ":"), default=str)
