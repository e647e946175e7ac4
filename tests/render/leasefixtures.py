"""Leases with manifests, as the GpuLease controller will find them: shared by the unit tests
and the e2e dry-run (`e2e/render`), so the apiserver validates exactly what the goldens pin."""

from __future__ import annotations

import json
from typing import Any

from gpu_provider.api.manifest import parse_manifest
from gpu_provider.api.v1alpha1.gpulease import (
    GpuLeaseSpec,
    LeaseManifest,
    LeaseResources,
    Placement,
)
from gpu_provider.api.v1alpha1.providernode import LeaseDefaults
from gpu_provider.render.network import ClusterNetwork
from gpu_provider.render.pullsecret import pull_secrets

TENANT = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
PROVIDER_NODE = "devnet-provider"
GIB = 1024**3

DEFAULTS = LeaseDefaults.model_validate(
    {
        "runtimeClassName": "nvidia",
        "storageClassName": "fast-ssd",
        "ingressClassName": "nginx",
        "ingressDomain": "leases.example.com",
    }
)
NETWORK = ClusterNetwork(
    service_cidrs=("10.96.0.0/12", "fd00:10:96::/112"),
    pod_cidrs=("10.244.0.0/16", "fd00:10:244::/56"),
    ingress_namespace="ingress-nginx",
)

# The README's minimal manifest ("Manifest" in Spheron's protocol notes), byte for byte.
README_MANIFEST = """[{"name":"westcoast","services":[{"name":"py-cuda",
"image":"quay.io/jupyter/pytorch-notebook:cuda12-pytorch-2.4.1",
 "env":["JUPYTER_TOKEN=sentient"],"resources":{"id":1,"cpu":{"units":{"val":"8000"}},
 "memory":{"size":{"val":"17179869184"}},"storage":[{"name":"default","size":{"val":"214748364800"},
 "attributes":[]}],
 "gpu":{"units":{"val":"1"},"attributes":[{"key":"vendor/nvidia/model/rtx4090","value":"true"}]},
 "endpoints":[{"kind":1,"sequence_number":0}]},"count":1,
 "expose":[{"port":8888,"externalPort":8888,"proto":"TCP","service":"","global":true,"hosts":null,
"httpOptions":{"maxBodySize":1048576,"readTimeout":60000,"sendTimeout":60000,"nextTries":3,
"nextTimeout":0,"nextCases":["error","timeout"]},
 "ip":"","endpointSequenceNumber":0}],"params":null}]}]"""


def sdk_service(
    name: str,
    *,
    cpu: int,
    memory: int,
    gpus: int = 0,
    model: str = "h100",
    storage: int = GIB,
    expose: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One service as the SDK sends it (one storage entry named `default`)."""
    gpu = {
        "units": {"val": str(gpus)},
        "attributes": [{"key": f"vendor/nvidia/model/{model}", "value": "true"}] if gpus else [],
    }
    return {
        "name": name,
        "image": extra.pop("image", "ghcr.io/example/app:1.0"),
        "resources": {
            "id": 1,
            "cpu": {"units": {"val": str(cpu)}},
            "memory": {"size": {"val": str(memory)}},
            "storage": [{"name": "default", "size": {"val": str(storage)}}],
            "gpu": gpu,
            "endpoints": None,
        },
        "count": 1,
        "expose": expose or [],
        **extra,
    }


def lease_spec(
    manifest: str | list[dict[str, Any]], resources: dict[str, Any], lease_id: int = 42
) -> GpuLeaseSpec:
    sdk = parse_manifest(manifest if isinstance(manifest, str) else json.dumps(manifest))
    return GpuLeaseSpec(
        lease_id=str(lease_id),
        order_id=str(lease_id),
        provider_node=PROVIDER_NODE,
        tenant=TENANT,
        token=TOKEN,
        accepted_price="1000",
        start_block=100,
        num_of_blocks=1800,
        resources=LeaseResources.model_validate(resources),
        manifest=LeaseManifest.from_sdk(sdk),
    )


def readme_lease(lease_id: int = 7) -> tuple[GpuLeaseSpec, Placement]:
    """The README's one-GPU manifest on an order for it (8 cores, 16 GiB, 200 GiB scratch)."""
    resources = {
        "totalGpus": 1,
        "services": [
            {
                "name": "py-cuda",
                "cpuMillis": 8000,
                "memoryBytes": 16 * GIB,
                "storage": [{"name": "default", "sizeBytes": 200 * GIB}],
                "gpu": {"units": 1, "models": ["rtx4090"]},
                "endpoints": [{"kind": 1}],
            }
        ],
    }
    return lease_spec(README_MANIFEST, resources, lease_id), Placement(
        node="gpu-node-1", gpus=1, model="rtx4090"
    )


def multi_service_lease() -> tuple[GpuLeaseSpec, Placement]:
    """An inference API (1 H100, HTTP on 80, an internal metrics port) and a 2-replica
    game-style server (TCP and UDP global ports), with no GPU."""
    manifest = [
        {
            "name": "llm",
            "services": [
                sdk_service(
                    "api",
                    cpu=4000,
                    memory=32 * GIB,
                    gpus=1,
                    expose=[
                        {"port": 8080, "externalPort": 80, "proto": "TCP", "global": True},
                        {"port": 9090, "proto": "TCP", "global": False},
                    ],
                    env=["MODEL=llama", "LOG_LEVEL=info"],
                    command=["python", "-m", "server"],
                    args=["--port", "8080"],
                ),
                sdk_service(
                    "relay",
                    cpu=500,
                    memory=GIB,
                    count=2,
                    expose=[
                        {"port": 7000, "proto": "TCP", "global": True},
                        {"port": 7001, "proto": "UDP", "global": True},
                    ],
                ),
            ],
        }
    ]
    resources = {
        "totalGpus": 1,
        "services": [
            {
                "name": "api",
                "cpuMillis": 4000,
                "memoryBytes": 32 * GIB,
                "storage": [{"name": "scratch", "sizeBytes": 20 * GIB}],
                "gpu": {"units": 1, "models": ["h100", "a100-80g"]},
            },
            {"name": "relay", "replicas": 2, "cpuMillis": 500, "memoryBytes": GIB},
        ],
    }
    return lease_spec(manifest, resources, 43), Placement(node="gpu-node-3", gpus=1, model="h100")


def storage_lease(mount: str | None = "/models") -> tuple[GpuLeaseSpec, Placement]:
    """The example order's vllm service (100 GiB persistent `beta3` + 8 GiB `ram`), with the
    SDK's single `default` storage entry and, unless `mount` is None, a params mount for it."""
    params = None if mount is None else {"storage": [{"name": "default", "mount": mount}]}
    manifest = [
        {
            "name": "llm",
            "services": [
                sdk_service(
                    "vllm",
                    cpu=4000,
                    memory=32 * GIB,
                    gpus=1,
                    storage=100 * GIB,
                    image="vllm/vllm-openai:v0.6.3",
                    expose=[{"port": 8000, "proto": "TCP", "global": True}],
                    params=params,
                )
            ],
        }
    ]
    resources = {
        "totalGpus": 1,
        "services": [
            {
                "name": "vllm",
                "cpuMillis": 4000,
                "memoryBytes": 32 * GIB,
                "storage": [
                    {
                        "name": "models",
                        "sizeBytes": 100 * GIB,
                        "storageClass": "beta3",
                        "persistent": True,
                    },
                    {"name": "shm", "sizeBytes": 8 * GIB, "storageClass": "ram"},
                ],
                "gpu": {"units": 1, "models": ["h100", "a100-80g"]},
            }
        ],
    }
    return lease_spec(manifest, resources, 44), Placement(node="gpu-node-3", gpus=1, model="h100")


def credentials_lease() -> tuple[GpuLeaseSpec, Placement, list[dict[str, Any]]]:
    """A private image: the gateway's stored pull Secret, and the manifest naming it."""
    manifest = [
        {
            "name": "private",
            "services": [
                sdk_service(
                    "trainer",
                    cpu=2000,
                    memory=8 * GIB,
                    gpus=1,
                    model="rtx4090",
                    image="registry.example.com/team/trainer:2",
                    credentials={
                        "host": "registry.example.com",
                        "username": "team",
                        "password": "s3cret-token",
                    },
                )
            ],
        }
    ]
    resources = {
        "totalGpus": 1,
        "services": [
            {
                "name": "trainer",
                "cpuMillis": 2000,
                "memoryBytes": 8 * GIB,
                "gpu": {"units": 1, "models": ["rtx4090"]},
            }
        ],
    }
    spec = lease_spec(manifest, resources, 45)
    stored = pull_secrets(
        parse_manifest(json.dumps(manifest)),
        lease_id=45,
        tenant=TENANT,
        provider_node=PROVIDER_NODE,
        namespace="gpu-provider-system",
    )
    assert spec.manifest is not None
    services = [
        s.model_copy(update={"image_pull_secret": stored[s.name]["metadata"]["name"]})
        if s.name in stored
        else s
        for s in spec.manifest.services
    ]
    spec = spec.model_copy(
        update={"manifest": spec.manifest.model_copy(update={"services": services})}
    )
    placement = Placement(node="gpu-node-1", gpus=1, model="rtx4090")
    return spec, placement, list(stored.values())
