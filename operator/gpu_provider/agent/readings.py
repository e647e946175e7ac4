"""What NVML said about this node at one moment: plain data, no I/O, no NVML types.

`agent.nvml` fills these in; `agent.facts` and `agent.metrics` read them. A field is None
when NVML could not give it (the GPU or driver does not support the call, or it failed):
absent, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["GpuReading", "HealthEvent", "NodeReading"]


@dataclass(frozen=True)
class GpuReading:
    """One physical GPU, as read in one poll."""

    index: int
    uuid: str | None = None
    name: str | None = None
    pci_device_id: int | None = None
    """The 16-bit PCI device id (NVML's pciDeviceId >> 16)."""
    pci_bus_id: str | None = None
    minor_number: int | None = None
    memory_total_bytes: int | None = None
    memory_used_bytes: int | None = None
    memory_free_bytes: int | None = None
    mig_enabled: bool | None = None
    utilization_gpu_pct: int | None = None
    utilization_memory_pct: int | None = None
    temperature_c: int | None = None
    power_mw: int | None = None
    clocks_event_reasons: int | None = None
    ecc_uncorrected_volatile: int | None = None
    ecc_uncorrected_aggregate: int | None = None
    retired_pages_pending: bool | None = None
    rows_remapped_correctable: int | None = None
    rows_remapped_uncorrectable: int | None = None
    row_remap_pending: bool | None = None
    row_remap_failed: bool | None = None
    lost: bool = False
    """NVML answered "GPU is lost" (fallen off the bus): nothing else about it can be trusted."""
    unreadable: tuple[str, ...] = ()
    """Identity fields NVML refused, with why, e.g. 'uuid unreadable: Unknown Error'."""


@dataclass(frozen=True)
class NodeReading:
    driver_version: str | None = None
    cuda_driver_version: int | None = None
    """As NVML encodes it: 1000 * major + 10 * minor (12040 is CUDA 12.4)."""
    gpus: tuple[GpuReading, ...] = field(default=())


@dataclass(frozen=True)
class HealthEvent:
    """What the XID event thread saw.

    `uuid` None means every GPU: NVML could not say which one, so all are suspect (the NVIDIA
    device plugin decides the same way). `xid` is set for an XID critical error; `error` is
    set when waiting for events failed; both None means waiting works again after an error.
    """

    uuid: str | None
    xid: int | None = None
    error: str | None = None
