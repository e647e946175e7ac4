"""The catalog's PCI ids against pci.ids (`../shared/pci/nvidia.ids`), and lookup by memory.

A PCI id that names the wrong card makes the operator advertise a GPU the provider does not
have; a missing one leaves a sellable card unknown. Both are checked here against the public
PCI id list, by the product name it gives each id.
"""

from __future__ import annotations

import re

import pytest

from gpu_provider.market import GpuModel, PciDevice, default_catalog
from tests.market.market_reference import nvidia_pci_names

CATALOG = default_catalog()
GIB = 1024

# Words a pci.ids name may add to the model's name for the same card: the form factor, a
# revision, NVIDIA's Lite Hash Rate re-issues, and a memory size (checked separately).
_QUALIFIER = re.compile(r"^(pcie|sxm[2-5]|rev\.|a|2|lite|hash|rate|\d+gb)$")
_MEMORY = re.compile(r"^(\d+)gb$")
_MOBILE_WORDS = frozenset({"mobile", "max-q", "laptop", "refresh"})

PCI_EXCLUDED: dict[str, str] = {
    "2336": "pci.ids names it only 'H100' (no memory size or form factor): not guessed",
}
"""pci.ids entries that name a carried model, not mapped to it, with the reason. Entries
whose memory size is not one of the model's (a 10 GB GTX 1080 Ti, a 94 GB H100) are not the
marketplace's model and are left out by the name check itself."""


def _bracketed(name: str) -> str:
    match = re.search(r"\[(.+)\]\s*$", name)
    return match[1] if match else name


def _chip(name: str) -> str:
    return name.split("[", 1)[0].strip()


def _words(text: str) -> list[str]:
    return [word for word in re.split(r"\s+", text.casefold()) if word]


def _alternatives(product: str) -> list[str]:
    """`Quadro RTX 6000/8000` -> `Quadro RTX 6000`, `Quadro RTX 8000` (one id, several cards)."""
    head, _, last = product.rpartition(" ")
    if "/" not in last or " / " in product:
        return [product]
    return [f"{head} {option}".strip() for option in last.split("/")]


def _is_mobile(name: str) -> bool:
    chip = _chip(name).split(" ")[0]
    return chip.endswith("M") or bool(_MOBILE_WORDS & set(_words(_bracketed(name))))


def _model_words(model: GpuModel) -> list[str]:
    return [w for w in _words(model.display_name) if w != "nvidia" and not _MEMORY.match(w)]


def _names_model(product: str, model: GpuModel) -> bool:
    """Whether a pci.ids product name is this model (maybe plus form factor or memory)."""
    wanted = _model_words(model)
    words = _words(product)
    sizes = [int(size[1]) for word in words if (size := _MEMORY.match(word))]
    return (
        set(wanted) <= set(words)
        and all(w in wanted or _QUALIFIER.match(w) for w in words)
        and all(size in model.vram_sizes_gib for size in sizes)
    )


def _problems(model: GpuModel, device: PciDevice, name: str | None) -> list[str]:
    where = f"{model.short_name} {device.id}"
    if name is None:
        return [f"{where}: not an NVIDIA device in pci.ids"]
    products = _alternatives(_bracketed(name))
    problems = []
    if _is_mobile(name):
        problems.append(f"{where}: {name!r} is a mobile part")
    matching = [product for product in products if _names_model(product, model)]
    if not matching:
        problems.append(f"{where}: pci.ids names it {name!r}, not {model.display_name!r}")
    if len(products) > 1 and not device.shared_id:
        problems.append(f"{where}: {name!r} covers several models; set shared_id")
    for product in matching:
        for word in _words(product):
            size = _MEMORY.match(word)
            if size and int(size[1]) != device.vram_gib:
                problems.append(f"{where}: {name!r} is {size[1]} GB, not {device.vram_gib}")
            if word.startswith(("pcie", "sxm")) and word != device.interface.casefold():
                problems.append(f"{where}: {name!r} is {word}, not {device.interface}")
    return problems


def test_every_catalog_pci_id_is_the_card_pci_ids_names() -> None:
    names = nvidia_pci_names()
    problems = [
        problem
        for model in CATALOG
        for device in model.pci_devices
        for problem in _problems(model, device, names.get(device.id))
    ]
    assert problems == []


def test_every_desktop_and_datacenter_id_of_a_carried_model_is_mapped() -> None:
    ours = {device.id for model in CATALOG for device in model.pci_devices}
    missing = sorted(
        f"{device_id} {name} ({model.short_name})"
        for device_id, name in nvidia_pci_names().items()
        if not _is_mobile(name) and device_id not in ours and device_id not in PCI_EXCLUDED
        for model in CATALOG
        if any(_names_model(product, model) for product in _alternatives(_bracketed(name)))
    )
    assert missing == []
    assert ours.isdisjoint(PCI_EXCLUDED)


@pytest.mark.parametrize(
    ("device_id", "memory_mib", "short_name"),
    [
        ("1e78", 48 * GIB, "rtx8000"),  # Quadro RTX 6000/8000: memory tells them apart
        ("1e78", 24 * GIB, None),  # the Quadro RTX 6000 is not in the marketplace catalog
        ("1e78", None, None),  # ambiguous without the memory size: not guessed
        ("1e30", 46080, "rtx8000"),  # drivers report a little less than 48 GiB
        ("2d04", 16 * GIB, "rtx5060ti"),
        ("2d04", 8 * GIB, "rtx5060ti"),
        ("2d04", None, "rtx5060ti"),  # one model whatever the memory
        ("2330", 81559, "h100"),
        ("2330", 40 * GIB, None),  # an H100 id reporting 40 GiB is not an H100 80GB
    ],
)
def test_a_pci_id_shared_by_several_cards_is_resolved_by_memory(
    device_id: str, memory_mib: int | None, short_name: str | None
) -> None:
    model = CATALOG.by_pci_id(device_id, memory_mib=memory_mib)
    assert (model.short_name if model else None) == short_name


@pytest.mark.parametrize("device_id", ["147f", "1df0", "1f95"])
def test_ids_that_are_not_the_catalogs_cards_are_not_mapped(device_id: str) -> None:
    assert CATALOG.by_pci_id(device_id) is None
