"""May this provider run this manifest? The order it was paid for, and the provider's policy.

`manifest_refusal(manifest, resources, defaults)` gives the reason a manifest is refused
(the gateway answers 422 with it, and stores nothing), or None. Pure: models in, a sentence
out.

What is enforced, and why:

- **The order** (`GpuLease.spec.resources`): see `services_mismatch`: no service the order
  does not have, per replica no more CPU, memory, storage or GPUs than ordered, totals
  (manifest `count` x per replica) within the order's, GPU models among those ordered.
- **No privileged workload.** Spheron's manifest has no field for privileged containers,
  capabilities, host namespaces, host ports or host paths, and the model refuses unknown
  fields (`parse_manifest` says "unknown field"), so none can be asked for. The workload
  renderer never sets them either.
- **Ports.** Container ports (`port`) live in the pod's own network namespace, so any port
  1-65535 is allowed, including those under 1024 (the container runtime lets a non-root
  process bind them in its namespace). A global port is published on a NodePort that the
  cluster picks from `leaseDefaults.nodePortRange`; `externalPort` is then the tenant's wish
  (80 means HTTP, served by the Ingress). Only where the tenant insists on the public port
  (`usePublicPort`, or a `portRange`/`portRangeAs` to publish as is) must those ports lie
  in `nodePortRange`, and a range may span at most `MAX_PORT_RANGE` ports (providers
  complained of having to open huge ranges).
- **Images** (`leaseDefaults.imagePolicy`): the registry must be in `allowedRegistries`
  when the list is set (an entry may be a host, `ghcr.io`, or a host and path prefix,
  `ghcr.io/acme`); with `denyLatestTag`, an image needs a tag other than `latest`, or a
  digest.
"""

from __future__ import annotations

from typing import Final

from gpu_provider.api.manifest import Expose, Manifest, Service
from gpu_provider.api.manifest_fit import OrderedService, services_mismatch
from gpu_provider.api.v1alpha1.gpulease import LeaseResources
from gpu_provider.api.v1alpha1.providernode import ImagePolicy, LeaseDefaults, PortRange

__all__ = [
    "DOCKER_HUB",
    "MAX_PORT_RANGE",
    "ImageReference",
    "image_refusal",
    "lease_ordered_services",
    "manifest_refusal",
    "parse_image",
    "port_refusal",
]

DOCKER_HUB: Final = "docker.io"
_DOCKER_HUB_ALIASES: Final = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
MAX_PORT_RANGE: Final = 100
"""The most ports one `portRange` may publish."""


def lease_ordered_services(resources: LeaseResources) -> list[OrderedService]:
    """The GpuLease's decoded order in the terms `services_mismatch` compares."""
    return [
        OrderedService(
            name=service.name,
            replicas=service.replicas,
            cpu_millicores=service.cpu_millis,
            memory_bytes=service.memory_bytes,
            storage_bytes=sum(volume.size_bytes for volume in service.storage),
            gpu_units=service.gpu.units,
            gpu_models=frozenset(model.casefold() for model in service.gpu.models),
        )
        for service in resources.services
    ]


def manifest_refusal(
    manifest: Manifest, resources: LeaseResources, defaults: LeaseDefaults
) -> str | None:
    """Why the provider will not run `manifest` for a lease of `resources`, or None."""
    mismatch = services_mismatch(manifest, lease_ordered_services(resources))
    if mismatch:
        return f"the manifest does not fit the order: {mismatch}"
    for service in manifest.services():
        problem = image_refusal(service.image, defaults.image_policy) or _ports(
            service, defaults.node_port_range
        )
        if problem:
            return f"service {service.name!r}: {problem}"
    return None


# --- images -------------------------------------------------------------------------------


class ImageReference:
    """`[registry/]path[:tag][@digest]`, read the way the container runtime reads it."""

    __slots__ = ("digest", "path", "registry", "tag")

    def __init__(self, registry: str, path: str, tag: str | None, digest: str | None) -> None:
        self.registry, self.path, self.tag, self.digest = registry, path, tag, digest


def parse_image(image: str) -> ImageReference:
    """Split an image reference. The first component is a registry only when it looks like
    a host (has a `.` or a `:`, or is `localhost`); otherwise the image is on Docker Hub."""
    rest, _, digest = image.partition("@")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first.lower(), remainder
    else:
        registry, path = DOCKER_HUB, rest
    # A `:` after the last `/` is the tag (a `:` before it was a registry port).
    name, colon, tag = path.rpartition(":") if ":" in path.rsplit("/", 1)[-1] else (path, "", "")
    if registry in _DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in name:
            name = f"library/{name}"
    return ImageReference(registry, name, tag if colon else None, digest or None)


def _allowed(image: ImageReference, entry: str) -> bool:
    host, _, prefix = entry.strip().lower().rstrip("/").partition("/")
    if host in _DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
    if image.registry != host:
        return False
    return not prefix or image.path.lower() == prefix or image.path.lower().startswith(prefix + "/")


def image_refusal(image: str, policy: ImagePolicy) -> str | None:
    """Why `image` breaks the provider's image policy, or None."""
    reference = parse_image(image)
    allowed = policy.allowed_registries
    if allowed and not any(_allowed(reference, entry) for entry in allowed):
        return (
            f"image {image!r} is from {reference.registry}; this provider allows only "
            f"{', '.join(allowed)}"
        )
    if policy.deny_latest_tag and reference.digest is None and reference.tag in (None, "latest"):
        return (
            f"image {image!r} has no tag or the tag latest; this provider needs a version "
            "tag or a digest, so the workload does not change under the tenant"
        )
    return None


# --- ports --------------------------------------------------------------------------------


def _span(text: int | str | None) -> tuple[int, int] | None:
    if text is None or text == "":
        return None
    if isinstance(text, int):
        return (text, text)
    low, _, high = text.partition("-")
    return (int(low), int(high or low))


def port_refusal(expose: Expose, node_ports: PortRange) -> str | None:
    """Why one `expose` entry asks for public ports the provider does not open, or None."""
    spans = [s for s in (_span(expose.port_range), _span(expose.port_range_as)) if s]
    for low, high in spans:
        if low > high or low < 1 or high > 65535:
            return f"port range {low}-{high} is not a range of ports"
        if high - low + 1 > MAX_PORT_RANGE:
            return (
                f"port range {low}-{high} spans {high - low + 1} ports; at most "
                f"{MAX_PORT_RANGE} are published per range"
            )
    if not expose.global_:
        return None  # reachable only inside the lease: nothing is published
    public: list[tuple[int, int]] = []
    if expose.use_public_port:
        wanted = expose.external_port or expose.port
        public.append((wanted, wanted))
    if expose.port_range_as not in (None, ""):
        public.extend(s for s in [_span(expose.port_range_as)] if s)
    elif expose.use_public_port and expose.port_range not in (None, ""):
        public.extend(s for s in [_span(expose.port_range)] if s)
    for low, high in public:
        if low < node_ports.min or high > node_ports.max:
            shown = str(low) if low == high else f"{low}-{high}"
            return (
                f"public port {shown} is outside this provider's range "
                f"{node_ports.min}-{node_ports.max}; leave usePublicPort unset and the "
                "provider picks a port, reported in forwarded_ports"
            )
    return None


def _ports(service: Service, node_ports: PortRange) -> str | None:
    for expose in service.expose:
        problem = port_refusal(expose, node_ports)
        if problem:
            return f"expose port {expose.port}: {problem}"
    return None
