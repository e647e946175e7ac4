"""The only module that calls NVML (nvidia-ml-py's `pynvml`).

`NvmlBackend` is the part of the `pynvml` module the agent uses; the real module satisfies it,
and unit tests pass a scripted double of it. `Nvml` turns its calls into `NodeReading`s: any
reading a GPU or driver does not support is left out (None), never fatal, so one old card or
one missing feature cannot stop the agent from reporting the others. XID critical errors
arrive on an NVML event set, waited on in a thread of their own (the wait blocks).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Final, Protocol, TypeVar

from gpu_provider.agent.readings import GpuReading, HealthEvent, NodeReading

__all__ = [
    "Nvml",
    "NvmlBackend",
    "NvmlReadError",
    "NvmlUnavailable",
    "load_pynvml",
]

log = logging.getLogger(__name__)

# Return codes and constants from nvml.h; part of NVML's stable ABI.
_NOT_SUPPORTED: Final = 3
_NO_PERMISSION: Final = 4
_DRIVER_NOT_LOADED: Final = 9
_TIMEOUT: Final = 10
_LIBRARY_NOT_FOUND: Final = 12
_FUNCTION_NOT_FOUND: Final = 13
_GPU_IS_LOST: Final = 15
_LIB_RM_VERSION_MISMATCH: Final = 18
_EVENT_XID_CRITICAL: Final = 0x8
_MEMORY_ERROR_UNCORRECTED: Final = 1
_VOLATILE_ECC: Final = 0
_AGGREGATE_ECC: Final = 1
_TEMPERATURE_GPU: Final = 0
_MIG_ENABLED: Final = 1

_WAIT_MS: Final = 1000
_WAIT_ERROR_BACKOFF_S: Final = 5.0

T = TypeVar("T")


class NvmlBackend(Protocol):
    """The `pynvml` functions the agent calls (positional, as nvidia-ml-py defines them)."""

    NVMLError: type[Exception]

    def nvmlInit(self, /) -> None: ...
    def nvmlShutdown(self, /) -> None: ...
    def nvmlSystemGetDriverVersion(self, /) -> str: ...
    def nvmlSystemGetCudaDriverVersion_v2(self, /) -> int: ...
    def nvmlDeviceGetCount(self, /) -> int: ...
    def nvmlDeviceGetHandleByIndex(self, index: int, /) -> Any: ...
    def nvmlDeviceGetUUID(self, handle: Any, /) -> str: ...
    def nvmlDeviceGetName(self, handle: Any, /) -> str: ...
    def nvmlDeviceGetMinorNumber(self, handle: Any, /) -> int: ...
    def nvmlDeviceGetPciInfo(self, handle: Any, /) -> Any: ...
    def nvmlDeviceGetMemoryInfo(self, handle: Any, /) -> Any: ...
    def nvmlDeviceGetMigMode(self, handle: Any, /) -> list[int]: ...
    def nvmlDeviceGetUtilizationRates(self, handle: Any, /) -> Any: ...
    def nvmlDeviceGetTemperature(self, handle: Any, sensor: int, /) -> int: ...
    def nvmlDeviceGetPowerUsage(self, handle: Any, /) -> int: ...
    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: Any, /) -> int: ...
    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: Any, /) -> int: ...
    def nvmlDeviceGetTotalEccErrors(self, handle: Any, error: int, counter: int, /) -> int: ...
    def nvmlDeviceGetRetiredPagesPendingStatus(self, handle: Any, /) -> int: ...
    def nvmlDeviceGetRemappedRows(self, handle: Any, /) -> tuple[int, int, int, int]: ...
    def nvmlEventSetCreate(self, /) -> Any: ...
    def nvmlDeviceGetSupportedEventTypes(self, handle: Any, /) -> int: ...
    def nvmlDeviceRegisterEvents(self, handle: Any, types: int, event_set: Any, /) -> None: ...
    def nvmlEventSetWait(self, event_set: Any, timeout_ms: int, /) -> Any: ...
    def nvmlEventSetFree(self, event_set: Any, /) -> None: ...


class NvmlUnavailable(RuntimeError):
    """NVML cannot start on this machine; the message says why and what to do."""


class NvmlReadError(RuntimeError):
    """NVML started but could not list the GPUs this time (the driver went away?)."""


def load_pynvml() -> NvmlBackend:
    """The real NVML binding. Importing it needs no GPU; `Nvml.start` finds out."""
    import pynvml

    backend: NvmlBackend = pynvml
    return backend


def _code(exc: BaseException) -> int | None:
    value = getattr(exc, "value", None)
    return value if isinstance(value, int) else None


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


_INIT_ADVICE: Final = {
    _LIBRARY_NOT_FOUND: "libnvidia-ml.so.1 was not found: run the agent on a GPU node with "
    "the NVIDIA driver installed, with the NVIDIA container runtime (runtimeClassName: nvidia) "
    "or the driver's library directory mounted",
    _DRIVER_NOT_LOADED: "the NVIDIA kernel driver is not loaded on this node: check "
    "`nvidia-smi` on the host (the GPU operator's driver pod, or `modprobe nvidia`)",
    _NO_PERMISSION: "no permission to open the GPU device files: the container needs "
    "/dev/nvidia* (the NVIDIA container runtime with NVIDIA_VISIBLE_DEVICES=all)",
    _LIB_RM_VERSION_MISMATCH: "the user-space NVML library and the kernel driver have "
    "different versions: reboot the node after the driver upgrade",
}


class Nvml:
    """Reads every GPU through an `NvmlBackend`; all methods block (run them off the loop)."""

    def __init__(self, lib: NvmlBackend) -> None:
        self._lib = lib
        self._warned: set[tuple[int, str]] = set()

    @property
    def lib(self) -> NvmlBackend:
        return self._lib

    def start(self) -> None:
        try:
            self._lib.nvmlInit()
        except self._lib.NVMLError as exc:
            advice = _INIT_ADVICE.get(_code(exc) or -1, "see the driver's kernel log (dmesg)")
            raise NvmlUnavailable(f"NVML is not available ({exc}): {advice}") from None

    def close(self) -> None:
        try:
            self._lib.nvmlShutdown()
        except self._lib.NVMLError as exc:
            log.debug("nvmlShutdown: %s", exc)

    def read(self) -> NodeReading:
        try:
            count = self._lib.nvmlDeviceGetCount()
        except self._lib.NVMLError as exc:
            raise NvmlReadError(f"NVML cannot count the GPUs: {exc}") from None
        driver = self._system("driver version", self._lib.nvmlSystemGetDriverVersion)
        cuda = self._system("CUDA version", self._lib.nvmlSystemGetCudaDriverVersion_v2)
        return NodeReading(
            driver_version=None if driver is None else _text(driver),
            cuda_driver_version=cuda,
            gpus=tuple(_GpuProbe(self, index).read() for index in range(count)),
        )

    def watch_xids(
        self, on_event: Callable[[HealthEvent], None], stop: threading.Event
    ) -> threading.Thread | None:
        """Start the thread that reports XID critical errors; None if no GPU can report them."""
        try:
            event_set = self._lib.nvmlEventSetCreate()
        except self._lib.NVMLError as exc:
            log.warning("NVML events unavailable (%s): health relies on ECC and row remaps", exc)
            return None
        try:
            count = self._lib.nvmlDeviceGetCount()
        except self._lib.NVMLError as exc:
            log.warning("cannot list GPUs for XID events (%s)", exc)
            count = 0
        registered = 0
        for index in range(count):
            registered += self._register(index, event_set, on_event)
        if not registered:
            self._free(event_set)
            return None
        thread = threading.Thread(
            target=self._wait_loop,
            args=(event_set, on_event, stop),
            name="nvml-xid-events",
            daemon=True,
        )
        thread.start()
        return thread

    def _register(self, index: int, event_set: Any, on_event: Callable[[HealthEvent], None]) -> int:
        lib = self._lib
        uuid: str | None = None
        try:
            handle = lib.nvmlDeviceGetHandleByIndex(index)
            uuid = _text(lib.nvmlDeviceGetUUID(handle))
            supported = lib.nvmlDeviceGetSupportedEventTypes(handle)
            if not supported & _EVENT_XID_CRITICAL:
                log.warning("GPU %d cannot report XID events; its health uses counters", index)
                return 0
            lib.nvmlDeviceRegisterEvents(handle, _EVENT_XID_CRITICAL, event_set)
        except lib.NVMLError as exc:
            if _code(exc) in (_NOT_SUPPORTED, _FUNCTION_NOT_FOUND):
                log.warning("GPU %d cannot report XID events (%s)", index, exc)
                return 0
            # The device plugin marks such a GPU unhealthy; so do we, naming why.
            on_event(HealthEvent(uuid=uuid, error=f"cannot watch GPU {index}: {exc}"))
            return 0
        return 1

    def _wait_loop(
        self, event_set: Any, on_event: Callable[[HealthEvent], None], stop: threading.Event
    ) -> None:
        lib = self._lib
        failing = False
        try:
            while not stop.is_set():
                try:
                    data = lib.nvmlEventSetWait(event_set, _WAIT_MS)
                except lib.NVMLError as exc:
                    if _code(exc) == _TIMEOUT:
                        if failing:
                            failing = False
                            on_event(HealthEvent(uuid=None))
                        continue
                    failing = True
                    on_event(HealthEvent(uuid=None, error=str(exc)))
                    stop.wait(_WAIT_ERROR_BACKOFF_S)
                    continue
                if failing:
                    failing = False
                    on_event(HealthEvent(uuid=None))
                if not int(data.eventType) & _EVENT_XID_CRITICAL:
                    continue
                try:
                    uuid: str | None = _text(lib.nvmlDeviceGetUUID(data.device))
                except lib.NVMLError:
                    uuid = None  # cannot tell which GPU: all are suspect
                on_event(HealthEvent(uuid=uuid, xid=int(data.eventData)))
        finally:
            self._free(event_set)

    def _free(self, event_set: Any) -> None:
        try:
            self._lib.nvmlEventSetFree(event_set)
        except self._lib.NVMLError as exc:
            log.debug("nvmlEventSetFree: %s", exc)

    def _system(self, what: str, fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except self._lib.NVMLError as exc:
            self.note_absent(-1, what, exc)
            return None

    def note_absent(self, index: int, what: str, exc: BaseException) -> None:
        # Once per GPU and reading: a missing feature is a fact of the card, not news.
        if (index, what) not in self._warned:
            self._warned.add((index, what))
            log.info("GPU %d: %s not available (%s); reported as absent", index, what, exc)


class _GpuProbe:
    """One poll of one GPU: every call tolerated, "GPU is lost" remembered."""

    def __init__(self, nvml: Nvml, index: int) -> None:
        self._nvml = nvml
        self._lib = nvml.lib
        self._index = index
        self._lost = False
        self._unreadable: list[str] = []

    def _get(self, what: str, fn: Callable[..., T], *args: Any, identity: bool = False) -> T | None:
        if self._lost:
            return None
        try:
            return fn(*args)
        except self._lib.NVMLError as exc:
            self._fail(what, exc, identity=identity)
            return None

    def _fail(self, what: str, exc: BaseException, *, identity: bool = False) -> None:
        if _code(exc) == _GPU_IS_LOST:
            self._lost = True
        elif identity:
            self._unreadable.append(f"{what} unreadable: {exc}")
        else:
            self._nvml.note_absent(self._index, what, exc)

    def read(self) -> GpuReading:
        lib, index = self._lib, self._index
        handle = self._get("handle", lib.nvmlDeviceGetHandleByIndex, index, identity=True)
        if handle is None:
            return GpuReading(index=index, lost=self._lost, unreadable=tuple(self._unreadable))
        uuid = self._get("uuid", lib.nvmlDeviceGetUUID, handle, identity=True)
        name = self._get("name", lib.nvmlDeviceGetName, handle, identity=True)
        pci = self._get("PCI info", lib.nvmlDeviceGetPciInfo, handle, identity=True)
        memory = self._get("memory", lib.nvmlDeviceGetMemoryInfo, handle, identity=True)
        mig = self._get("MIG mode", lib.nvmlDeviceGetMigMode, handle)
        util = self._get("utilization", lib.nvmlDeviceGetUtilizationRates, handle)
        rows = self._get("remapped rows", lib.nvmlDeviceGetRemappedRows, handle)
        pending_pages = self._get(
            "retired pages", lib.nvmlDeviceGetRetiredPagesPendingStatus, handle
        )
        return GpuReading(
            index=index,
            uuid=None if uuid is None else _text(uuid),
            name=None if name is None else _text(name),
            pci_device_id=None if pci is None else (int(pci.pciDeviceId) >> 16) & 0xFFFF,
            pci_bus_id=None if pci is None else _text(pci.busId),
            minor_number=self._get("minor number", lib.nvmlDeviceGetMinorNumber, handle),
            memory_total_bytes=None if memory is None else int(memory.total),
            memory_used_bytes=None if memory is None else int(memory.used),
            memory_free_bytes=None if memory is None else int(memory.free),
            mig_enabled=None if mig is None else int(mig[0]) == _MIG_ENABLED,
            utilization_gpu_pct=None if util is None else int(util.gpu),
            utilization_memory_pct=None if util is None else int(util.memory),
            temperature_c=self._get(
                "temperature", lib.nvmlDeviceGetTemperature, handle, _TEMPERATURE_GPU
            ),
            power_mw=self._get("power", lib.nvmlDeviceGetPowerUsage, handle),
            clocks_event_reasons=self._clocks_event_reasons(handle),
            ecc_uncorrected_volatile=self._ecc(handle, _VOLATILE_ECC),
            ecc_uncorrected_aggregate=self._ecc(handle, _AGGREGATE_ECC),
            retired_pages_pending=None if pending_pages is None else bool(pending_pages),
            rows_remapped_correctable=None if rows is None else int(rows[0]),
            rows_remapped_uncorrectable=None if rows is None else int(rows[1]),
            row_remap_pending=None if rows is None else bool(rows[2]),
            row_remap_failed=None if rows is None else bool(rows[3]),
            lost=self._lost,
            unreadable=tuple(self._unreadable),
        )

    def _ecc(self, handle: Any, counter: int) -> int | None:
        what = "volatile ECC" if counter == _VOLATILE_ECC else "aggregate ECC"
        return self._get(
            what, self._lib.nvmlDeviceGetTotalEccErrors, handle, _MEMORY_ERROR_UNCORRECTED, counter
        )

    def _clocks_event_reasons(self, handle: Any) -> int | None:
        lib = self._lib
        if self._lost:
            return None
        try:
            return lib.nvmlDeviceGetCurrentClocksEventReasons(handle)
        except lib.NVMLError as exc:
            if _code(exc) != _FUNCTION_NOT_FOUND:
                self._fail("clock event reasons", exc)
                return None
        # Drivers before R535 only have the older name for the same bitmask.
        return self._get("throttle reasons", lib.nvmlDeviceGetCurrentClocksThrottleReasons, handle)
