"""Prometheus metrics of the node agent, named as DCGM exporter names them.

Dashboards and alerts written for dcgm-exporter work unchanged: same metric names, same labels
(`gpu`, `UUID`, `pci_bus_id`, `device`, `modelName`, `Hostname`), same units. Counters that
DCGM exports without a `_total` suffix are exported here as gauges so the names stay exact.
A reading NVML does not give is left out, never exported as 0. Health, which DCGM exporter
does not decide, is exported as `gpu_provider_*`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from gpu_provider.agent.facts import ALL_GPUS, MIB, XidLedger
from gpu_provider.agent.readings import GpuReading, NodeReading
from gpu_provider.api.nodefacts import NodeGpuFacts

__all__ = ["DCGM_GAUGES", "AgentMetrics", "MetricsServer"]

LABELS = ("gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname")

_Read = Callable[[GpuReading], float | None]


def _flag(value: bool | None) -> float | None:
    return None if value is None else float(value)


def _mib(value: int | None) -> float | None:
    return None if value is None else float(value // MIB)


def _num(value: int | None) -> float | None:
    return None if value is None else float(value)


DCGM_GAUGES: tuple[tuple[str, str, _Read], ...] = (
    ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", lambda g: _num(g.utilization_gpu_pct)),
    (
        "DCGM_FI_DEV_MEM_COPY_UTIL",
        "Memory utilization (in %).",
        lambda g: _num(g.utilization_memory_pct),
    ),
    (
        "DCGM_FI_DEV_FB_TOTAL",
        "Framebuffer memory total (in MiB).",
        lambda g: _mib(g.memory_total_bytes),
    ),
    (
        "DCGM_FI_DEV_FB_USED",
        "Framebuffer memory used (in MiB).",
        lambda g: _mib(g.memory_used_bytes),
    ),
    (
        "DCGM_FI_DEV_FB_FREE",
        "Framebuffer memory free (in MiB).",
        lambda g: _mib(g.memory_free_bytes),
    ),
    ("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", lambda g: _num(g.temperature_c)),
    (
        "DCGM_FI_DEV_POWER_USAGE",
        "Power draw (in W).",
        lambda g: None if g.power_mw is None else g.power_mw / 1000,
    ),
    (
        "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
        "Current clock event (throttle) reasons, NVML's bitmask.",
        lambda g: _num(g.clocks_event_reasons),
    ),
    (
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        "Uncorrectable ECC errors since the driver loaded.",
        lambda g: _num(g.ecc_uncorrected_volatile),
    ),
    (
        "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL",
        "Uncorrectable ECC errors over the GPU's life.",
        lambda g: _num(g.ecc_uncorrected_aggregate),
    ),
    (
        "DCGM_FI_DEV_RETIRED_PENDING",
        "1 if pages are waiting to be retired (NVML gives a flag, not a count).",
        lambda g: _flag(g.retired_pages_pending),
    ),
    (
        "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
        "Number of remapped rows for correctable errors",
        lambda g: _num(g.rows_remapped_correctable),
    ),
    (
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
        "Number of remapped rows for uncorrectable errors",
        lambda g: _num(g.rows_remapped_uncorrectable),
    ),
    (
        "DCGM_FI_DEV_ROW_REMAP_PENDING",
        "Whether remapping of rows is pending",
        lambda g: _flag(g.row_remap_pending),
    ),
    (
        "DCGM_FI_DEV_ROW_REMAP_FAILURE",
        "Whether remapping of rows has failed",
        lambda g: _flag(g.row_remap_failed),
    ),
)


@dataclass(frozen=True)
class _Snapshot:
    reading: NodeReading
    facts: NodeGpuFacts
    last_xid: dict[str, int]
    xid_counts: dict[tuple[str, int], int]


class _GpuCollector(Collector):
    """Exports the latest poll only, so a GPU that disappears leaves no stale series."""

    def __init__(self, hostname: str) -> None:
        self._hostname = hostname
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None

    def update(self, snapshot: _Snapshot) -> None:
        with self._lock:
            self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snapshot = self._snapshot
        if snapshot is None:
            return
        facts = {gpu.index: gpu for gpu in snapshot.facts.gpus}
        labels = {gpu.index: self._labels(gpu) for gpu in snapshot.reading.gpus}
        for name, help_text, read in DCGM_GAUGES:
            family = GaugeMetricFamily(name, help_text, labels=LABELS)
            for gpu in snapshot.reading.gpus:
                value = read(gpu)
                if value is not None:
                    family.add_metric(labels[gpu.index], value)
            yield family
        xid = GaugeMetricFamily(
            "DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error encountered.", labels=LABELS
        )
        healthy = GaugeMetricFamily(
            "gpu_provider_gpu_healthy",
            "1 if the agent reports this GPU healthy (offerable), 0 if not.",
            labels=LABELS,
        )
        problems = GaugeMetricFamily(
            "gpu_provider_gpu_problem",
            "1 for each reason this GPU is unhealthy.",
            labels=(*LABELS, "problem"),
        )
        events = CounterMetricFamily(
            "gpu_provider_xid_events",
            "XID critical error events seen since the agent started, by XID.",
            labels=(*LABELS, "xid"),
        )
        for gpu in snapshot.reading.gpus:
            row = labels[gpu.index]
            last = snapshot.last_xid.get(gpu.uuid or "", snapshot.last_xid.get(ALL_GPUS, 0))
            xid.add_metric(row, float(last))
            fact = facts[gpu.index]
            healthy.add_metric(row, float(fact.healthy))
            for problem in fact.problems:
                problems.add_metric([*row, problem], 1.0)
            for (uuid, code), count in sorted(snapshot.xid_counts.items()):
                if uuid in (gpu.uuid, ALL_GPUS):
                    events.add_metric([*row, str(code)], float(count))
        yield from (xid, healthy, problems, events)

    def _labels(self, gpu: GpuReading) -> list[str]:
        device = f"nvidia{gpu.minor_number if gpu.minor_number is not None else gpu.index}"
        return [
            str(gpu.index),
            gpu.uuid or "",
            gpu.pci_bus_id or "",
            device,
            gpu.name or "",
            self._hostname,
        ]


class AgentMetrics:
    """Everything the agent exports, in its own registry."""

    def __init__(self, hostname: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._gpus = _GpuCollector(hostname)
        self.registry.register(self._gpus)
        self.nvml_up = Gauge(
            "gpu_provider_nvml_up",
            "1 if the last NVML poll succeeded.",
            registry=self.registry,
        )
        self.info = Gauge(
            "gpu_provider_node_agent_info",
            "Driver and CUDA versions NVML reports; always 1.",
            labelnames=("Hostname", "driver_version", "cuda_version"),
            registry=self.registry,
        )
        self.facts_writes = Counter(
            "gpu_provider_facts_writes",
            "Writes of the gpu-facts Node annotation (facts or health changed).",
            registry=self.registry,
        )
        self.facts_write_errors = Counter(
            "gpu_provider_facts_write_errors",
            "Failed reads or writes of the gpu-facts annotation (retried next poll).",
            registry=self.registry,
        )
        self._hostname = hostname

    def observe(self, reading: NodeReading, facts: NodeGpuFacts, ledger: XidLedger) -> None:
        self.nvml_up.set(1)
        self.info.clear()
        self.info.labels(self._hostname, facts.driver_version or "", facts.cuda_version or "").set(
            1
        )
        self._gpus.update(
            _Snapshot(reading, facts, dict(ledger.last_xid), dict(ledger.counts.items()))
        )


class MetricsServer:
    """The /metrics HTTP endpoint on its own port, served from a thread."""

    def __init__(self, metrics: AgentMetrics, port: int, address: str = "0.0.0.0") -> None:  # noqa: S104
        self._server, self._thread = start_http_server(
            port, addr=address, registry=metrics.registry
        )

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
