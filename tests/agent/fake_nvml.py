"""A scripted stand-in for the `pynvml` module, for machines without a GPU.

It implements exactly the functions `gpu_provider.agent.nvml.NvmlBackend` lists, raising the
real `pynvml.NVMLError` subclasses (NotSupported, GPU is lost, Timeout ...) with NVML's return
codes, so the agent's real code path runs against it unchanged. Each GPU is a `FakeGpu` whose
fields a test changes between polls; `emit_xid` delivers an XID critical error event.
"""

from __future__ import annotations

import queue
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml

MIB = 1024 * 1024
XID_CRITICAL = pynvml.nvmlEventTypeXidCriticalError

# The calls that identify a GPU; every other call is a reading that may be unsupported.
READINGS = (
    "nvmlDeviceGetMinorNumber",
    "nvmlDeviceGetMigMode",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetTemperature",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetCurrentClocksEventReasons",
    "nvmlDeviceGetCurrentClocksThrottleReasons",
    "nvmlDeviceGetTotalEccErrors",
    "nvmlDeviceGetRetiredPagesPendingStatus",
    "nvmlDeviceGetRemappedRows",
    "nvmlDeviceGetSupportedEventTypes",
)


@dataclass
class FakeGpu:
    uuid: str
    name: str
    pci_device_id: int
    memory_mib: int
    bus_id: str = "00000000:18:00.0"
    minor: int = 0
    used_mib: int = 0
    mig_mode: int = 0
    util_gpu: int = 0
    util_memory: int = 0
    temperature_c: int = 34
    power_mw: int = 71_000
    clocks_event_reasons: int = pynvml.nvmlClocksEventReasonGpuIdle
    ecc_volatile: int = 0
    ecc_aggregate: int = 0
    retired_pages_pending: int = 0
    remapped_rows: tuple[int, int, int, int] = (0, 0, 0, 0)
    errors: dict[str, int] = field(default_factory=dict)
    """Function name → NVML return code it fails with (e.g. NVML_ERROR_NOT_SUPPORTED)."""
    lost: bool = False

    def unsupported(self, *names: str) -> FakeGpu:
        for name in names or READINGS:
            self.errors[name] = pynvml.NVML_ERROR_NOT_SUPPORTED
        return self


def h100(index: int = 0) -> FakeGpu:
    return FakeGpu(
        uuid=f"GPU-7f3c2a10-4b1e-4d0a-9c41-{0x100 + index:012x}",
        name="NVIDIA H100 80GB HBM3",
        pci_device_id=0x2330,
        memory_mib=81559,
        bus_id=f"00000000:{0x18 + index:02X}:00.0",
        minor=index,
        used_mib=512,
    )


def a100_mig(index: int = 0) -> FakeGpu:
    gpu = FakeGpu(
        uuid=f"GPU-2b9e41c7-8d2f-4a55-b7e0-{0xA100 + index:012x}",
        name="NVIDIA A100-SXM4-80GB",
        pci_device_id=0x20B2,
        memory_mib=81920,
        bus_id=f"00000000:{0x07 + index:02X}:00.0",
        minor=index,
        mig_mode=pynvml.NVML_DEVICE_MIG_ENABLE,
    )
    # With MIG on, whole-GPU utilisation is not reported (NVML answers NotSupported).
    return gpu.unsupported("nvmlDeviceGetUtilizationRates")


def rtx4090_bare(index: int = 0) -> FakeGpu:
    """A consumer card on which every optional reading is NotSupported."""
    return FakeGpu(
        uuid=f"GPU-5d0f8e22-61aa-4f3c-8e19-{0x4090 + index:012x}",
        name="NVIDIA GeForce RTX 4090",
        pci_device_id=0x2684,
        memory_mib=24564,
        minor=index,
    ).unsupported()


class FakeNvml:
    """Module-shaped: `FakeNvml(gpus).nvmlDeviceGetCount()` like `pynvml.nvmlDeviceGetCount()`."""

    NVMLError = pynvml.NVMLError

    def __init__(
        self,
        gpus: list[FakeGpu],
        driver: str = "550.54.15",
        cuda: int = 12040,
        init_error: int | None = None,
    ) -> None:
        self.gpus = gpus
        self.driver = driver
        self.cuda = cuda
        self.init_error = init_error
        self.errors: dict[str, int] = {}
        """System-level function name → NVML return code."""
        self.initialised = False
        self._events: queue.Queue[SimpleNamespace] = queue.Queue()
        self.event_sets_freed = 0

    # -- test controls --------------------------------------------------------------------
    def emit_xid(self, gpu: FakeGpu, xid: int) -> None:
        self._events.put(SimpleNamespace(device=gpu, eventType=XID_CRITICAL, eventData=xid))

    def fail_event_wait(self, code: int) -> None:
        self._events.put(SimpleNamespace(error=code))

    # -- system ---------------------------------------------------------------------------
    def _system(self, name: str) -> None:
        if not self.initialised:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)
        if name in self.errors:
            raise pynvml.NVMLError(self.errors[name])

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self._system("nvmlShutdown")
        self.initialised = False

    def nvmlSystemGetDriverVersion(self) -> str:
        self._system("nvmlSystemGetDriverVersion")
        return self.driver

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        self._system("nvmlSystemGetCudaDriverVersion_v2")
        return self.cuda

    def nvmlDeviceGetCount(self) -> int:
        self._system("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        self._system("nvmlDeviceGetHandleByIndex")
        if index >= len(self.gpus):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return self._gpu(self.gpus[index], "nvmlDeviceGetHandleByIndex")

    # -- per GPU ----------------------------------------------------------------------------
    def _gpu(self, gpu: FakeGpu, name: str) -> FakeGpu:
        self._system(name)
        if gpu.lost and name != "nvmlDeviceGetHandleByIndex":
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        if name in gpu.errors:
            raise pynvml.NVMLError(gpu.errors[name])
        return gpu

    def nvmlDeviceGetUUID(self, handle: FakeGpu) -> str:
        return self._gpu(handle, "nvmlDeviceGetUUID").uuid

    def nvmlDeviceGetName(self, handle: FakeGpu) -> str:
        return self._gpu(handle, "nvmlDeviceGetName").name

    def nvmlDeviceGetMinorNumber(self, handle: FakeGpu) -> int:
        return self._gpu(handle, "nvmlDeviceGetMinorNumber").minor

    def nvmlDeviceGetPciInfo(self, handle: FakeGpu) -> Any:
        gpu = self._gpu(handle, "nvmlDeviceGetPciInfo")
        # As the C struct: device id in the high 16 bits, vendor (NVIDIA) in the low 16.
        return SimpleNamespace(
            pciDeviceId=(gpu.pci_device_id << 16) | 0x10DE, busId=gpu.bus_id.encode()
        )

    def nvmlDeviceGetMemoryInfo(self, handle: FakeGpu) -> Any:
        gpu = self._gpu(handle, "nvmlDeviceGetMemoryInfo")
        total = gpu.memory_mib * MIB
        used = gpu.used_mib * MIB
        return SimpleNamespace(total=total, used=used, free=total - used)

    def nvmlDeviceGetMigMode(self, handle: FakeGpu) -> list[int]:
        gpu = self._gpu(handle, "nvmlDeviceGetMigMode")
        return [gpu.mig_mode, gpu.mig_mode]

    def nvmlDeviceGetUtilizationRates(self, handle: FakeGpu) -> Any:
        gpu = self._gpu(handle, "nvmlDeviceGetUtilizationRates")
        return SimpleNamespace(gpu=gpu.util_gpu, memory=gpu.util_memory)

    def nvmlDeviceGetTemperature(self, handle: FakeGpu, sensor: int) -> int:
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        return self._gpu(handle, "nvmlDeviceGetTemperature").temperature_c

    def nvmlDeviceGetPowerUsage(self, handle: FakeGpu) -> int:
        return self._gpu(handle, "nvmlDeviceGetPowerUsage").power_mw

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: FakeGpu) -> int:
        return self._gpu(handle, "nvmlDeviceGetCurrentClocksEventReasons").clocks_event_reasons

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: FakeGpu) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetCurrentClocksThrottleReasons")
        return int(gpu.clocks_event_reasons)

    def nvmlDeviceGetTotalEccErrors(self, handle: FakeGpu, error: int, counter: int) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetTotalEccErrors")
        assert error == pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
        return gpu.ecc_volatile if counter == pynvml.NVML_VOLATILE_ECC else gpu.ecc_aggregate

    def nvmlDeviceGetRetiredPagesPendingStatus(self, handle: FakeGpu) -> int:
        return self._gpu(handle, "nvmlDeviceGetRetiredPagesPendingStatus").retired_pages_pending

    def nvmlDeviceGetRemappedRows(self, handle: FakeGpu) -> tuple[int, int, int, int]:
        return self._gpu(handle, "nvmlDeviceGetRemappedRows").remapped_rows

    # -- events -------------------------------------------------------------------------------
    def nvmlEventSetCreate(self) -> object:
        self._system("nvmlEventSetCreate")
        return self._events

    def nvmlDeviceGetSupportedEventTypes(self, handle: FakeGpu) -> int:
        self._gpu(handle, "nvmlDeviceGetSupportedEventTypes")
        return int(XID_CRITICAL | pynvml.nvmlEventTypeDoubleBitEccError)

    def nvmlDeviceRegisterEvents(self, handle: FakeGpu, types: int, event_set: object) -> None:
        self._gpu(handle, "nvmlDeviceRegisterEvents")
        assert types & XID_CRITICAL
        assert event_set is self._events

    def nvmlEventSetWait(self, event_set: object, timeout_ms: int) -> Any:
        self._system("nvmlEventSetWait")
        try:
            data = self._events.get(timeout=timeout_ms / 1000)
        except queue.Empty:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_TIMEOUT) from None
        if hasattr(data, "error"):
            raise pynvml.NVMLError(data.error)
        return data

    def nvmlEventSetFree(self, event_set: object) -> None:
        self.event_sets_freed += 1
