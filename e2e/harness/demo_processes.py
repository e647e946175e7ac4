"""The long-running processes `make demo` starts: the operator, the gateway, the matchmaker.

Each runs detached (like anvil and the verifier), logs to `.local/<name>.log` and has its pid in
`.local/<name>.pid`, so the stack stays explorable after the demo and `make demo-down` (or
`make stack-down`) stops them. A process is stopped with SIGTERM: the operator releases its
Lease and exits 0.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from e2e.harness.stack import LOCAL

GPU_PROVIDER: Final = (sys.executable, "-m", "gpu_provider")
NAMES: Final = ("operator", "gateway", "matchmaker")


@dataclass(frozen=True)
class Background:
    """One detached `gpu-provider` process of the demo."""

    name: str
    pid: int

    @property
    def log(self) -> Path:
        return log_file(self.name)

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        # A zombie (exited, not yet reaped by us) is not alive either.
        with contextlib.suppress(OSError):
            if Path(f"/proc/{self.pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
                os.waitpid(self.pid, os.WNOHANG)
                return False
        return True

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return f"({self.log} is empty)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def log_file(name: str) -> Path:
    return LOCAL / f"{name}.log"


def _pid_file(name: str) -> Path:
    return LOCAL / f"{name}.pid"


def start(name: str, *args: str) -> Background:
    """Start `gpu-provider <args>` detached, logging to a fresh `.local/<name>.log`."""
    stop(name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPU_PROVIDER_")}
    with log_file(name).open("wb") as out:
        process = subprocess.Popen(
            [*GPU_PROVIDER, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # detached on purpose: it outlives `make demo`
        )
    _pid_file(name).write_text(str(process.pid))
    return Background(name, process.pid)


def stop(name: str, timeout: float = 60.0) -> int | None:
    """SIGTERM the process named in `.local/<name>.pid` and wait; its exit code when ours."""
    pid = _terminate(name)
    return None if pid is None else _wait(pid, timeout)


def _terminate(name: str) -> int | None:
    pid_file = _pid_file(name)
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text())
    pid_file.unlink(missing_ok=True)
    if not _is_ours(pid, name):
        return None  # gone, and its pid perhaps reused by another process: leave that alone
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    return pid


def _wait(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child (an earlier `make demo` started it)
            if not Path(f"/proc/{pid}").exists():
                return None
        else:
            if done:
                return os.waitstatus_to_exitcode(status)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return None


def _is_ours(pid: int, name: str) -> bool:
    """Whether `pid` still runs the `gpu-provider` process the demo started as `name`."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    wanted = {"operator": b"run", "gateway": b"gateway", "matchmaker": b"matchmaker"}[name]
    return b"gpu_provider" in command and wanted in command


def stop_all(timeout: float = 60.0) -> None:
    """Stop what the demo started: all are signalled at once, then waited for."""
    pids = [pid for pid in (_terminate(name) for name in NAMES) if pid is not None]
    for pid in pids:
        _wait(pid, timeout)


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
