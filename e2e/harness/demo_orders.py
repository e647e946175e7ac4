"""The demo tenant's orders, and the manifests it sends for them the way Spheron's SDK does.

Three orders the local cluster can serve (the GPU models of e2e/topology.yaml: H100, A100 80GB,
RTX 4090; the 4090 one short, so that it runs out of paid blocks during the demo) and one that
nothing here can serve (an L40S). Each manifest is built from its order, so it asks for exactly
what was ordered: the gateway refuses anything more (docs/tenant-api.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from gpu_provider.devnet.orderfile import TenantOrder, parse_order_yaml
from gpu_provider.market.spec import OrderSpec, Service

SHORT_LEASE_SECONDS: Final = 40
"""The notebook's lease: long enough to be seen Running, short enough to end in the demo."""


@dataclass(frozen=True)
class DemoOrder:
    key: str
    what: str
    yaml: str
    image: str
    port: int
    external_port: int
    servable: bool = True

    def order(self) -> TenantOrder:
        return parse_order_yaml(self.yaml, f"the demo's {self.key} order")

    @property
    def model(self) -> str:
        service = self.order().spec.services[0]
        return ", ".join(m.model for m in service.gpu.models)

    @property
    def gpus(self) -> int:
        return sum(s.gpu.units * s.replicas for s in self.order().spec.services)


def _yaml(
    name: str, service: str, model: str, gpus: int, cpu: int, memory: str, **more: str
) -> str:
    return f"""
name: {name}
duration: {more.get("duration", "1h")}
maxUsdPerHour: "{more["max_usd"]}"
tiers: any
placement:
  region: us-west
services:
  - name: {service}
    replicas: 1
    cpu: {cpu}
    memory: {memory}
    storage:
      - name: default
        size: {more.get("disk", "100Gi")}
    gpu:
      units: {gpus}
      models: [{model}]
    endpoints:
      - kind: {more.get("endpoint", "shared-http")}
"""


ORDERS: Final = (
    DemoOrder(
        "train",
        "2 x H100 for an hour",
        _yaml("train", "trainer", "h100", 2, 16, "64Gi", max_usd="8.00"),
        image="nvcr.io/nvidia/pytorch:24.10-py3",
        port=8000,
        external_port=80,
    ),
    DemoOrder(
        "finetune",
        "1 x A100 80GB for an hour (the tenant closes it early)",
        _yaml("finetune", "tuner", "a100-80g", 1, 8, "32Gi", max_usd="3.00"),
        image="vllm/vllm-openai:v0.6.4",
        port=8000,
        external_port=80,
    ),
    DemoOrder(
        "notebook",
        f"1 x RTX 4090 for {SHORT_LEASE_SECONDS} s (runs out of paid blocks)",
        _yaml(
            "notebook",
            "jupyter",
            "rtx4090",
            1,
            4,
            "16Gi",
            max_usd="1.00",
            duration=f"{SHORT_LEASE_SECONDS}s",
            disk="20Gi",
            endpoint="random-port",
        ),
        image="quay.io/jupyter/pytorch-notebook:cuda12-pytorch-2.4.1",
        port=8888,
        external_port=8888,
    ),
    DemoOrder(
        "render",
        "1 x L40S (no such GPU here: no bid)",
        _yaml("render", "blender", "l40s", 1, 8, "32Gi", max_usd="2.00"),
        image="linuxserver/blender:4.2.3",
        port=3000,
        external_port=80,
        servable=False,
    ),
)


def order_named(key: str) -> DemoOrder:
    return next(order for order in ORDERS if order.key == key)


def _sdk_service(service: Service, demo: DemoOrder) -> dict[str, Any]:
    """One service as Spheron's SDK sends it (see "Manifest" in shared/spheron/README.md)."""
    storage = []
    for volume in service.storage:
        attributes = []
        if volume.storage_class:
            attributes.append({"key": "class", "value": volume.storage_class})
        if volume.persistent:
            attributes.append({"key": "persistent", "value": "true"})
        storage.append(
            {"name": volume.name, "size": {"val": str(volume.size_bytes)}, "attributes": attributes}
        )
    return {
        "name": service.name,
        "image": demo.image,
        "env": [f"DEMO_ORDER={demo.key}"],
        "resources": {
            "id": service.resource_id,
            "cpu": {"units": {"val": str(service.cpu_millicores)}},
            "memory": {"size": {"val": str(service.memory_bytes)}},
            "storage": storage,
            "gpu": {
                "units": {"val": str(service.gpu.units)},
                "attributes": [
                    {"key": f"vendor/{m.vendor}/model/{m.model}", "value": "true"}
                    for m in service.gpu.models
                ],
            },
            "endpoints": [
                {"kind": int(e.kind), "sequence_number": e.sequence_number}
                for e in service.endpoints
            ],
        },
        "count": service.replicas,
        "expose": [
            {
                "port": demo.port,
                "externalPort": demo.external_port,
                "proto": "TCP",
                "service": "",
                "global": True,
                "hosts": None,
                "ip": "",
                "endpointSequenceNumber": 0,
            }
        ],
        "params": None,
    }


def sdk_manifest(demo: DemoOrder, spec: OrderSpec | None = None) -> list[dict[str, Any]]:
    """The JSON array of groups the SDK PUTs for this order."""
    spec = spec or demo.order().spec
    return [{"name": spec.name, "services": [_sdk_service(s, demo) for s in spec.services]}]
