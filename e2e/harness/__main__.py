"""`python -m e2e.harness up|down|status|demo`: the local stack behind `make stack` and `make demo`.

`up` leaves the cluster and anvil running in the background (kubeconfig in .local/kubeconfig,
chain in .local/devnet.json); `down` stops everything `up` started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

from e2e.harness import demo_processes
from e2e.harness.operator_setup import (
    OPERATOR_NAMESPACE,
    OPERATOR_SETTINGS,
    WALLET_SECRET,
    set_up_operator,
)
from e2e.harness.stack import (
    DEVNET_JSON,
    KUBECONFIG,
    LOCAL,
    KwokCluster,
    apply_objects,
    build_tools,
    kubectl,
    log,
)
from e2e.harness.topology import build_nodes
from e2e.harness.verifier_process import VERIFIER_DELAY, start_verifier, stop_verifier
from gpu_provider.api.crd import all_crds
from gpu_provider.devnet.anvil import Anvil
from gpu_provider.devnet.state import DevnetState
from gpu_provider.devnet.up import deploy_to

ANVIL_PID = LOCAL / "anvil.pid"
DEMO_CLUSTER = "gpu-provider"


def stack_up(block_time: float, verifier_delay: float = VERIFIER_DELAY) -> DevnetState:
    demo_processes.stop_all()  # an earlier `make demo`'s operator, gateway and matchmaker
    build_tools()
    cluster = KwokCluster(name=DEMO_CLUSTER)
    cluster.create()
    apply_objects(build_nodes())
    log(f"applied {len(build_nodes())} simulated Nodes from e2e/topology.yaml")
    apply_objects(all_crds())
    _wait_crds_established()
    log("installed CRDs: providernodes.gpuprovider.dev, gpuleases.gpuprovider.dev")
    state = chain_up(block_time)
    start_verifier(verifier_delay)
    set_up_operator(state)
    log(
        f"created Secret {OPERATOR_NAMESPACE}/{WALLET_SECRET} (the devnet provider's key) and "
        f"{OPERATOR_SETTINGS.relative_to(LOCAL.parent)}: run `make operator`"
    )
    return state


def _wait_crds_established(timeout: float = 60.0) -> None:
    # `kubectl wait --for=condition=Established crd --all` fails outright on a CRD whose
    # status has no conditions yet (just created), so poll until each one is Established.
    deadline = time.monotonic() + timeout
    while True:
        crds = json.loads(kubectl("get", "crd", "-o", "json"))["items"]
        pending = [
            crd["metadata"]["name"]
            for crd in crds
            if not any(
                c.get("type") == "Established" and c.get("status") == "True"
                for c in (crd.get("status") or {}).get("conditions") or []
            )
        ]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"CRDs not Established within {timeout:.0f} s: {pending}")
        time.sleep(0.2)


def chain_up(block_time: float) -> DevnetState:
    chain_down()
    node = Anvil(block_time=block_time, log_file=LOCAL / "anvil.log")
    node.start()
    assert node.process is not None
    # Detached on purpose: `make demo` leaves the chain running for exploration.
    ANVIL_PID.write_text(str(node.process.pid))
    log(f"anvil on {node.url} (chain id {node.chain_id}, a block every {block_time:g} s)")
    started = time.monotonic()
    state = deploy_to(node.url, block_time=block_time, state_file=DEVNET_JSON)
    log(
        f"deployed {len(state.contracts)} marketplace contracts in "
        f"{time.monotonic() - started:.1f} s; described in {DEVNET_JSON.relative_to(LOCAL.parent)}"
    )
    return state


def chain_down() -> None:
    if not ANVIL_PID.exists():
        return
    pid = int(ANVIL_PID.read_text())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(50):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.1)
    ANVIL_PID.unlink(missing_ok=True)


def stack_down() -> None:
    demo_processes.stop_all()
    KwokCluster(name=DEMO_CLUSTER).delete()
    KUBECONFIG.unlink(missing_ok=True)
    stop_verifier()
    chain_down()
    DEVNET_JSON.unlink(missing_ok=True)
    OPERATOR_SETTINGS.unlink(missing_ok=True)
    log("stopped the cluster and anvil")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.harness", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "demo"])
    parser.add_argument(
        "--block-time",
        type=float,
        default=None,
        help="seconds per block (default: 2 for up, 1 for demo, so its leases end sooner)",
    )
    args = parser.parse_args(argv)
    if args.command == "down":
        stack_down()
        return 0
    if args.command == "up":
        stack_up(2.0 if args.block_time is None else args.block_time)
        return 0
    from e2e.harness.demo import run_demo

    return run_demo(1.0 if args.block_time is None else args.block_time)


if __name__ == "__main__":
    sys.exit(main())
