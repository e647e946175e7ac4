"""`render_lease_objects`: every Kubernetes object of a lease with a manifest, in apply order.

The order is the one a server-side apply must follow: the Namespace (with Pod Security), then
what admits or confines Pods (quota, limits, policies, identity, pull Secrets), then Services
and Ingresses, then the workloads. Applying the same lease twice gives the same objects:
nothing here reads a clock or a random source.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gpu_provider.api.v1alpha1.gpulease import GpuLeaseSpec, Placement
from gpu_provider.api.v1alpha1.providernode import LeaseDefaults, RootImages
from gpu_provider.market.catalog import GpuCatalog, default_catalog
from gpu_provider.render.namespace import (
    LeaseScope,
    render_namespace,
    render_pull_secret,
    render_service_account,
)
from gpu_provider.render.network import ClusterNetwork, render_network_policies
from gpu_provider.render.quota import render_limit_range, render_resource_quota
from gpu_provider.render.services import (
    exposed_ports,
    is_http,
    node_port_count,
    render_ingress,
    render_services,
)
from gpu_provider.render.workload import render_workload

__all__ = ["LeaseObjects", "render_lease_objects"]


@dataclass(frozen=True, slots=True)
class LeaseObjects:
    """A lease's objects by role; `ordered()` is the apply order. `notes` say what was not
    rendered and why (e.g. an HTTP port with no ingressDomain), for events and conditions."""

    namespace: dict[str, Any]
    quota: list[dict[str, Any]]
    network_policies: list[dict[str, Any]]
    service_account: dict[str, Any]
    secrets: list[dict[str, Any]]
    services: list[dict[str, Any]]
    ingresses: list[dict[str, Any]]
    workloads: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def ordered(self) -> list[dict[str, Any]]:
        return [
            self.namespace,
            *self.quota,
            *self.network_policies,
            self.service_account,
            *self.secrets,
            *self.services,
            *self.ingresses,
            *self.workloads,
        ]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.ordered())


def render_lease_objects(
    spec: GpuLeaseSpec,
    placement: Placement | None,
    defaults: LeaseDefaults,
    network: ClusterNetwork,
    *,
    pull_secrets: Sequence[Mapping[str, Any]] = (),
    catalog: GpuCatalog | None = None,
) -> LeaseObjects:
    """The objects that run `spec.manifest` as `spec.resources` ordered, on `placement`.

    `pull_secrets` are the Secrets the gateway stored from the manifest's credentials
    (`render.pullsecret.pull_secrets`, read back by the controller): each is copied into the
    lease namespace under its name, which the service's `imagePullSecret` names.
    `defaults.root_images` Allow relaxes the Pods and the namespace to `baseline`.
    Raises ValueError when the lease has no manifest yet.
    """
    if spec.manifest is None:
        raise ValueError(f"lease {spec.lease_id} has no manifest yet: nothing to run")
    scope = LeaseScope.of(spec)
    catalog = catalog or default_catalog()
    manifest_services = {s.name: s for s in spec.manifest.services}
    notes: list[str] = []
    with_ingress = bool(defaults.ingress_domain)
    secrets = [render_pull_secret(scope, stored) for stored in pull_secrets]
    services, ingresses, workloads, exposed = [], [], [], []
    for ordered in spec.resources.services:
        service = manifest_services.get(ordered.name)
        if service is None:
            notes.append(f"service {ordered.name!r} is in the order but not in the manifest")
            continue
        copied = {secret["metadata"]["name"] for secret in secrets}
        if service.image_pull_secret and service.image_pull_secret not in copied:
            notes.append(
                f"service {service.name!r} pulls with Secret {service.image_pull_secret!r}, "
                "which was not given: its image pull will fail until it is"
            )
        services.extend(render_services(scope, service, with_ingress=with_ingress))
        ingress = render_ingress(scope, service, defaults)
        if ingress is not None:
            ingresses.append(ingress)
            if not network.ingress_namespace:
                notes.append(
                    f"service {service.name!r} has an Ingress but the cluster's ingress "
                    "controller namespace is not known: its NetworkPolicy admits no proxy"
                )
        elif any(map(is_http, service.expose)):
            notes.append(
                f"service {service.name!r} exposes HTTP but the ProviderNode has no "
                "leaseDefaults.ingressDomain: no Ingress (no host name), a NodePort instead"
            )
        exposed.append(exposed_ports(service, with_ingress=with_ingress))
        workloads.append(
            render_workload(
                scope,
                ordered,
                service,
                placement=placement,
                defaults=defaults,
                catalog=catalog,
            )
        )
    # The quota covers what runs: the manifest's services, at its replica counts.
    deployed = [
        (o, manifest_services[o.name].replicas)
        for o in spec.resources.services
        if o.name in manifest_services
    ]
    quota = [
        render_resource_quota(
            scope,
            deployed,
            node_ports=node_port_count(
                [manifest_services[o.name] for o, _ in deployed], with_ingress=with_ingress
            ),
            services=len(services),
        ),
        render_limit_range(scope, deployed),
    ]
    return LeaseObjects(
        namespace=render_namespace(scope, restricted=defaults.root_images is not RootImages.ALLOW),
        quota=quota,
        network_policies=render_network_policies(scope, network, exposed),
        service_account=render_service_account(scope),
        secrets=secrets,
        services=services,
        ingresses=ingresses,
        workloads=workloads,
        notes=notes,
    )
