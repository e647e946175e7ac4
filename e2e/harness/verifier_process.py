"""The devnet verifier `make stack` leaves running next to anvil.

`gpu-provider devnet verifier` approves what providers submit with `submitAttributes` after a
delay, as Spheron's verifier would; without it an operator's attributes would stay pending on
the local stack forever. It runs detached (like anvil), logs to .local/verifier.log, and its
pid is kept in .local/verifier.pid so `make stack-down` stops it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

from e2e.harness.stack import DEVNET_JSON, LOCAL, log

VERIFIER_PID: Final = LOCAL / "verifier.pid"
VERIFIER_LOG: Final = LOCAL / "verifier.log"
VERIFIER_DELAY: Final = 5.0
"""Seconds between a submission and its approval on the local stack."""


def start_verifier(delay: float = VERIFIER_DELAY) -> int:
    """Start `gpu-provider devnet verifier` in the background; its pid."""
    stop_verifier()
    with VERIFIER_LOG.open("ab") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gpu_provider",
                "devnet",
                "verifier",
                "--delay",
                f"{delay:g}",
                "--state-file",
                str(DEVNET_JSON),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # detached on purpose: it outlives `make stack`
        )
    VERIFIER_PID.write_text(str(process.pid))
    log(
        f"devnet verifier approves submitted attributes after {delay:g} s "
        f"(pid {process.pid}, log {VERIFIER_LOG.relative_to(LOCAL.parent)})"
    )
    return process.pid


def stop_verifier() -> None:
    if not VERIFIER_PID.exists():
        return
    pid = int(VERIFIER_PID.read_text())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(50):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.1)
    VERIFIER_PID.unlink(missing_ok=True)
