"""docs/node-agent.md shows what the agent really writes and exports."""

from __future__ import annotations

import re
from pathlib import Path

from gpu_provider.agent.facts import XidLedger, build_facts
from gpu_provider.agent.metrics import DCGM_GAUGES
from gpu_provider.agent.nvml import Nvml
from gpu_provider.agent.readings import HealthEvent
from gpu_provider.api.nodefacts import parse_node_facts
from tests.agent.fake_nvml import FakeNvml, h100

DOC = Path(__file__).resolve().parents[2] / "docs" / "node-agent.md"


def test_the_annotation_example_is_what_the_agent_writes() -> None:
    example = re.search(r"```json\n(.*?)\n```", DOC.read_text(), re.S)
    assert example is not None
    gpus = [h100(0), h100(1)]
    gpus[1].remapped_rows = (0, 1, 1, 0)
    nvml = Nvml(FakeNvml(gpus))
    nvml.start()
    ledger = XidLedger()
    ledger.record(HealthEvent(uuid=gpus[1].uuid, xid=79))
    written = build_facts(nvml.read(), ledger).to_annotation()
    assert example.group(1) == written
    assert parse_node_facts(example.group(1)).gpus[1].problems == ("xid 79", "pending row remap")


def test_every_exported_metric_is_in_the_table() -> None:
    text = DOC.read_text()
    for name, _, _ in DCGM_GAUGES:
        assert f"`{name}`" in text, name
