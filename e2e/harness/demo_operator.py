"""The operator in `make demo`: `gpu-provider run` as `make operator` starts it, for one step.

It runs with `.local/operator.yaml` (written by `make stack`), logs to `.local/operator.log`
and is stopped with SIGTERM when the step is over (it releases its Lease and exits 0).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from e2e.harness.operator_setup import OPERATOR_SETTINGS
from e2e.harness.stack import KUBECONFIG, LOCAL, kubectl
from gpu_provider.chain.contracts import Contracts
from gpu_provider.chain.registry import read_provider
from gpu_provider.chain.rpc import connect
from gpu_provider.devnet.accounts import Role
from gpu_provider.devnet.state import DevnetState
from gpu_provider.market.advertise import ActualProvider

OPERATOR_LOG: Final = LOCAL / "operator.log"
ADVERTISE_TIMEOUT: Final = 180.0
RUN: Final = (sys.executable, "-m", "gpu_provider", "run")


@contextmanager
def running_operator() -> Iterator[subprocess.Popen[bytes]]:
    with OPERATOR_LOG.open("ab") as out:
        process = subprocess.Popen(
            [*RUN, "--config", str(OPERATOR_SETTINGS), "--kubeconfig", str(KUBECONFIG)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    print(f"gpu-provider run (pid {process.pid}, log {OPERATOR_LOG.relative_to(LOCAL.parent)})")
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        print(f"operator stopped on SIGTERM (exit {code}); `make operator` runs it again")


def _conditions(name: str) -> dict[str, tuple[str, str]]:
    try:
        body = json.loads(kubectl("get", "providernode", name, "-o", "json"))
    except RuntimeError:
        return {}
    return {
        c["type"]: (c["status"], c["reason"])
        for c in (body.get("status") or {}).get("conditions", [])
    }


def wait_advertised(state: DevnetState, name: str, process: subprocess.Popen[bytes]) -> bool:
    """Print each condition change until Ready; False (with the log's tail) if it is not."""
    deadline = time.monotonic() + ADVERTISE_TIMEOUT
    seen: dict[str, tuple[str, str]] = {}
    while time.monotonic() < deadline and process.poll() is None:
        now = _conditions(name)
        for type_, (status, reason) in now.items():
            if seen.get(type_) != (status, reason):
                print(f"  {type_:<17} {status:<6} {reason}")
        seen = now
        if seen.get("Ready", ("", ""))[0] == "True":
            return True
        time.sleep(0.5)
    print("UNEXPECTED: the provider did not become Ready; the operator's log ends with:")
    print("\n".join(OPERATOR_LOG.read_text(errors="replace").splitlines()[-30:]))
    return False


def _read_chain(state: DevnetState) -> ActualProvider:
    async def read() -> ActualProvider:
        settings = state.chain_settings()
        w3 = await connect(settings)
        try:
            return await read_provider(
                Contracts(w3, settings.contracts), state.account_address(Role.PROVIDER)
            )
        finally:
            await w3.provider.disconnect()

    return asyncio.run(read())


def show_provider(state: DevnetState, name: str) -> None:
    print(kubectl("get", "providernode", name))
    actual = _read_chain(state)
    gpus = ", ".join(f"{units} x id {rid}" for rid, units in actual.approved_units("GPU"))
    cpus = ", ".join(f"{units} cores" for _, units in actual.approved_units("CPU"))
    print(
        f"on chain: provider {state.account_address(Role.PROVIDER)} {actual.status.name}, "
        f"tier {actual.tier}, approved GPU attributes [{gpus}], CPU [{cpus}]"
    )
