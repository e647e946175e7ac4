"""The node agent's facts about a Node's GPUs: the `gpuprovider.dev/gpu-facts` annotation.

The node agent (`gpu-provider node-agent`, a DaemonSet) reads NVML and writes this annotation
on its own Node; the inventory reads it next to the device plugin's resources and the GPU
Feature Discovery labels. It holds facts and health only, never utilisation or temperature
(those are metrics), so it changes, and is written, only when a GPU's facts or health change.

Compact on purpose: a Node's annotations count against the 256 KiB object limit, and every
watcher of Nodes receives them. Keys are short camelCase; unset fields are left out.
"""

from __future__ import annotations

import json
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

__all__ = [
    "FACTS_VERSION",
    "GPU_FACTS_ANNOTATION",
    "GpuFacts",
    "NodeFactsError",
    "NodeGpuFacts",
    "parse_node_facts",
]

GPU_FACTS_ANNOTATION: Final = "gpuprovider.dev/gpu-facts"
FACTS_VERSION: Final = 1


class NodeFactsError(ValueError):
    """The annotation is not valid facts; the message says which field."""


class _Facts(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class GpuFacts(_Facts):
    """One physical GPU as NVML reports it."""

    index: int = Field(ge=0)
    uuid: str = Field(min_length=1, max_length=96)
    name: str = Field(min_length=1, max_length=96, description="NVML product name")
    pci_device_id: str = Field(
        pattern=r"^[0-9a-f]{4}$", description="PCI device id, 4 lower-case hex digits"
    )
    memory_mib: int = Field(ge=0, description="total framebuffer memory (VRAM) in MiB")
    mig_enabled: bool = False
    healthy: bool = True
    problems: tuple[str, ...] = Field(
        default=(),
        max_length=16,
        description="why it is unhealthy: 'xid 79', 'uncorrectable ECC errors: 2', "
        "'pending row remap', 'retired pages pending'",
    )


class NodeGpuFacts(_Facts):
    """Everything the agent knows about one Node's GPUs."""

    v: int = FACTS_VERSION
    driver_version: str | None = Field(default=None, max_length=32)
    cuda_version: str | None = Field(default=None, max_length=16, description="e.g. '12.4'")
    gpus: tuple[GpuFacts, ...] = Field(default=(), max_length=64)

    def to_annotation(self) -> str:
        """The annotation value: compact JSON with stable key order, unset fields left out."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        for gpu in data["gpus"]:
            if not gpu.get("problems"):
                gpu.pop("problems", None)
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    def by_uuid(self) -> dict[str, GpuFacts]:
        return {gpu.uuid: gpu for gpu in self.gpus}


def parse_node_facts(value: str) -> NodeGpuFacts:
    """Parse the annotation value; `NodeFactsError` naming what is wrong."""
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise NodeFactsError(f"{GPU_FACTS_ANNOTATION} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise NodeFactsError(f"{GPU_FACTS_ANNOTATION} must be a JSON object")
    if data.get("v", FACTS_VERSION) != FACTS_VERSION:
        raise NodeFactsError(
            f"{GPU_FACTS_ANNOTATION} has version {data.get('v')!r}; this operator reads "
            f"version {FACTS_VERSION}: upgrade the operator and the node agent together"
        )
    try:
        return NodeGpuFacts.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise NodeFactsError(f"{GPU_FACTS_ANNOTATION}: {where}: {first['msg']}") from None
