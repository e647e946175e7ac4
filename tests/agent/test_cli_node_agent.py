"""`gpu-provider node-agent` as a DaemonSet's user meets it: help, exit codes, messages."""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys
from pathlib import Path

import pynvml
import pytest
from click.testing import CliRunner

from gpu_provider.agent.app import (
    EXIT_NODE_UNAVAILABLE,
    EXIT_NVML_UNAVAILABLE,
    AgentConfig,
    run_node_agent,
)
from gpu_provider.cli import main
from tests.agent.fake_nvml import FakeNvml, h100


def test_help_teaches_what_it_writes_and_its_exit_codes() -> None:
    result = CliRunner().invoke(main, ["node-agent", "--help"])
    assert result.exit_code == 0
    for words in ("gpuprovider.dev/gpu-facts", "NODE_NAME", "--metrics-port", "9400", "4  NVML"):
        assert words in result.output, words


def test_without_a_node_name_it_says_how_to_set_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NODE_NAME", raising=False)
    result = CliRunner().invoke(main, ["node-agent"])
    assert result.exit_code == 2
    assert "--node-name" in result.output


@pytest.mark.skipif(
    ctypes.util.find_library("nvidia-ml") is not None, reason="this machine has NVML"
)
def test_on_a_machine_without_nvml_it_exits_4_and_says_what_is_missing(tmp_path: Path) -> None:
    env = {**os.environ, "NODE_NAME": "gpu-h100-0", "KUBECONFIG": str(tmp_path / "none")}
    env.pop("GPU_PROVIDER_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "gpu_provider", "node-agent", "--metrics-port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == EXIT_NVML_UNAVAILABLE == 4
    assert "libnvidia-ml.so.1 was not found" in done.stderr
    assert "Traceback" not in done.stderr


def test_nvml_refusing_to_start_exits_4() -> None:
    fake = FakeNvml([], init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    assert run_node_agent(AgentConfig(node_name="n"), lib=fake) == EXIT_NVML_UNAVAILABLE


def test_no_usable_kubeconfig_exits_5_and_shuts_nvml_down(tmp_path: Path) -> None:
    fake = FakeNvml([h100()])
    config = AgentConfig(node_name="n", kubeconfig=tmp_path / "missing", metrics_port=0)
    assert run_node_agent(config, lib=fake) == EXIT_NODE_UNAVAILABLE
    assert fake.initialised is False
