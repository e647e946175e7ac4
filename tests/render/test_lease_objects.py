"""The Kubernetes objects of a lease with a manifest: pinned by golden files, with the facts a
provider or tenant would notice asserted outright.

Set UPDATE_GOLDEN=1 to rewrite the golden files after a deliberate change (and review the diff);
a missing golden file fails rather than being written silently.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_provider.api.v1alpha1.gpulease import (
    ForwardedPort,
    Placement,
    StorageRequest,
    VolumeMount,
)
from gpu_provider.api.v1alpha1.providernode import LeaseDefaults, PortRange, RootImages
from gpu_provider.render.labels import LEASE_ID_LABEL, TENANT_LABEL
from gpu_provider.render.objects import LeaseObjects, render_lease_objects
from gpu_provider.render.services import forwarded_ports, lease_uris, node_ports_outside
from gpu_provider.render.workload import DEFAULT_PERSISTENT_MOUNT, persistent_mounts
from tests.render.leasefixtures import (
    DEFAULTS,
    GIB,
    NETWORK,
    TENANT,
    credentials_lease,
    multi_service_lease,
    readme_lease,
    storage_lease,
)

GOLDEN = Path(__file__).parent / "golden"


def _golden(name: str, objects: LeaseObjects) -> None:
    path = GOLDEN / name
    text = yaml.safe_dump_all(objects.ordered(), sort_keys=False, default_flow_style=False)
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text(), f"{path} differs: run with UPDATE_GOLDEN=1 and review"


def _kinds(objects: LeaseObjects) -> list[tuple[str, str]]:
    return [(o["kind"], o["metadata"]["name"]) for o in objects.ordered()]


def _pod(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def test_readme_manifest_one_gpu_runs_isolated_on_the_reserved_rtx4090() -> None:
    spec, placement = readme_lease()
    objects = render_lease_objects(spec, placement, DEFAULTS, NETWORK)
    _golden("lease-readme.yaml", objects)
    assert _kinds(objects) == [
        ("Namespace", "lease-7"),
        ("ResourceQuota", "lease"),
        ("LimitRange", "lease"),
        ("NetworkPolicy", "deny-all"),
        ("NetworkPolicy", "allow-same-lease"),
        ("NetworkPolicy", "allow-dns"),
        ("NetworkPolicy", "allow-internet"),
        ("NetworkPolicy", "expose-py-cuda"),
        ("ServiceAccount", "lease"),
        ("Service", "py-cuda"),
        ("Service", "py-cuda-np"),
        ("Deployment", "py-cuda"),
    ]
    namespace = objects.namespace["metadata"]
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespace["labels"][LEASE_ID_LABEL] == "7"
    assert namespace["labels"][TENANT_LABEL] == TENANT.lower()
    assert namespace["labels"]["app.kubernetes.io/managed-by"] == "gpu-provider"
    pod = _pod(objects.workloads[0])
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["requests"] == container["resources"]["limits"]
    assert container["env"] == [{"name": "JUPYTER_TOKEN", "value": "sentient"}]
    assert pod["runtimeClassName"] == "nvidia"
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    (term,) = terms["nodeSelectorTerms"]
    assert {e["key"]: e["values"] for e in term["matchExpressions"]} == {
        "kubernetes.io/hostname": ["gpu-node-1"],
        "nvidia.com/gpu.product": ["NVIDIA-GeForce-RTX-4090"],
    }
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    # Port 8888 is global but not HTTP (not 80): a NodePort, no Ingress.
    assert objects.ingresses == []
    (_, node_port) = objects.services
    assert node_port["spec"]["type"] == "NodePort"
    assert "kopf.zalando.org" not in yaml.safe_dump_all(objects.ordered())
    assert all("ownerReferences" not in o["metadata"] for o in objects.ordered())


def test_multi_service_http_gets_an_ingress_and_tcp_udp_get_node_ports() -> None:
    spec, placement = multi_service_lease()
    objects = render_lease_objects(spec, placement, DEFAULTS, NETWORK)
    _golden("lease-multi-service.yaml", objects)
    (ingress,) = objects.ingresses
    assert ingress["spec"]["ingressClassName"] == "nginx"
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "api-43.leases.example.com"
    assert lease_uris(objects.ingresses) == {"api": ["api-43.leases.example.com"]}
    node_ports = [s for s in objects.services if s["spec"]["type"] == "NodePort"]
    assert [
        (s["metadata"]["name"], [p["protocol"] for p in s["spec"]["ports"]]) for s in node_ports
    ] == [("relay-np", ["TCP", "UDP"])]
    quota = objects.quota[0]["spec"]["hard"]
    assert quota["services.nodeports"] == "2"
    assert quota["pods"] == "3"
    api, relay = objects.workloads
    assert api["kind"] == relay["kind"] == "Deployment"
    assert relay["spec"]["replicas"] == 2
    # The relay has no GPU: no GPU limit, no pin to the GPU node.
    assert "nvidia.com/gpu" not in _pod(relay)["containers"][0]["resources"]["limits"]
    assert "affinity" not in _pod(relay)
    assert _pod(api)["containers"][0]["command"] == ["python", "-m", "server"]


def test_persistent_and_shm_order_becomes_statefulset_with_claim_and_dev_shm() -> None:
    spec, placement = storage_lease()
    objects = render_lease_objects(spec, placement, DEFAULTS, NETWORK)
    _golden("lease-storage.yaml", objects)
    (workload,) = objects.workloads
    assert workload["kind"] == "StatefulSet"
    (claim,) = workload["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "100Gi"
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    pod = _pod(workload)
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts == {"/dev/shm": "shm", "/models": "models"}
    (shm,) = pod["volumes"]
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "8Gi"}
    # shm pages are charged to the container's memory: 32 GiB ordered + 8 GiB shm.
    assert pod["containers"][0]["resources"]["limits"]["memory"] == "40Gi"
    hard = objects.quota[0]["spec"]["hard"]
    assert (hard["persistentvolumeclaims"], hard["requests.storage"]) == ("1", "100Gi")


def test_persistent_volume_without_a_params_mount_goes_to_the_default_path() -> None:
    spec, placement = storage_lease(mount=None)
    (workload,) = render_lease_objects(spec, placement, DEFAULTS, NETWORK).workloads
    mounts = {m["name"]: m["mountPath"] for m in _pod(workload)["containers"][0]["volumeMounts"]}
    assert mounts == {"shm": "/dev/shm", "models": DEFAULT_PERSISTENT_MOUNT}


def test_credentials_become_a_pull_secret_in_the_lease_namespace_only() -> None:
    spec, placement, stored = credentials_lease()
    objects = render_lease_objects(spec, placement, DEFAULTS, NETWORK, pull_secrets=stored)
    _golden("lease-credentials.yaml", objects)
    (secret,) = objects.secrets
    assert secret["metadata"]["namespace"] == "lease-45"
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert secret["data"] == stored[0]["data"]
    pod = _pod(objects.workloads[0])
    assert pod["imagePullSecrets"] == [{"name": secret["metadata"]["name"]}]
    # The password is in the Secret only; never in the pod spec or its env.
    assert "s3cret-token" not in yaml.safe_dump(objects.workloads)
    assert "s3cret-token" not in yaml.safe_dump(spec.model_dump())


def test_a_missing_pull_secret_is_noted() -> None:
    spec, placement, _ = credentials_lease()
    objects = render_lease_objects(spec, placement, DEFAULTS, NETWORK)
    assert objects.secrets == []
    assert any("was not given" in note for note in objects.notes)


def test_http_port_without_ingress_domain_is_a_node_port_and_says_so() -> None:
    spec, placement = multi_service_lease()
    objects = render_lease_objects(spec, placement, LeaseDefaults(), NETWORK)
    assert objects.ingresses == []
    assert any("ingressDomain" in note for note in objects.notes)
    published = {
        s["metadata"]["name"]: [p["port"] for p in s["spec"]["ports"]]
        for s in objects.services
        if s["spec"]["type"] == "NodePort"
    }
    assert published == {"api-np": [80], "relay-np": [7000, 7001]}
    assert objects.quota[0]["spec"]["hard"]["services.nodeports"] == "3"
    api = _pod(objects.workloads[0])
    assert "runtimeClassName" not in api


def test_root_images_are_refused_by_default() -> None:
    spec, placement = readme_lease()
    objects = render_lease_objects(spec, placement, DEFAULTS, NETWORK)
    labels = objects.namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    pod = _pod(objects.workloads[0])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert "runAsUser" not in pod["securityContext"]  # the image's own (non-root) user runs


def test_root_images_run_as_uid_1000_under_restricted() -> None:
    spec, placement = readme_lease()
    defaults = DEFAULTS.model_copy(update={"root_images": RootImages.RUN_AS_USER})
    objects = render_lease_objects(spec, placement, defaults, NETWORK)
    labels = objects.namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    security = _pod(objects.workloads[0])["securityContext"]
    assert security["runAsNonRoot"] is True
    assert (security["runAsUser"], security["runAsGroup"], security["fsGroup"]) == (
        1000,
        1000,
        1000,
    )


def test_root_images_allowed_relax_pods_and_the_namespace_to_baseline() -> None:
    spec, placement = readme_lease()
    defaults = DEFAULTS.model_copy(update={"root_images": RootImages.ALLOW})
    objects = render_lease_objects(spec, placement, defaults, NETWORK)
    labels = objects.namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    pod = _pod(objects.workloads[0])
    assert "runAsNonRoot" not in pod["securityContext"]
    container = pod["containers"][0]
    assert "runAsNonRoot" not in container["securityContext"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_rendering_twice_gives_the_same_objects() -> None:
    spec, placement = multi_service_lease()
    first = render_lease_objects(spec, placement, DEFAULTS, NETWORK).ordered()
    assert render_lease_objects(spec, placement, DEFAULTS, NETWORK).ordered() == first


def test_a_lease_without_manifest_renders_nothing() -> None:
    spec, placement = readme_lease()
    with pytest.raises(ValueError, match="no manifest"):
        render_lease_objects(
            spec.model_copy(update={"manifest": None}), placement, DEFAULTS, NETWORK
        )


def test_forwarded_ports_report_allocated_node_ports_for_the_status() -> None:
    spec, placement = multi_service_lease()
    services = render_lease_objects(spec, placement, DEFAULTS, NETWORK).services
    # As the API server returns them: node ports allocated (the UDP one not yet).
    services[-1]["spec"]["ports"][0]["nodePort"] = 31001
    reported = forwarded_ports(services, {"relay": "203.0.113.7"})
    assert reported == {
        "relay": [ForwardedPort(port=7000, external_port=31001, proto="TCP", host="203.0.113.7")]
    }
    assert reported["relay"][0].to_wire() == {
        "port": 7000,
        "externalPort": 31001,
        "proto": "TCP",
        "host": "203.0.113.7",
    }
    assert forwarded_ports(services, {}) == {}


def test_placement_model_narrows_the_gpu_products_to_the_reserved_one() -> None:
    spec, _ = multi_service_lease()
    anywhere = Placement(node=None, gpus=1, model=None)
    pod = _pod(render_lease_objects(spec, anywhere, DEFAULTS, NETWORK).workloads[0])
    (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    (products,) = term["matchExpressions"]
    assert products["key"] == "nvidia.com/gpu.product"
    assert "NVIDIA-H100-80GB-HBM3" in products["values"]
    assert any("A100" in value for value in products["values"])


def test_an_ingress_without_a_known_controller_namespace_is_noted() -> None:
    spec, placement = multi_service_lease()
    network = replace(NETWORK, ingress_namespace=None)
    objects = render_lease_objects(spec, placement, DEFAULTS, network)
    assert any("ingress controller namespace" in note for note in objects.notes)
    (policy,) = [p for p in objects.network_policies if p["metadata"]["name"] == "expose-api"]
    peers = policy["spec"]["ingress"][0]["from"]
    assert [peer for peer in peers if "namespaceSelector" in peer] == []


def test_node_ports_outside_the_provider_range_are_named() -> None:
    spec, placement = multi_service_lease()
    services = render_lease_objects(spec, placement, DEFAULTS, NETWORK).services
    services[-1]["spec"]["ports"][0]["nodePort"] = 30007
    services[-1]["spec"]["ports"][1]["nodePort"] = 31500
    assert node_ports_outside(services, PortRange(min=31000, max=31999)) == [
        "relay-np/7000: nodePort 30007 outside 31000-31999"
    ]


def test_only_a_docker_config_secret_is_copied_into_the_lease() -> None:
    spec, placement, stored = credentials_lease()
    opaque = {**stored[0], "type": "Opaque"}
    with pytest.raises(ValueError, match="dockerconfigjson"):
        render_lease_objects(spec, placement, DEFAULTS, NETWORK, pull_secrets=[opaque])


def _volume(name: str) -> StorageRequest:
    return StorageRequest(name=name, size_bytes=GIB, storage_class="beta3", persistent=True)


@pytest.mark.parametrize(
    ("volumes", "mounts", "expected"),
    [
        # A mount naming the volume wins over the SDK's `default`.
        (["models"], [("default", "/x"), ("models", "/models")], [("models", "/models")]),
        # The SDK's single `default` entry goes to the persistent volume.
        (["models"], [("default", "/workspace")], [("models", "/workspace")]),
        # An shm mount is not a place for the persistent volume.
        (["models"], [("default", "/dev/shm")], [("models", "/data")]),
        # Nothing named: /data, then /data-1.
        (["a", "b"], [], [("a", "/data"), ("b", "/data-1")]),
        # Two volumes both named `default` (the SDK's quirk in the order too): told apart.
        (["default", "default"], [], [("default-0", "/data"), ("default-1", "/data-1")]),
    ],
)
def test_persistent_volumes_are_mounted_where_the_manifest_says_or_at_data(
    volumes: list[str], mounts: list[tuple[str, str]], expected: list[tuple[str, str]]
) -> None:
    placed = persistent_mounts(
        [_volume(name) for name in volumes],
        [VolumeMount(volume=name, path=path) for name, path in mounts],
    )
    assert [(name, path) for name, path, _ in placed] == expected


def test_manifest_count_above_the_order_splits_each_replicas_share() -> None:
    spec, placement = readme_lease()
    assert spec.manifest is not None
    (service,) = spec.manifest.services
    resources = spec.resources.model_copy(
        update={
            "services": [
                spec.resources.services[0].model_copy(
                    update={"gpu": spec.resources.services[0].gpu.model_copy(update={"units": 2})}
                )
            ],
            "total_gpus": 2,
        }
    )
    spec = spec.model_copy(
        update={
            "resources": resources,
            "manifest": spec.manifest.model_copy(
                update={"services": [service.model_copy(update={"replicas": 2})]}
            ),
        }
    )
    objects = render_lease_objects(spec, placement, DEFAULTS, NETWORK)
    (workload,) = objects.workloads
    assert workload["spec"]["replicas"] == 2
    limits = _pod(workload)["containers"][0]["resources"]["limits"]
    assert (limits["nvidia.com/gpu"], limits["cpu"], limits["memory"]) == ("1", "4", "8Gi")
    hard = objects.quota[0]["spec"]["hard"]
    assert (hard["requests.nvidia.com/gpu"], hard["pods"], hard["limits.cpu"]) == ("2", "2", "8")
