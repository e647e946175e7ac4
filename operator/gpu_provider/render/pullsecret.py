"""Registry credentials from a tenant's manifest, as image pull Secrets (never in the GpuLease).

The gateway stores them in a namespace of their own, `<operator namespace>-pull-secrets`
(`pull_secret_namespace`), one Secret per service that has credentials, named
`lease-<id>-pull-<service>` and labelled with the lease. Not in the operator's namespace: the
gateway deletes a lease's stale ones and the operator reads them by a name RBAC cannot list in
advance, so whoever may do that in a namespace may do it to every Secret there, and the wallet
Secret must not be one of them. The lease namespace does not exist yet when the manifest
arrives (the GpuLease controller creates it), and the gateway is given no right to create
namespaces: the controller copies each Secret into `lease-<id>` under the same name, which
`spec.manifest.services[].imagePullSecret` records, and the pod's `imagePullSecrets` names it
there. A Secret cannot be owned by a GpuLease of another namespace: the controller deletes
the lease's pull Secrets when the lease closes.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Final

from gpu_provider.api.manifest import Credentials, Manifest
from gpu_provider.render.labels import lease_labels

__all__ = [
    "PULL_SECRET_COMPONENT",
    "PULL_SECRET_TYPE",
    "pull_secret_name",
    "pull_secret_namespace",
    "pull_secrets",
]

PULL_SECRET_COMPONENT: Final = "registry-credentials"  # noqa: S105 - a label value
PULL_SECRET_TYPE: Final = "kubernetes.io/dockerconfigjson"  # noqa: S105 - a Secret type


def pull_secret_namespace(operator_namespace: str) -> str:
    """Where the gateway keeps pull Secrets (the chart creates it, with the same name)."""
    # Helm: printf "%s-pull-secrets" | trunc 63 | trimSuffix "-" gives the same name.
    name = f"{operator_namespace}-pull-secrets"[:63]
    return name[:-1] if name.endswith("-") else name


def pull_secret_name(lease_id: int, service: str) -> str:
    # lease-<78 digits>-pull-<63 chars> can exceed 253 only for absurd ids; names stay DNS-safe.
    return f"lease-{lease_id}-pull-{service}"


def _docker_config(credentials: Credentials) -> str:
    login = f"{credentials.username}:{credentials.password}".encode()
    entry = {
        "username": credentials.username,
        "password": credentials.password,
        "auth": base64.b64encode(login).decode("ascii"),
    }
    if credentials.email:
        entry["email"] = credentials.email
    return json.dumps({"auths": {credentials.host: entry}}, separators=(",", ":"))


def pull_secrets(
    manifest: Manifest,
    *,
    lease_id: int,
    tenant: str,
    provider_node: str,
    namespace: str,
    owner: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Service name -> the Secret body for its registry credentials (services without
    credentials have none). `owner` is the GpuLease's ownerReference, when known."""
    secrets: dict[str, dict[str, Any]] = {}
    for service in manifest.services():
        if service.credentials is None:
            continue
        name = pull_secret_name(lease_id, service.name)
        metadata: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "labels": lease_labels(lease_id, tenant, provider_node, PULL_SECRET_COMPONENT),
        }
        if owner is not None:
            metadata["ownerReferences"] = [owner]
        secrets[service.name] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": metadata,
            "type": PULL_SECRET_TYPE,
            "data": {
                ".dockerconfigjson": base64.b64encode(
                    _docker_config(service.credentials).encode()
                ).decode("ascii")
            },
        }
    return secrets
