"""The metrics a dcgm-exporter dashboard reads, scraped over HTTP from the agent's own port."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from gpu_provider.agent.facts import XidLedger, build_facts
from gpu_provider.agent.metrics import AgentMetrics, MetricsServer
from gpu_provider.agent.nvml import Nvml
from gpu_provider.agent.readings import HealthEvent
from tests.agent.fake_nvml import FakeGpu, FakeNvml, a100_mig, h100, rtx4090_bare

Samples = dict[tuple[str, str], dict[str, object]]


def scrape(*gpus: FakeGpu, ledger: XidLedger | None = None) -> Samples:
    ledger = ledger or XidLedger()
    nvml = Nvml(FakeNvml(list(gpus)))
    nvml.start()
    reading = nvml.read()
    metrics = AgentMetrics(hostname="gpu-h100-0")
    metrics.observe(reading, build_facts(reading, ledger), ledger)
    server = MetricsServer(metrics, port=0, address="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as reply:
            text = reply.read().decode()
    finally:
        server.close()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, sample.labels.get("gpu", "") + sample.labels.get("problem", ""))
            samples[key] = {"value": sample.value, **sample.labels}
    return samples


def test_dcgm_names_labels_and_units() -> None:
    gpu = h100()
    gpu.util_gpu, gpu.used_mib, gpu.temperature_c, gpu.power_mw = 87, 40_000, 71, 612_500
    samples = scrape(gpu)
    util = samples[("DCGM_FI_DEV_GPU_UTIL", "0")]
    assert util["value"] == 87
    assert util["UUID"] == gpu.uuid
    assert util["modelName"] == "NVIDIA H100 80GB HBM3"
    assert util["device"] == "nvidia0"
    assert util["Hostname"] == "gpu-h100-0"
    assert util["pci_bus_id"] == "00000000:18:00.0"
    assert samples[("DCGM_FI_DEV_FB_USED", "0")]["value"] == 40_000
    assert samples[("DCGM_FI_DEV_FB_FREE", "0")]["value"] == 81559 - 40_000
    assert samples[("DCGM_FI_DEV_GPU_TEMP", "0")]["value"] == 71
    assert samples[("DCGM_FI_DEV_POWER_USAGE", "0")]["value"] == 612.5
    assert samples[("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "0")]["value"] == 1  # idle
    assert samples[("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "0")]["value"] == 0
    assert samples[("DCGM_FI_DEV_ROW_REMAP_FAILURE", "0")]["value"] == 0
    assert samples[("DCGM_FI_DEV_XID_ERRORS", "0")]["value"] == 0
    assert samples[("gpu_provider_gpu_healthy", "0")]["value"] == 1
    assert samples[("gpu_provider_nvml_up", "")]["value"] == 1


def test_readings_a_gpu_does_not_support_are_absent_not_zero() -> None:
    samples = scrape(h100(0), rtx4090_bare(1), a100_mig(2))
    for name in (
        "DCGM_FI_DEV_GPU_TEMP",
        "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
    ):
        assert (name, "0") in samples
        assert (name, "1") not in samples, name
    assert ("DCGM_FI_DEV_GPU_UTIL", "2") not in samples  # MIG: no whole-GPU utilisation
    assert samples[("DCGM_FI_DEV_FB_TOTAL", "1")]["value"] == 24564
    assert samples[("gpu_provider_gpu_healthy", "1")]["value"] == 1


def test_an_unhealthy_gpu_shows_why_and_its_last_xid() -> None:
    gpus = (h100(0), h100(1))
    gpus[1].ecc_volatile = 2
    ledger = XidLedger()
    ledger.record(HealthEvent(uuid=gpus[1].uuid, xid=79))
    samples = scrape(*gpus, ledger=ledger)
    assert samples[("gpu_provider_gpu_healthy", "0")]["value"] == 1
    assert samples[("gpu_provider_gpu_healthy", "1")]["value"] == 0
    assert samples[("DCGM_FI_DEV_XID_ERRORS", "1")]["value"] == 79
    assert samples[("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "1")]["value"] == 2
    assert ("gpu_provider_gpu_problem", "1xid 79") in samples
    assert ("gpu_provider_gpu_problem", "1uncorrectable ECC errors: 2") in samples
    assert samples[("gpu_provider_xid_events_total", "1")]["xid"] == "79"
