"""Where devnet files live by default (no heavy imports: the CLI reads these for its help)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

DEFAULT_STATE_FILE: Final = Path(".local/devnet.json")
"""The devnet description, relative to the working directory (the source tree root)."""


def pid_file_for(state_file: Path) -> Path:
    """Where the running anvil's process id is kept: `anvil.pid` next to the state file.

    `.local/anvil.pid` is also where the `make stack` harness keeps its anvil's pid, so
    `make stack-down` and `gpu-provider devnet down` stop either.
    """
    return state_file.parent / "anvil.pid"


def log_file_for(state_file: Path) -> Path:
    """Where anvil's output goes: `anvil.log` next to the state file."""
    return state_file.parent / "anvil.log"
