"""What the provider refuses to run, and says why: the order, privileges, ports, images."""

from __future__ import annotations

from typing import Any

import pytest

from gpu_provider.api.manifest import ManifestError, parse_manifest
from gpu_provider.api.manifest_policy import image_refusal, manifest_refusal, parse_image
from gpu_provider.api.v1alpha1.providernode import ImagePolicy, LeaseDefaults, PortRange
from tests.tenant_gateway.sdk import README_MANIFEST, manifest, order, service

DEFAULTS = LeaseDefaults()


def _refusal(body: list[dict[str, Any]], **kwargs: Any) -> str | None:
    return manifest_refusal(
        parse_manifest(body), kwargs.pop("resources", order()), kwargs.pop("defaults", DEFAULTS)
    )


def test_the_readme_manifest_fits_its_order() -> None:
    assert _refusal(README_MANIFEST) is None


def _with(path: str, value: Any) -> list[dict[str, Any]]:
    body = manifest()
    node: Any = service(body)
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[last] = value
    return body


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("resources.gpu.units.val", "2", "asks for 2 GPUs per replica; the order has 1"),
        ("resources.cpu.units.val", "8001", "8001 millicores of CPU per replica"),
        ("resources.memory.size.val", "17179869185", "bytes of memory per replica"),
        ("resources.storage.0.size.val", "214748364801", "bytes of storage per replica"),
        ("count", 2, "asks for 2 replicas x 1 = 2 GPUs; the order has 1 x 1 = 1"),
        ("name", "other", "services ['other'] are not in the order"),
        (
            "resources.gpu.attributes",
            [{"key": "vendor/nvidia/model/h100", "value": "true"}],
            "names the GPU models ['h100']; the order allows only ['rtx4090']",
        ),
    ],
)
def test_a_manifest_asking_more_than_the_order_is_refused(
    path: str, value: Any, reason: str
) -> None:
    refusal = _refusal(_with(path, value))
    assert refusal is not None
    assert refusal.startswith("the manifest does not fit the order: ")
    assert reason in refusal


def test_asking_less_than_the_order_fits() -> None:
    body = _with("resources.cpu.units.val", "4000")
    service(body)["resources"]["gpu"] = None
    assert _refusal(body) is None


def test_replicas_are_compared_as_totals_the_sdk_way() -> None:
    # The order says 2 replicas of 1 GPU; the manifest's count says 2: it fits. Count 3 not.
    assert _refusal(_with("count", 2), resources=order(replicas=2)) is None
    refusal = _refusal(_with("count", 3), resources=order(replicas=2))
    assert refusal is not None
    assert "3 replicas x 1 = 3 GPUs" in refusal


def test_one_default_volume_fits_an_order_of_shm_and_persistent_volumes() -> None:
    # The SDK sends one `default` volume sized from the first of the order's volumes.
    assert _refusal(README_MANIFEST, resources=order(shm_and_disk=True)) is None


@pytest.mark.parametrize(
    "field",
    [
        {"privileged": True},
        {"securityContext": {"privileged": True}},
        {"hostNetwork": True},
        {"hostPID": True},
        {"volumes": [{"hostPath": {"path": "/"}}]},
    ],
)
def test_privileged_and_host_fields_are_refused_as_unknown(field: dict[str, Any]) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(manifest(**field))
    message = str(caught.value)
    assert f"[0].services[0].{next(iter(field))}: unknown field" in message
    assert "privileged containers" in message
    assert "host paths" in message


def test_a_host_port_in_expose_is_an_unknown_field() -> None:
    body = manifest()
    service(body)["expose"][0]["hostPort"] = 22
    with pytest.raises(ManifestError, match=r"expose\[0\]\.hostPort: unknown field"):
        parse_manifest(body)


@pytest.mark.parametrize(
    ("expose", "reason"),
    [
        ({}, None),  # externalPort 8888 is a wish: the cluster picks a NodePort
        ({"port": 80, "externalPort": 80}, None),  # low container ports are the pod's own
        ({"usePublicPort": True}, "public port 8888 is outside this provider's range 30000-32767"),
        ({"usePublicPort": True, "externalPort": 30080}, None),
        ({"portRange": "30000-30099", "portRangeAs": "30000-30099"}, None),
        ({"portRangeAs": "8000-8010"}, "public port 8000-8010 is outside"),
        ({"portRange": "30000-30100"}, "spans 101 ports; at most 100"),
        ({"global": False, "usePublicPort": True}, None),  # internal only: nothing published
    ],
)
def test_ports(expose: dict[str, Any], reason: str | None) -> None:
    body = manifest()
    service(body)["expose"][0].update(expose)
    refusal = _refusal(body)
    if reason is None:
        assert refusal is None
    else:
        assert refusal is not None
        assert reason in refusal
        assert refusal.startswith("service 'py-cuda': expose port")


def test_the_node_port_range_comes_from_lease_defaults() -> None:
    body = manifest()
    service(body)["expose"][0]["usePublicPort"] = True
    defaults = LeaseDefaults(node_port_range=PortRange(min=8000, max=9000))
    assert _refusal(body, defaults=defaults) is None


@pytest.mark.parametrize(
    ("image", "registry", "path", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", None, None),
        ("nginx:1.27", "docker.io", "library/nginx", "1.27", None),
        ("acme/app:v1", "docker.io", "acme/app", "v1", None),
        (
            "quay.io/jupyter/pytorch-notebook:cuda12",
            "quay.io",
            "jupyter/pytorch-notebook",
            "cuda12",
            None,
        ),
        ("localhost:5000/app", "localhost:5000", "app", None, None),
        ("ghcr.io/acme/app@sha256:" + "a" * 64, "ghcr.io", "acme/app", None, "sha256:" + "a" * 64),
        ("index.docker.io/library/redis:7", "docker.io", "library/redis", "7", None),
    ],
)
def test_image_references_are_read_like_the_runtime(
    image: str, registry: str, path: str, tag: str | None, digest: str | None
) -> None:
    parsed = parse_image(image)
    assert (parsed.registry, parsed.path, parsed.tag, parsed.digest) == (
        registry,
        path,
        tag,
        digest,
    )


@pytest.mark.parametrize(
    ("image", "policy", "reason"),
    [
        ("nginx:1.27", ImagePolicy(), None),
        ("nginx", ImagePolicy(), None),
        ("nginx", ImagePolicy(deny_latest_tag=True), "has no tag or the tag latest"),
        ("nginx:latest", ImagePolicy(deny_latest_tag=True), "has no tag or the tag latest"),
        ("nginx@sha256:" + "b" * 64, ImagePolicy(deny_latest_tag=True), None),
        ("ghcr.io/acme/app:v1", ImagePolicy(allowed_registries=["ghcr.io"]), None),
        ("ghcr.io/acme/app:v1", ImagePolicy(allowed_registries=["ghcr.io/acme"]), None),
        (
            "ghcr.io/acmeevil/app:v1",
            ImagePolicy(allowed_registries=["ghcr.io/acme"]),
            "is from ghcr.io; this provider allows only ghcr.io/acme",
        ),
        ("nginx:1", ImagePolicy(allowed_registries=["docker.io"]), None),
        (
            "evil.example/nginx:1",
            ImagePolicy(allowed_registries=["docker.io", "quay.io"]),
            "allows only docker.io, quay.io",
        ),
    ],
)
def test_image_policy(image: str, policy: ImagePolicy, reason: str | None) -> None:
    refusal = image_refusal(image, policy)
    if reason is None:
        assert refusal is None
    else:
        assert refusal is not None
        assert reason in refusal


def test_the_image_policy_is_the_providers() -> None:
    defaults = LeaseDefaults(image_policy=ImagePolicy(allowed_registries=["ghcr.io"]))
    refusal = _refusal(README_MANIFEST, defaults=defaults)
    assert refusal is not None
    assert refusal.startswith("service 'py-cuda': image")
