"""Reading GPUs through NVML: identity, readings, what is absent, and when NVML is missing.

These run the agent's real NVML code against a scripted `pynvml` (no GPU here); the last
test runs the real `pynvml` on this GPU-less machine and expects the clear refusal.
"""

from __future__ import annotations

import ctypes.util
import threading
import time

import pynvml
import pytest

from gpu_provider.agent.nvml import Nvml, NvmlReadError, NvmlUnavailable, load_pynvml
from gpu_provider.agent.readings import HealthEvent
from tests.agent.fake_nvml import MIB, FakeNvml, a100_mig, h100, rtx4090_bare


def started(fake: FakeNvml) -> Nvml:
    nvml = Nvml(fake)
    nvml.start()
    return nvml


def test_an_h100_is_read_in_full() -> None:
    gpu = h100()
    gpu.util_gpu, gpu.power_mw, gpu.temperature_c = 87, 612_500, 71
    reading = started(FakeNvml([gpu])).read()
    assert reading.driver_version == "550.54.15"
    assert reading.cuda_driver_version == 12040
    (read,) = reading.gpus
    assert read.uuid == gpu.uuid
    assert read.name == "NVIDIA H100 80GB HBM3"
    assert read.pci_device_id == 0x2330
    assert read.pci_bus_id == "00000000:18:00.0"
    assert read.memory_total_bytes == 81559 * MIB
    assert read.memory_used_bytes == 512 * MIB
    assert read.mig_enabled is False
    assert (read.utilization_gpu_pct, read.power_mw, read.temperature_c) == (87, 612_500, 71)
    assert read.ecc_uncorrected_volatile == 0
    assert read.row_remap_pending is False
    assert read.lost is False
    assert read.unreadable == ()


def test_an_a100_in_mig_mode_reports_mig_and_no_whole_gpu_utilisation() -> None:
    (read,) = started(FakeNvml([a100_mig()])).read().gpus
    assert read.mig_enabled is True
    assert read.pci_device_id == 0x20B2
    assert read.utilization_gpu_pct is None
    assert read.temperature_c is not None


def test_a_card_that_supports_nothing_optional_is_still_read() -> None:
    (read,) = started(FakeNvml([rtx4090_bare()])).read().gpus
    assert read.uuid is not None
    assert read.name == "NVIDIA GeForce RTX 4090"
    assert read.memory_total_bytes == 24564 * MIB
    absent = [
        read.mig_enabled,
        read.utilization_gpu_pct,
        read.temperature_c,
        read.power_mw,
        read.clocks_event_reasons,
        read.ecc_uncorrected_volatile,
        read.ecc_uncorrected_aggregate,
        read.retired_pages_pending,
        read.row_remap_pending,
        read.row_remap_failed,
        read.minor_number,
    ]
    assert absent == [None] * len(absent)
    assert read.unreadable == ()


def test_an_old_driver_without_clock_event_reasons_falls_back_to_throttle_reasons() -> None:
    gpu = h100()
    gpu.errors["nvmlDeviceGetCurrentClocksEventReasons"] = pynvml.NVML_ERROR_FUNCTION_NOT_FOUND
    gpu.clocks_event_reasons = pynvml.nvmlClocksThrottleReasonSwPowerCap
    (read,) = started(FakeNvml([gpu])).read().gpus
    assert read.clocks_event_reasons == pynvml.nvmlClocksThrottleReasonSwPowerCap


def test_a_lost_gpu_is_reported_lost_and_the_others_still_read() -> None:
    lost = h100(0)
    lost.lost = True
    reading = started(FakeNvml([lost, h100(1)])).read()
    assert reading.gpus[0].lost is True
    assert reading.gpus[0].uuid is None
    assert reading.gpus[1].lost is False
    assert reading.gpus[1].uuid == h100(1).uuid


def test_an_identity_that_cannot_be_read_is_named() -> None:
    gpu = h100()
    gpu.errors["nvmlDeviceGetUUID"] = pynvml.NVML_ERROR_UNKNOWN
    (read,) = started(FakeNvml([gpu])).read().gpus
    assert read.uuid is None
    assert read.unreadable == ("uuid unreadable: Unknown Error",)


def test_system_versions_not_supported_are_absent() -> None:
    fake = FakeNvml([h100()])
    fake.errors["nvmlSystemGetCudaDriverVersion_v2"] = pynvml.NVML_ERROR_NOT_SUPPORTED
    reading = started(fake).read()
    assert reading.cuda_driver_version is None
    assert reading.driver_version == "550.54.15"


def test_losing_the_driver_mid_run_is_a_read_error_not_a_crash() -> None:
    fake = FakeNvml([h100()])
    nvml = started(fake)
    fake.errors["nvmlDeviceGetCount"] = pynvml.NVML_ERROR_DRIVER_NOT_LOADED
    with pytest.raises(NvmlReadError, match="Driver Not Loaded"):
        nvml.read()


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "libnvidia-ml.so.1 was not found"),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "kernel driver is not loaded"),
        (pynvml.NVML_ERROR_NO_PERMISSION, "/dev/nvidia"),
        (pynvml.NVML_ERROR_UNKNOWN, "dmesg"),
    ],
)
def test_nvml_that_cannot_start_says_why_and_what_to_do(code: int, advice: str) -> None:
    with pytest.raises(NvmlUnavailable, match=advice):
        Nvml(FakeNvml([], init_error=code)).start()


@pytest.mark.skipif(
    ctypes.util.find_library("nvidia-ml") is not None,
    reason="this machine has NVML; the refusal cannot be shown here",
)
def test_the_real_pynvml_on_a_machine_without_the_driver_is_refused_clearly() -> None:
    with pytest.raises(NvmlUnavailable, match=r"Shared Library Not Found.*libnvidia-ml.so.1"):
        Nvml(load_pynvml()).start()


def collect_events(fake: FakeNvml) -> tuple[list[HealthEvent], threading.Event, Nvml]:
    events: list[HealthEvent] = []
    stop = threading.Event()
    nvml = started(fake)
    thread = nvml.watch_xids(events.append, stop)
    assert thread is not None
    return events, stop, nvml


def wait_for(events: list[HealthEvent], count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while len(events) < count:
        assert time.monotonic() < deadline, f"only {events} of {count} events arrived"
        time.sleep(0.01)


def test_an_xid_event_names_its_gpu() -> None:
    gpus = [h100(0), h100(1)]
    fake = FakeNvml(gpus)
    events, stop, _ = collect_events(fake)
    fake.emit_xid(gpus[1], 79)
    wait_for(events, 1)
    stop.set()
    assert events == [HealthEvent(uuid=gpus[1].uuid, xid=79)]


def test_a_failing_event_wait_suspects_every_gpu_then_clears() -> None:
    gpus = [h100(0)]
    fake = FakeNvml(gpus)
    events, stop, _ = collect_events(fake)
    fake.fail_event_wait(pynvml.NVML_ERROR_UNKNOWN)
    wait_for(events, 1)
    assert events[0] == HealthEvent(uuid=None, error="Unknown Error")
    stop.set()


def test_gpus_that_cannot_report_events_start_no_thread() -> None:
    gpu = rtx4090_bare()
    assert started(FakeNvml([gpu])).watch_xids(lambda _: None, threading.Event()) is None
