"""Health decisions and the annotation a provider (and the inventory) reads."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from gpu_provider.agent.facts import XidLedger, build_facts, cuda_version, gpu_facts
from gpu_provider.agent.nvml import Nvml
from gpu_provider.agent.readings import GpuReading, HealthEvent, NodeReading
from gpu_provider.api.nodefacts import parse_node_facts
from tests.agent.fake_nvml import FakeGpu, FakeNvml, a100_mig, h100, rtx4090_bare


def read(*gpus: FakeGpu) -> NodeReading:
    nvml = Nvml(FakeNvml(list(gpus)))
    nvml.start()
    return nvml.read()


def test_a_healthy_h100_and_a_mig_a100_make_the_annotation_the_inventory_reads() -> None:
    facts = build_facts(read(h100(0), a100_mig(1)), XidLedger())
    parsed = parse_node_facts(facts.to_annotation())
    assert parsed == facts
    assert parsed.driver_version == "550.54.15"
    assert parsed.cuda_version == "12.4"
    h, a = parsed.gpus
    assert (h.name, h.pci_device_id, h.memory_mib, h.mig_enabled, h.healthy) == (
        "NVIDIA H100 80GB HBM3",
        "2330",
        81559,
        False,
        True,
    )
    assert (a.pci_device_id, a.memory_mib, a.mig_enabled, a.healthy) == ("20b2", 81920, True, True)
    # Compact, and no utilisation in it: a busy GPU must not change the annotation.
    wire = json.loads(facts.to_annotation())
    assert set(wire["gpus"][0]) == {
        "healthy",
        "index",
        "memoryMib",
        "migEnabled",
        "name",
        "pciDeviceId",
        "uuid",
    }


def test_utilisation_temperature_power_and_memory_use_do_not_change_the_annotation() -> None:
    idle = h100()
    busy = h100()
    busy.util_gpu, busy.temperature_c, busy.power_mw, busy.used_mib = 100, 83, 700_000, 80_000
    busy.clocks_event_reasons = 0x4
    ledger = XidLedger()
    assert build_facts(read(idle), ledger).to_annotation() == (
        build_facts(read(busy), ledger).to_annotation()
    )


@pytest.mark.parametrize(
    ("break_it", "problem"),
    [
        (lambda g: setattr(g, "ecc_volatile", 2), "uncorrectable ECC errors: 2"),
        (lambda g: setattr(g, "retired_pages_pending", 1), "retired pages pending"),
        (lambda g: setattr(g, "remapped_rows", (0, 1, 1, 0)), "pending row remap"),
        (lambda g: setattr(g, "remapped_rows", (0, 0, 0, 1)), "row remap failed"),
        (lambda g: setattr(g, "lost", True), "GPU is lost"),
    ],
    ids=["ecc", "retired-pages", "row-remap-pending", "row-remap-failed", "lost"],
)
def test_a_gpu_with_a_hardware_fault_is_unhealthy_and_says_why(
    break_it: Callable[[FakeGpu], None], problem: str
) -> None:
    gpu = h100()
    break_it(gpu)
    (facts,) = build_facts(read(gpu), XidLedger()).gpus
    assert facts.healthy is False
    assert problem in facts.problems


def test_lifetime_uncorrectable_ecc_alone_is_not_a_fault() -> None:
    gpu = h100()
    gpu.ecc_aggregate = 3  # the pages were retired long ago
    (facts,) = build_facts(read(gpu), XidLedger()).gpus
    assert facts.healthy is True


@pytest.mark.parametrize("xid", [48, 63, 64, 74, 79, 92, 94, 95, 119])
def test_a_critical_xid_makes_its_gpu_unhealthy_and_only_that_gpu(xid: int) -> None:
    gpus = (h100(0), h100(1))
    ledger = XidLedger()
    assert ledger.record(HealthEvent(uuid=gpus[1].uuid, xid=xid)) is True
    healthy, broken = build_facts(read(*gpus), ledger).gpus
    assert healthy.healthy is True
    assert broken.healthy is False
    assert broken.problems == (f"xid {xid}",)


@pytest.mark.parametrize("xid", [13, 31, 43, 45, 68, 109])
def test_an_application_xid_leaves_the_gpu_healthy(xid: int) -> None:
    gpu = h100()
    ledger = XidLedger()
    assert ledger.record(HealthEvent(uuid=gpu.uuid, xid=xid)) is False
    (facts,) = build_facts(read(gpu), ledger).gpus
    assert facts.healthy is True
    assert ledger.last_for(gpu.uuid) == xid  # still exported as DCGM_FI_DEV_XID_ERRORS


def test_an_xid_ignored_by_the_provider_leaves_the_gpu_healthy() -> None:
    gpu = h100()
    ledger = XidLedger(ignored=frozenset({13, 31, 43, 45, 68, 109, 92}))
    ledger.record(HealthEvent(uuid=gpu.uuid, xid=92))
    assert build_facts(read(gpu), ledger).gpus[0].healthy is True


def test_an_xid_no_one_can_attribute_marks_every_gpu() -> None:
    ledger = XidLedger()
    ledger.record(HealthEvent(uuid=None, xid=79))
    assert [g.healthy for g in build_facts(read(h100(0), h100(1)), ledger).gpus] == [False, False]


def test_unreadable_events_mark_every_gpu_until_they_work_again() -> None:
    ledger = XidLedger()
    assert ledger.record(HealthEvent(uuid=None, error="Unknown Error")) is True
    (facts,) = build_facts(read(h100()), ledger).gpus
    assert facts.problems == ("XID events unreadable: Unknown Error",)
    assert ledger.record(HealthEvent(uuid=None)) is True
    assert build_facts(read(h100()), ledger).gpus[0].healthy is True


def test_a_card_that_supports_nothing_optional_is_healthy_with_its_identity() -> None:
    (facts,) = build_facts(read(rtx4090_bare()), XidLedger()).gpus
    assert facts.healthy is True
    assert (facts.pci_device_id, facts.memory_mib, facts.mig_enabled) == ("2684", 24564, False)


def test_a_gpu_nvml_cannot_name_is_listed_unhealthy_not_dropped() -> None:
    facts = gpu_facts(
        GpuReading(index=3, unreadable=("uuid unreadable: Unknown Error",)), XidLedger()
    )
    assert facts.uuid == "unknown-gpu-3"
    assert facts.healthy is False
    assert facts.problems == ("uuid unreadable: Unknown Error",)


def test_problems_are_capped_to_what_the_annotation_holds() -> None:
    gpu = h100()
    ledger = XidLedger()
    for xid in range(100, 130):
        ledger.record(HealthEvent(uuid=gpu.uuid, xid=xid))
    (facts,) = build_facts(read(gpu), ledger).gpus
    assert len(facts.problems) == 16


@pytest.mark.parametrize(
    ("encoded", "text"),
    [(12040, "12.4"), (12080, "12.8"), (11070, "11.7"), (0, None), (None, None)],
)
def test_cuda_version_reads_like_nvidia_smi(encoded: int | None, text: str | None) -> None:
    assert cuda_version(encoded) == text
