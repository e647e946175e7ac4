"""Run by e2e/test_teardown.py in a child pytest: uses the session fixtures, then fails.

Not collected by the main run (its name does not start with `test_`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from e2e.harness.stack import KwokCluster
from gpu_provider.devnet.anvil import Anvil


def test_uses_stack_then_fails(kwok_cluster: KwokCluster, anvil: Anvil) -> None:
    assert anvil.process is not None
    record = {
        "cluster_dir": str(kwok_cluster.cluster_dir),
        "cluster_pids": kwok_cluster.pids(),
        "anvil_pid": anvil.process.pid,
    }
    Path(os.environ["TEARDOWN_PROBE_OUT"]).write_text(json.dumps(record))
    raise AssertionError("deliberate failure: teardown must still run")
