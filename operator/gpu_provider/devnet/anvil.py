"""Start and stop a local anvil chain (the devnet EVM node) on a free loopback port.

anvil comes from the pinned npm package `@foundry-rs/anvil`; `find_anvil` looks for it in
`.local/bin/` and `node_modules/` of the source tree. Accounts come from anvil's well-known
test mnemonic, so every run has the same funded addresses (they hold no value anywhere).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final, Self

DEFAULT_MNEMONIC: Final = "test test test test test test test test test test test junk"
DEFAULT_CHAIN_ID: Final = 31337
DEFAULT_BLOCK_TIME: Final = 2.0
_NPM_BINARY: Final = Path("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")


class AnvilError(RuntimeError):
    """anvil is missing, did not start, or stopped answering."""


def repo_root() -> Path:
    """The source tree root (where pyproject.toml is), for dev-only tooling."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "operator").is_dir():
            return parent
    return Path.cwd()


def find_anvil() -> Path:
    """Locate the anvil binary: $ANVIL, .local/bin/anvil, node_modules, then PATH."""
    root = repo_root()
    candidates = [
        Path(os.environ["ANVIL"]) if os.environ.get("ANVIL") else None,
        root / ".local/bin/anvil",
        root / _NPM_BINARY,
    ]
    for candidate in candidates:
        if candidate is not None and candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise AnvilError("anvil not found: run `npm ci` in the source tree (or `make stack`)")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rpc_call(
    url: str, method: str, params: list[object] | None = None, timeout: float = 5.0
) -> object:
    """One JSON-RPC call over HTTP (stdlib only, for tooling that runs before web3 is set up)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    request = urllib.request.Request(  # noqa: S310 - loopback URL built by this module
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        reply = json.loads(response.read())
    if "error" in reply:
        raise AnvilError(f"{method} failed: {reply['error']}")
    return reply["result"]


@dataclass
class Anvil:
    """A running anvil process. Use as a context manager, or call `start`/`stop`."""

    port: int = 0
    chain_id: int = DEFAULT_CHAIN_ID
    block_time: float | None = DEFAULT_BLOCK_TIME
    accounts: int = 10
    mnemonic: str = DEFAULT_MNEMONIC
    state_file: Path | None = None
    log_file: Path | None = None
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, binary: Path) -> list[str]:
        args = [
            str(binary),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--accounts", str(self.accounts),
            "--mnemonic", self.mnemonic,
        ]  # fmt: skip
        if self.block_time:
            # Fixed-interval mining, like the production chain, so windows in blocks mean time.
            args += ["--block-time", str(self.block_time)]
        if self.state_file is not None:
            args += ["--state", str(self.state_file)]
        return args + self.extra_args

    def start(self, timeout: float = 30.0) -> Self:
        if self.process is not None:
            return self
        if not self.port:
            self.port = free_port()
        binary = find_anvil()
        log = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(  # noqa: S603 - argv built here, no shell
                self.command(binary),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            if log is not subprocess.DEVNULL and not isinstance(log, int):
                log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AnvilError(f"anvil exited with status {self.process.returncode} at start")
            try:
                if rpc_call(self.url, "eth_chainId", timeout=1.0) == hex(self.chain_id):
                    return self
            except (OSError, urllib.error.URLError, AnvilError):
                time.sleep(0.1)
        self.stop()
        raise AnvilError(f"anvil did not answer on {self.url} within {timeout:.0f} s")

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
