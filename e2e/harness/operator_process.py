"""`gpu-provider run` as a subprocess of the e2e suites, started as a provider starts it: a
settings file, a kubeconfig, no GPU_PROVIDER_* variables from the caller's shell, a log file.

The metrics and probe ports are picked free (bind to port 0, close, hand the number over), which
leaves a window in which another process on the machine can take one: the operator then exits
at start with `OSError: [Errno 98] ... address already in use`. `start_operator` waits until
the liveness probe answers or the process exits, and on that error starts it again on fresh
ports.
"""

from __future__ import annotations

import copy
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import yaml

T = TypeVar("T")
RUN: Final = (sys.executable, "-m", "gpu_provider", "run")
START_ATTEMPTS: Final = 4
HEALTHY_WITHIN: Final = 30.0
"""Seconds from the Popen to /healthz answering (imports and Kopf's start on a busy 2-core box)."""
PORT_TAKEN: Final = ("address already in use", "errno 98")
LOG_TAIL: Final = 3000


def wait_for(
    check: Callable[[], T | None], what: str, timeout: float = 60, interval: float = 0.2
) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"within {timeout:g} s: {what} did not happen (last seen: {last!r})")


def free_port() -> int:
    """A port free now; nothing holds it for the caller (see `start_operator`)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class OperatorProcess:
    """One started `gpu-provider run` and where it listens."""

    process: subprocess.Popen[bytes]
    metrics_port: int
    probe_port: int
    log_file: Path
    stopped: bool = field(default=False)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.probe_port}/healthz", timeout=2
            ) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def metric(self, name: str, **labels: str) -> float:
        """A sample of the operator's /metrics (0 when it has none yet)."""
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as reply:
            text = reply.read().decode()
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.stopped = True
        return self.process.wait(timeout=timeout)


def start_operator(
    settings: dict[str, Any],
    *,
    kubeconfig: Path,
    workdir: Path,
    name: str,
    wait_healthy: bool = True,
    attempts: int = START_ATTEMPTS,
) -> OperatorProcess:
    """`gpu-provider run` with `settings` (its ports chosen here), as `<workdir>/<name>.yaml`,
    logging to `<workdir>/<name>.log`; returned once /healthz answers.

    /healthz is Kopf's, served from the operator's start whether or not this instance holds
    the Lease, so a standby answers it too. With `wait_healthy=False` it returns right after
    the Popen, and a port taken in between is not retried.
    """
    config = workdir / f"{name}.yaml"
    log_file = workdir / f"{name}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPU_PROVIDER_")}
    for attempt in range(1, attempts + 1):
        chosen = copy.deepcopy(settings)
        chosen["metrics_port"] = free_port()
        chosen.setdefault("operator", {})["probe_port"] = free_port()
        config.write_text(yaml.safe_dump(chosen))
        offset = log_file.stat().st_size if log_file.exists() else 0
        with log_file.open("ab") as out:
            process = subprocess.Popen(
                [*RUN, "--config", str(config), "--kubeconfig", str(kubeconfig)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        operator = OperatorProcess(
            process, chosen["metrics_port"], chosen["operator"]["probe_port"], log_file
        )
        if not wait_healthy or _answers_or_exits(operator):
            return operator
        output = _read_from(log_file, offset)
        if not any(sign in output.lower() for sign in PORT_TAKEN):
            raise AssertionError(
                f"{name}: gpu-provider run exited {process.returncode} at start:\n"
                + output[-LOG_TAIL:]
            )
        with log_file.open("a") as out:
            out.write(
                f"--- e2e harness: start {attempt} of {attempts} found port "
                f"{operator.metrics_port} or {operator.probe_port} taken; new ports ---\n"
            )
    raise AssertionError(f"{name}: each of {attempts} starts found a port taken (see {log_file})")


def _answers_or_exits(operator: OperatorProcess) -> bool:
    """True once /healthz answers; False when the process exited first. A process that does
    neither within HEALTHY_WITHIN is stopped and reported."""
    deadline = time.monotonic() + HEALTHY_WITHIN
    while time.monotonic() < deadline:
        if operator.process.poll() is not None:
            return False
        if operator.healthy():
            return True
        time.sleep(0.2)
    operator.stop(signal.SIGKILL, timeout=10)
    raise AssertionError(
        f"within {HEALTHY_WITHIN:g} s: gpu-provider run did not answer "
        f"http://127.0.0.1:{operator.probe_port}/healthz:\n" + operator.log()[-LOG_TAIL:]
    )


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")
