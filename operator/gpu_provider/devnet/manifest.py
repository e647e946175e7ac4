"""The deployment manifest a tenant PUTs to its provider, read from YAML and checked.

The format is the one Spheron's SDK sends (see `manifests/examples/manifest.yaml`): a list of
groups `[{name, services: [...]}]`. It is validated by the project's one manifest model,
`gpu_provider.api.manifest`, the same one the provider's gateway parses the upload with, so
what the tenant tool accepts the provider accepts too. Pure: text in, JSON-ready data out.
"""

from __future__ import annotations

from typing import Any

import yaml

from gpu_provider.api.manifest import ManifestError, parse_manifest
from gpu_provider.api.manifest_fit import order_mismatch
from gpu_provider.devnet.errors import DevnetError
from gpu_provider.market import OrderSpec

__all__ = ["manifest_mismatch", "manifest_service_names", "parse_manifest_yaml"]


def parse_manifest_yaml(text: str, source: str = "the manifest") -> list[dict[str, Any]]:
    """The manifest's groups, as the JSON the SDK sends; DevnetError saying what is wrong."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise DevnetError(f"{source} is not valid YAML: {error}") from None
    try:
        return parse_manifest(document).to_wire()
    except ManifestError as error:
        raise DevnetError(f"{source}: {error}") from None


def manifest_service_names(manifest: list[dict[str, Any]]) -> list[str]:
    return [str(service["name"]) for group in manifest for service in group["services"]]


def manifest_mismatch(manifest: list[dict[str, Any]], spec: OrderSpec) -> str | None:
    """Why the provider would refuse this manifest for a lease of `spec`, or None."""
    try:
        return order_mismatch(parse_manifest(manifest), spec)
    except ManifestError as error:
        return f"the manifest is not valid: {error}"
