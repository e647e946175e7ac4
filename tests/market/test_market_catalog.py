"""The GPU catalog: lookups a node's labels and PCI ids go through, and the table's accuracy."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from gpu_provider.market import GpuCatalog, GpuModel, GpuSegment, default_catalog, parse_catalog
from tests.market.market_reference import load_reference

CATALOG = default_catalog()


@pytest.mark.parametrize(
    ("label", "short_name"),
    [
        ("NVIDIA-H100-80GB-HBM3", "h100"),
        ("NVIDIA-H100-PCIe", "h100"),
        ("NVIDIA-A100-SXM4-80GB", "a100-80g"),
        ("NVIDIA-A100-80GB-PCIe", "a100-80g"),
        ("NVIDIA-A100-SXM4-40GB", "a100-sxm-40g"),
        ("NVIDIA-A100-PCIE-40GB", "a100-pcie-40g"),
        ("NVIDIA-GeForce-RTX-4090", "rtx4090"),
        ("NVIDIA-GeForce-RTX-3090", "rtx3090"),
        ("GeForce-RTX-2080-Ti", "rtx2080ti"),
        ("Tesla-T4", "t4"),
        ("Tesla-V100-SXM2-32GB", "v100"),
        ("Tesla-V100S-PCIE-32GB", "v100s"),
        ("NVIDIA-L4", "l4"),
        ("NVIDIA-L40", "l40"),
        ("NVIDIA-L40S", "l40s"),
        ("NVIDIA-A10", "a10"),
        ("NVIDIA-A10G", "a10g"),
        ("NVIDIA-A40", "a40"),
        ("NVIDIA-RTX-A6000", "rtxa6000"),
        ("NVIDIA-RTX-6000-Ada-Generation", "rtx6000-ada"),
        ("Quadro-RTX-8000", "rtx8000"),
    ],
)
def test_gfd_product_labels_map_to_the_marketplace_model(label: str, short_name: str) -> None:
    model = CATALOG.by_gfd_product(label)
    assert model is not None
    assert model.short_name == short_name


@pytest.mark.parametrize(
    "label",
    [
        "NVIDIA-H200",  # a real card the marketplace catalog has no model for
        "NVIDIA-H100-NVL",  # 94 GB: not the catalog's 80 GB H100, so not guessed to be one
        "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb",  # a MIG slice is not a whole A100
        "NVIDIA-GeForce-RTX-4090-Laptop-GPU",
        "H100",
        "",
    ],
)
def test_unknown_or_partial_gpus_are_not_guessed(label: str) -> None:
    assert CATALOG.by_gfd_product(label) is None


def test_shared_suffix_and_case_do_not_matter() -> None:
    assert CATALOG.by_gfd_product("NVIDIA-L40S-SHARED") == CATALOG.by_short_name("l40s")
    assert CATALOG.by_gfd_product("nvidia-h100-pcie") == CATALOG.by_short_name("h100")


@pytest.mark.parametrize(
    ("label", "memory_mib", "short_name"),
    [
        ("NVIDIA-A100-SXM4-40GB", 40960, "a100-sxm-40g"),
        ("NVIDIA-A100-SXM4-80GB", 81920, "a100-80g"),
        ("NVIDIA-H100-80GB-HBM3", 81559, "h100"),
        ("NVIDIA-L4", 23034, "l4"),  # drivers report less than the nominal 24 GiB
        ("Tesla-V100-SXM2-32GB", 32510, "v100"),
        ("NVIDIA-A100-SXM4-40GB", 81920, None),  # label and memory contradict: report it
        ("NVIDIA-GeForce-RTX-4090", 8192, None),
    ],
)
def test_memory_label_confirms_the_vram_variant(
    label: str, memory_mib: int, short_name: str | None
) -> None:
    model = CATALOG.by_gfd_product(label, memory_mib)
    assert (model.short_name if model else None) == short_name


def _model(short_name: str, resource_id: int, vram: int, **extra: Any) -> GpuModel:
    return GpuModel.model_validate(
        {
            "short_name": short_name,
            "resource_id": resource_id,
            "display_name": short_name,
            "vendor": "nvidia",
            "tier": "High 2",
            "segment": "datacenter",
            "vram_gib": vram,
            **extra,
        }
    )


def test_memory_label_picks_between_models_sharing_a_product_label() -> None:
    catalog = GpuCatalog(
        [
            _model("x-40g", 1, 40, gfd_products=["NVIDIA-X"]),
            _model("x-80g", 2, 80, gfd_products=["NVIDIA-X"]),
        ]
    )
    assert catalog.by_gfd_product("NVIDIA-X") is None  # ambiguous without the memory label
    assert catalog.by_gfd_product("NVIDIA-X", 40960) == catalog.by_short_name("x-40g")
    assert catalog.by_gfd_product("NVIDIA-X", 81920) == catalog.by_short_name("x-80g")
    assert catalog.by_gfd_product("NVIDIA-X", 16384) is None


@pytest.mark.parametrize(
    ("device_id", "short_name", "interface", "vram_gib"),
    [
        ("2330", "h100", "SXM5", 80),
        ("0x2331", "h100", "PCIe", 80),
        (0x20B2, "a100-80g", "SXM4", 80),
        ("20B0", "a100-sxm-40g", "SXM4", 40),
        ("20b1", "a100-pcie-40g", "PCIe", 40),
        ("1db5", "v100", "SXM2", 32),
        ("1eb8", "t4", "PCIe", 16),
        ("27b8", "l4", "PCIe", 24),
        ("2684", "rtx4090", "PCIe", 24),
    ],
)
def test_pci_ids_map_to_model_and_variant(
    device_id: str | int, short_name: str, interface: str, vram_gib: int
) -> None:
    found = CATALOG.pci_device(device_id)
    assert found is not None
    model, device = found
    assert (model.short_name, device.interface, device.vram_gib) == (
        short_name,
        interface,
        vram_gib,
    )
    assert CATALOG.by_pci_id(device_id) == model


@pytest.mark.parametrize(
    ("device_id", "vendor"),
    [
        ("2335", "10de"),
        ("2330", "1002"),
        ("xyz", "10de"),
        ("23300", "10de"),
        (-1, "10de"),
        (0x10000, "10de"),
    ],
)
def test_unknown_pci_ids_are_not_guessed(device_id: str | int, vendor: str) -> None:
    assert CATALOG.by_pci_id(device_id, vendor) is None


def test_short_name_and_resource_id_lookups() -> None:
    h100 = CATALOG.by_resource_id(51)
    assert h100 is not None
    assert h100.short_name == "h100"
    assert CATALOG.by_short_name("H100") is h100
    assert CATALOG.by_short_name("rtx3090Ti") is CATALOG.by_resource_id(35)
    assert CATALOG.by_short_name("a100") is None  # ambiguous: never pick a VRAM variant
    assert CATALOG.by_resource_id(9999) is None


def test_every_datacenter_model_can_be_recognised_on_a_node() -> None:
    datacenter = [model for model in CATALOG if model.segment is GpuSegment.DATACENTER]
    assert {model.short_name for model in datacenter} >= {"h100", "a100-80g", "l40s", "t4", "l4"}
    for model in datacenter:
        assert model.pci_devices, f"{model.short_name} has no PCI id"
        assert model.gfd_products, f"{model.short_name} has no GFD product label"


def test_every_model_has_a_gfd_label() -> None:
    assert [model.short_name for model in CATALOG if not model.gfd_products] == []


def _catalog_json(*models: dict[str, Any]) -> str:
    return json.dumps({"about": "test", "version": 1, "models": list(models)})


def _entry(short_name: str, resource_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "short_name": short_name,
        "resource_id": resource_id,
        "display_name": short_name,
        "vendor": "nvidia",
        "tier": "Low 1",
        "segment": "consumer",
        "vram_gib": 8,
        **extra,
    }


@pytest.mark.parametrize(
    ("models", "error"),
    [
        ((_entry("a", 1), _entry("a", 2)), "short name 'a' is listed twice"),
        ((_entry("a", 1), _entry("b", 1)), "resource id 1 is listed twice"),
        (
            (
                _entry("a", 1, pci_devices=[{"id": "1234", "interface": "PCIe", "vram_gib": 8}]),
                _entry("b", 2, pci_devices=[{"id": "1234", "interface": "PCIe", "vram_gib": 8}]),
            ),
            "PCI id 1234 is listed twice",
        ),
        ((_entry("a", 1, colour="green"),), "Extra inputs are not permitted"),
        ((_entry("a", 1, tier="Mega"),), "tier"),
        ((_entry("a", 1, vram_variants_gib=[16, 24]),), "smallest variant"),
        (
            (_entry("a", 1, pci_devices=[{"id": "1234", "interface": "PCIe", "vram_gib": 12}]),),
            "unlisted VRAM size",
        ),
        (
            (_entry("a", 1, pci_devices=[{"id": "12G4", "interface": "PCIe", "vram_gib": 8}]),),
            "pattern",
        ),
    ],
)
def test_a_broken_catalog_file_is_refused(models: tuple[dict[str, Any], ...], error: str) -> None:
    with pytest.raises((ValueError, ValidationError), match=error):
        parse_catalog(_catalog_json(*models))


# --- against the reference data in ../shared ----------------------------------------------------

NOT_CARRIED: dict[int, str] = {}
"""Reference catalog entries we do not carry, by id, with the reason. Empty: we carry all."""

# Names in the reference PCI list that differ from the marketplace's short names.
PCI_LIST_NAME = {
    "rtx2060super": "rtx2060s",
    "rtx2080super": "rtx2080s",
    "rtx4070super": "rtx4070s",
    "rtx4080super": "rtx4080s",
    "rtxa5000": "a5000",
    "rtx4000-ada": "rtx4000ada",
    "rtx4000-sff-ada": "rtx4000sada",
    "a100-80g": "a100",
    "a100-pcie-40g": "a100",
    "a100-sxm-40g": "a100",
}

PCI_NOT_CARRIED = {
    "f297": "not a device id NVIDIA assigned to the RTX 4090 (that is 2684); not guessed",
    "20b3": "A100 SXM 64GB: the marketplace catalog has no 64 GB A100 model",
    "147f": "not an NVIDIA device in pci.ids",
    "1df0": "pci.ids names it Tesla PG500-216, not a V100",
    "1f95": "the GeForce GTX 1650 Ti Mobile: mobile parts are not mapped",
}
"""Reference PCI ids for models we carry that we do not map, with the reason."""

PCI_VRAM_DIFFERS = {
    "2803": "2803 is the 8 GB RTX 4060 Ti; the 16 GB card is 2805 (the reference lists 16Gi)",
}


def _pci_list_name(model: GpuModel) -> str:
    return PCI_LIST_NAME.get(model.short_name, model.short_name)


def test_carried_models_agree_with_the_marketplace_catalog() -> None:
    reference = {entry["id"]: entry for entry in load_reference("gpu-catalog.json")}
    for model in CATALOG:
        entry = reference.get(model.resource_id)
        assert entry is not None, f"{model.short_name}: id {model.resource_id} is not in it"
        assert (model.short_name, model.tier.value, model.vendor) == (
            entry["shortName"],
            entry["tier"],
            entry["vendor"],
        )


def test_every_marketplace_model_is_carried_or_excluded_with_a_reason() -> None:
    reference_ids = {entry["id"] for entry in load_reference("gpu-catalog.json")}
    carried = {model.resource_id for model in CATALOG}
    assert carried.isdisjoint(NOT_CARRIED)
    assert all(NOT_CARRIED.values())
    assert reference_ids == carried | set(NOT_CARRIED)


def test_carried_pci_ids_agree_with_the_reference_list() -> None:
    devices = load_reference("pci-gpus.json")["10de"]["devices"]
    for model in CATALOG:
        for device in model.pci_devices:
            entry = devices.get(device.id)
            if entry is None or device.shared_id:
                # A real id the reference list lacks (e.g. L4 27b8), or one it maps to a single
                # model although several cards share it (1e30: Quadro RTX 6000 and 8000).
                continue
            assert entry["name"] == _pci_list_name(model), device.id
            assert entry["interface"].casefold() == device.interface.casefold(), device.id
            if device.id not in PCI_VRAM_DIFFERS:
                assert entry["memory_size"] == f"{device.vram_gib}Gi", device.id


def test_reference_pci_ids_of_carried_models_are_mapped_or_excluded() -> None:
    devices = load_reference("pci-gpus.json")["10de"]["devices"]
    names = {_pci_list_name(model) for model in CATALOG}
    ours = {device.id for model in CATALOG for device in model.pci_devices}
    missing = {
        device_id
        for device_id, entry in devices.items()
        if entry["name"] in names and device_id not in ours
    }
    assert missing == set(PCI_NOT_CARRIED)
    assert ours.isdisjoint(PCI_NOT_CARRIED)
