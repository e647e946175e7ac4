"""The marketplace GPU catalog, in our own table, and the lookups inventory needs.

A GPU found on a node (by its GPU Feature Discovery product label, or its PCI device id) is
mapped to the catalog model the marketplace knows it by (short name and resource id). A card
the table does not know maps to None: the caller reports it as unknown. We never guess from a
similar name, because advertising the wrong model is worse than not selling the card.

The table lives in `data/gpu-catalog.json` (package data) and is checked in tests against
Spheron's published catalog and a public PCI id list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

NVIDIA_PCI_VENDOR: Final = "10de"
GFD_SHARED_SUFFIX: Final = "-shared"
"""GFD appends this to the product label when time-slicing or MPS shares the GPU."""
GFD_MIG_MARKER: Final = "-mig-"
"""GFD product labels of MIG slices contain this; a slice is not the whole GPU it names."""

# A reported memory size matches a nominal VRAM size when it is 85 %..105 % of it: drivers
# report less than the marketing size (ECC, reserved memory; an L4 shows 23034 of 24576 MiB).
_MEMORY_LOW_PERCENT: Final = 85
_MEMORY_HIGH_PERCENT: Final = 105

PciId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{4}$")]


def _fits(vram_gib: int, memory_mib: int) -> bool:
    """Whether a reported memory size is plausibly a card with `vram_gib` of VRAM."""
    low, high = _MEMORY_LOW_PERCENT * vram_gib * 1024, _MEMORY_HIGH_PERCENT * vram_gib * 1024
    return low <= 100 * memory_mib <= high


class GpuTier(StrEnum):
    """The marketplace's performance tiers (they set reward multipliers, not our prices)."""

    ENTRY_1 = "Entry 1"
    ENTRY_2 = "Entry 2"
    LOW_1 = "Low 1"
    LOW_2 = "Low 2"
    MEDIUM_1 = "Medium 1"
    MEDIUM_2 = "Medium 2"
    HIGH_1 = "High 1"
    HIGH_2 = "High 2"
    ULTRA_HIGH_1 = "Ultra High 1"
    ULTRA_HIGH_2 = "Ultra High 2"


class GpuSegment(StrEnum):
    CONSUMER = "consumer"
    WORKSTATION = "workstation"
    DATACENTER = "datacenter"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PciDevice(_Model):
    """One PCI device id of a model; variants of a model differ in interface and VRAM.

    `shared_id` marks an id that pci.ids gives to cards of several models (`1e78` is the
    Quadro RTX 6000 and 8000): only a reported memory size that fits `vram_gib` names this
    model then. An id may also be listed once per VRAM size of one model (`2d04`).
    """

    id: PciId
    interface: str
    vram_gib: int = Field(gt=0)
    shared_id: bool = False

    def matches_memory(self, memory_mib: int) -> bool:
        return _fits(self.vram_gib, memory_mib)


class GpuModel(_Model):
    """A sellable GPU model. `vram_gib` is the smallest variant: what an order can count on."""

    short_name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    resource_id: int = Field(gt=0)
    display_name: str
    vendor: str
    tier: GpuTier
    segment: GpuSegment
    vram_gib: int = Field(gt=0)
    vram_variants_gib: tuple[int, ...] = ()
    gfd_products: tuple[str, ...] = ()
    pci_devices: tuple[PciDevice, ...] = ()

    @model_validator(mode="after")
    def _consistent_vram(self) -> GpuModel:
        variants = self.vram_variants_gib or (self.vram_gib,)
        if min(variants) != self.vram_gib:
            raise ValueError(f"{self.short_name}: vram_gib must be the smallest variant")
        for device in self.pci_devices:
            if device.vram_gib not in variants:
                raise ValueError(f"{self.short_name}: PCI {device.id} has an unlisted VRAM size")
        return self

    @property
    def vram_sizes_gib(self) -> tuple[int, ...]:
        """Every VRAM size this model comes in."""
        return self.vram_variants_gib or (self.vram_gib,)

    def matches_memory(self, memory_mib: int) -> bool:
        """Whether a reported memory size is plausibly one of this model's VRAM sizes."""
        return any(_fits(gib, memory_mib) for gib in self.vram_sizes_gib)


class _CatalogFile(_Model):
    about: str
    version: int = Field(ge=1, le=1)
    models: tuple[GpuModel, ...]


def _normalise_product(label: str) -> str:
    return label.strip().casefold()


def _normalise_pci(device_id: str | int) -> str | None:
    if isinstance(device_id, int):
        return f"{device_id:04x}" if 0 <= device_id <= 0xFFFF else None
    text = device_id.strip().casefold().removeprefix("0x")
    if len(text) == 4 and all(char in "0123456789abcdef" for char in text):
        return text
    return None


class GpuCatalog:
    """The table plus its indexes. Every lookup returns None for a card it does not know."""

    def __init__(self, models: Iterable[GpuModel]) -> None:
        self._models = tuple(models)
        self._by_short: dict[str, GpuModel] = {}
        self._by_id: dict[int, GpuModel] = {}
        self._by_product: dict[str, list[GpuModel]] = {}
        self._by_pci: dict[str, list[tuple[GpuModel, PciDevice]]] = {}
        for model in self._models:
            self._add(model)

    def _add(self, model: GpuModel) -> None:
        if model.short_name in self._by_short:
            raise ValueError(f"short name {model.short_name!r} is listed twice")
        if model.resource_id in self._by_id:
            raise ValueError(f"resource id {model.resource_id} is listed twice")
        self._by_short[model.short_name] = model
        self._by_id[model.resource_id] = model
        for label in model.gfd_products:
            candidates = self._by_product.setdefault(_normalise_product(label), [])
            if model in candidates:
                raise ValueError(f"{model.short_name}: GFD product {label!r} is listed twice")
            candidates.append(model)
        if model.pci_devices and model.vendor != "nvidia":
            raise ValueError(f"{model.short_name}: only NVIDIA PCI ids are supported")
        for device in model.pci_devices:
            entries = self._by_pci.setdefault(device.id, [])
            if any(listed.vram_gib == device.vram_gib for _, listed in entries):
                raise ValueError(f"PCI id {device.id} is listed twice with {device.vram_gib} GiB")
            entries.append((model, device))

    def __iter__(self) -> Iterator[GpuModel]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)

    @property
    def models(self) -> tuple[GpuModel, ...]:
        return self._models

    def by_short_name(self, short_name: str) -> GpuModel | None:
        """Case-insensitive, because tenants' specs write `rtx3090Ti` for `rtx3090ti`."""
        return self._by_short.get(short_name.strip().casefold())

    def by_resource_id(self, resource_id: int) -> GpuModel | None:
        return self._by_id.get(resource_id)

    def by_gfd_product(self, product: str, memory_mib: int | None = None) -> GpuModel | None:
        """Map a `nvidia.com/gpu.product` label (and optionally `nvidia.com/gpu.memory`).

        A `-SHARED` suffix (time-slicing) is ignored; a MIG slice label maps to None. When the
        memory label is given it must fit the model's VRAM: it picks between models sharing a
        product label, and a contradiction (a "40GB" label on an 80 GiB card) returns None.
        """
        label = _normalise_product(product)
        if GFD_MIG_MARKER in label:
            return None
        label = label.removesuffix(GFD_SHARED_SUFFIX)
        candidates = self._by_product.get(label, [])
        if memory_mib is not None:
            candidates = [model for model in candidates if model.matches_memory(memory_mib)]
        return candidates[0] if len(candidates) == 1 else None

    def by_pci_id(
        self,
        device_id: str | int,
        vendor_id: str = NVIDIA_PCI_VENDOR,
        memory_mib: int | None = None,
    ) -> GpuModel | None:
        """Map a PCI device id (`"2330"`, `"0x2330"` or `0x2330`) under a vendor id.

        `memory_mib` (NVML's total memory) picks between cards sharing an id and must fit;
        without it an id that several models share maps to None.
        """
        device = self.pci_device(device_id, vendor_id, memory_mib)
        return None if device is None else device[0]

    def pci_device(
        self,
        device_id: str | int,
        vendor_id: str = NVIDIA_PCI_VENDOR,
        memory_mib: int | None = None,
    ) -> tuple[GpuModel, PciDevice] | None:
        """The model and the exact variant (interface, VRAM) a PCI device id names."""
        if _normalise_pci(vendor_id) != NVIDIA_PCI_VENDOR:
            return None
        key = _normalise_pci(device_id)
        entries = [] if key is None else self._by_pci.get(key, [])
        if memory_mib is None:
            entries = [entry for entry in entries if not entry[1].shared_id]
        else:
            entries = [entry for entry in entries if entry[1].matches_memory(memory_mib)]
        if len({model.short_name for model, _ in entries}) != 1:
            return None
        return entries[0]


def parse_catalog(text: str) -> GpuCatalog:
    """Build a catalog from our JSON format (validated; duplicates are errors)."""
    return GpuCatalog(_CatalogFile.model_validate(json.loads(text)).models)


@cache
def default_catalog() -> GpuCatalog:
    """The catalog shipped with the package (read once)."""
    data = resources.files("gpu_provider.market").joinpath("data").joinpath("gpu-catalog.json")
    return parse_catalog(data.read_text(encoding="utf-8"))
