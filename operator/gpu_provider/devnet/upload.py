"""The tenant's manifest upload, as Spheron's SDK does it.

The SDK reads the lease's provider from `ComputeLease`, that provider's `hostUri` from
`ProviderRegistry`, and PUTs the manifest (the JSON array of groups) to
`https://<hostUri>:8443/deployment/<leaseId>/manifest` with the `Auth-Spheron` header. Only
HTTP 200 is success: Spheron's proxy turns any other status into a failed deployment.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp

from gpu_provider.devnet.errors import DevnetError
from gpu_provider.devnet.manifest import manifest_mismatch
from gpu_provider.devnet.tenant import Tenant
from gpu_provider.market import OrderSpecError, decode
from gpu_provider.market.auth import AUTH_HEADER, build_auth_header

__all__ = ["PROVIDER_PORT", "ManifestReply", "TlsOptions", "manifest_url", "send_manifest"]

PROVIDER_PORT: Final = 8443
"""Where Spheron's SDK reaches a provider in provider mode (it adds the port itself)."""
_MAX_REPLY_CHARS: Final = 4_000


@dataclass(frozen=True, slots=True)
class ManifestReply:
    url: str
    status: int
    body: str


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """How the provider's certificate is checked: the system's CAs by default."""

    ca_file: Path | None = None
    insecure: bool = False

    def context(self) -> ssl.SSLContext:
        try:
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        except (OSError, ssl.SSLError) as error:
            raise DevnetError(f"cannot use the CA file {self.ca_file}: {error}") from None
        if self.insecure:
            # Devnet providers often serve a self-signed certificate.
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def manifest_url(host_uri: str, lease_id: int, port: int = PROVIDER_PORT) -> str:
    """`https://<hostUri>:<port>/deployment/<leaseId>/manifest`, from a bare host name."""
    host = host_uri.strip()
    if not host:
        raise DevnetError("the provider registered no hostUri: it cannot receive manifests")
    if "/" in host or ":" in host:
        raise DevnetError(
            f"the provider's hostUri {host_uri!r} is not a bare host name: Spheron's SDK adds "
            f"https:// and :{PROVIDER_PORT} itself, so it could not reach this provider"
        )
    return f"https://{host}:{port}/deployment/{lease_id}/manifest"


async def send_manifest(
    tenant: Tenant,
    lease_id: int,
    manifest: list[dict[str, Any]],
    *,
    port: int = PROVIDER_PORT,
    tls: TlsOptions | None = None,
    timeout_seconds: float = 30.0,
    now: Callable[[], float] = time.time,
) -> ManifestReply:
    """PUT the manifest to the lease's provider, signed with the Auth-Spheron header."""
    info = await tenant.lease(lease_id)
    if info.state != "ACTIVE":
        raise DevnetError(f"lease {lease_id} is {info.state}: nothing to deploy")
    if info.tenant != tenant.account.address:
        raise DevnetError(
            f"lease {lease_id} belongs to {info.tenant}, but you sign as "
            f"{tenant.account.address}: the provider would refuse it (use --private-key-file)"
        )
    await _check_against_order(tenant, lease_id, manifest)
    url = manifest_url(info.provider_host_uri, lease_id, port)
    headers = {
        "Content-Type": "application/json",
        AUTH_HEADER: build_auth_header(tenant.account.key, now=int(now())),
    }
    context = (tls or TlsOptions()).context()
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_seconds)) as http,
            http.put(url, data=json.dumps(manifest), headers=headers, ssl=context) as response,
        ):
            body = (await response.content.read(_MAX_REPLY_CHARS)).decode(errors="replace")
            status = response.status
    except aiohttp.ClientSSLError as error:
        raise DevnetError(
            f"the provider at {url} did not prove its identity ({error}): pass its CA with "
            "--ca-file, or --insecure for a devnet provider's self-signed certificate"
        ) from None
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        raise DevnetError(f"cannot reach the provider at {url}: {error}") from None
    if status != 200:
        raise DevnetError(
            f"the provider did not accept the manifest: HTTP {status} from {url} (only 200 "
            f"counts: Spheron's proxy fails the deployment on anything else): {body.strip()}"
        )
    return ManifestReply(url=url, status=status, body=body)


async def _check_against_order(
    tenant: Tenant, lease_id: int, manifest: list[dict[str, Any]]
) -> None:
    try:
        spec = decode(str((await tenant.order(lease_id))[6][0]))
    except OrderSpecError:
        return  # the provider will say what is wrong with the order itself
    problem = manifest_mismatch(manifest, spec)
    if problem:
        raise DevnetError(f"{problem}: the provider would refuse it")
