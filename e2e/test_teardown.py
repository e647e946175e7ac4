"""Teardown always runs: a failing test session leaves no cluster or chain process behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from e2e.harness.stack import REPO, pids_mentioning


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def test_failed_session_leaves_no_process_behind(tmp_path: Path) -> None:
    out = tmp_path / "probe.json"
    env = {
        **os.environ,
        "E2E_CLUSTER_NAME": f"teardown-{uuid.uuid4().hex[:8]}",
        "TEARDOWN_PROBE_OUT": str(out),
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "e2e/harness/teardown_probe.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout[-2000:]
    assert "deliberate failure" in result.stdout
    record = json.loads(out.read_text())
    assert record["cluster_pids"], "the probe saw no control-plane processes"
    assert not any(_alive(pid) for pid in record["cluster_pids"])
    assert not _alive(record["anvil_pid"])
    assert pids_mentioning(record["cluster_dir"]) == []
    assert not Path(record["cluster_dir"]).exists()
