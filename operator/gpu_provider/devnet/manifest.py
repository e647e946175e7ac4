"""The deployment manifest a tenant POSTs to its provider, read from YAML and sanity-checked.

The format is the Akash-derived one Spheron's providers accept (see
`manifests/examples/manifest.yaml`): a list of groups `[{name, services: [...]}]`, each service
with `name`, `image`, `resources`, `count`, `expose`, ... The provider's gateway validates it
fully; this module only catches what a tenant gets wrong most often before it leaves the
machine: not a list, a service without an image, services that are not the order's.
Pure: text in, JSON-ready data out.
"""

from __future__ import annotations

from typing import Any

import yaml

from gpu_provider.devnet.errors import DevnetError
from gpu_provider.market import OrderSpec

__all__ = ["manifest_mismatch", "manifest_service_names", "parse_manifest_yaml"]


def parse_manifest_yaml(text: str, source: str = "the manifest") -> list[dict[str, Any]]:
    """The manifest's groups, as plain data ready for JSON; DevnetError saying what is wrong."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise DevnetError(f"{source} is not valid YAML: {error}") from None
    if not isinstance(document, list) or not document:
        raise DevnetError(f"{source} must be a non-empty list of groups: - name: ... services:")
    for position, group in enumerate(document):
        where = f"{source}: group {position}"
        if not isinstance(group, dict) or not isinstance(group.get("name"), str):
            raise DevnetError(f"{where} must be a mapping with a name")
        services = group.get("services")
        if not isinstance(services, list) or not services:
            raise DevnetError(f"{where} ({group['name']}) has no services")
        for index, service in enumerate(services):
            if not isinstance(service, dict) or not isinstance(service.get("name"), str):
                raise DevnetError(f"{where}, service {index} must be a mapping with a name")
            image = service.get("image")
            if not isinstance(image, str) or not image.strip():
                raise DevnetError(f"{where}, service {service['name']!r} has no image")
    return document


def manifest_service_names(manifest: list[dict[str, Any]]) -> list[str]:
    return [str(service["name"]) for group in manifest for service in group["services"]]


def manifest_mismatch(manifest: list[dict[str, Any]], spec: OrderSpec) -> str | None:
    """Why the provider would refuse this manifest for a lease of `spec`, or None."""
    sent = sorted(manifest_service_names(manifest))
    ordered = sorted(service.name for service in spec.services)
    if sent != ordered:
        return (
            f"the manifest's services ({', '.join(sent)}) are not the order's "
            f"({', '.join(ordered)})"
        )
    return None
