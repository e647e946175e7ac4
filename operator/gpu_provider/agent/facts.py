"""Pure health decisions: NVML readings plus the XID events seen so far → `NodeGpuFacts`.

Health follows what the NVIDIA device plugin and DCGM decide, so a GPU the device plugin
would take out of service is also never offered:

- a critical XID event (NVML's XidCriticalError), except the application errors the device
  plugin ignores (13, 31, 43, 45, 68, 109: the workload faulted, the GPU is fine);
- uncorrectable ECC errors since the driver loaded (volatile count > 0);
- pages waiting to be retired, or rows waiting to be remapped (both need a GPU reset);
- a failed row remap (no spare rows left: the card needs replacing);
- NVML reporting the GPU as lost, or unable to name it.

The lifetime (aggregate) uncorrectable ECC count is a metric, not a health failure: once the
bad page is retired or the row remapped, the memory behind it is out of use.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from gpu_provider.agent.readings import GpuReading, HealthEvent, NodeReading
from gpu_provider.api.nodefacts import GpuFacts, NodeGpuFacts

__all__ = [
    "ALL_GPUS",
    "APPLICATION_XIDS",
    "XidLedger",
    "build_facts",
    "cuda_version",
    "gpu_facts",
    "gpu_problems",
]

APPLICATION_XIDS: Final = frozenset({13, 31, 43, 45, 68, 109})
"""XIDs caused by the application, not the GPU (the NVIDIA device plugin's ignore list)."""

ALL_GPUS: Final = "*"
"""Ledger key for events NVML could not attribute to one GPU."""

MIB: Final = 1024 * 1024
_MAX_PROBLEMS: Final = 16
_MAX_NAME: Final = 96


@dataclass
class XidLedger:
    """The XID events seen since the agent started, per GPU UUID.

    A critical XID keeps its GPU unhealthy until the agent restarts: NVML has no "recovered"
    event, and the fixes (a GPU reset, a reboot) restart the DaemonSet pod anyway.
    """

    ignored: frozenset[int] = APPLICATION_XIDS
    critical: dict[str, set[int]] = field(default_factory=dict)
    last_xid: dict[str, int] = field(default_factory=dict)
    counts: Counter[tuple[str, int]] = field(default_factory=Counter)
    watch_error: str | None = None

    def record(self, event: HealthEvent) -> bool:
        """Apply one event; True when it changes some GPU's health."""
        key = event.uuid or ALL_GPUS
        if event.xid is not None:
            self.counts[(key, event.xid)] += 1
            self.last_xid[key] = event.xid
            if event.xid in self.ignored:
                return False
            seen = self.critical.setdefault(key, set())
            before = len(seen)
            seen.add(event.xid)
            return len(seen) != before
        changed = self.watch_error != event.error
        self.watch_error = event.error
        return changed

    def critical_for(self, uuid: str | None) -> list[int]:
        xids = set(self.critical.get(ALL_GPUS, ()))
        if uuid is not None:
            xids |= self.critical.get(uuid, set())
        return sorted(xids)

    def last_for(self, uuid: str | None) -> int | None:
        if uuid is not None and uuid in self.last_xid:
            return self.last_xid[uuid]
        return self.last_xid.get(ALL_GPUS)


def gpu_problems(gpu: GpuReading, ledger: XidLedger) -> tuple[str, ...]:
    """Why this GPU must not be offered, in the words the annotation and metrics carry."""
    problems: list[str] = []
    if gpu.lost:
        problems.append("GPU is lost")
    problems.extend(gpu.unreadable)
    problems.extend(f"xid {xid}" for xid in ledger.critical_for(gpu.uuid))
    if gpu.ecc_uncorrected_volatile:
        problems.append(f"uncorrectable ECC errors: {gpu.ecc_uncorrected_volatile}")
    if gpu.retired_pages_pending:
        problems.append("retired pages pending")
    if gpu.row_remap_pending:
        problems.append("pending row remap")
    if gpu.row_remap_failed:
        problems.append("row remap failed")
    if ledger.watch_error is not None:
        problems.append(f"XID events unreadable: {ledger.watch_error}")
    return tuple(problems[:_MAX_PROBLEMS])


def gpu_facts(gpu: GpuReading, ledger: XidLedger) -> GpuFacts:
    """The annotation's view of one GPU.

    A GPU whose identity NVML refuses is still listed (never silently dropped), under
    placeholders, and is unhealthy because of it, so the inventory never offers it.
    """
    problems = gpu_problems(gpu, ledger)
    return GpuFacts(
        index=gpu.index,
        uuid=gpu.uuid or f"unknown-gpu-{gpu.index}",
        name=(gpu.name or "unknown")[:_MAX_NAME],
        pci_device_id=f"{gpu.pci_device_id & 0xFFFF:04x}"
        if gpu.pci_device_id is not None
        else "0000",
        memory_mib=(gpu.memory_total_bytes or 0) // MIB,
        mig_enabled=bool(gpu.mig_enabled),
        healthy=not problems,
        problems=problems,
    )


def cuda_version(encoded: int | None) -> str | None:
    """NVML's CUDA driver version (12040) as people write it ('12.4')."""
    if encoded is None or encoded <= 0:
        return None
    return f"{encoded // 1000}.{encoded % 1000 // 10}"


def build_facts(reading: NodeReading, ledger: XidLedger) -> NodeGpuFacts:
    return NodeGpuFacts(
        driver_version=reading.driver_version,
        cuda_version=cuda_version(reading.cuda_driver_version),
        gpus=tuple(gpu_facts(gpu, ledger) for gpu in _by_index(reading.gpus)),
    )


def _by_index(gpus: Iterable[GpuReading]) -> list[GpuReading]:
    return sorted(gpus, key=lambda gpu: gpu.index)
