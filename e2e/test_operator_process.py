"""The e2e harness's `gpu-provider run` start: a port another process took between
`free_port()` and the operator's bind (the operator exits with Errno 98) costs a second start
on fresh ports, not a failed test.

The operator needs no cluster to bind its ports and answer /healthz: its kubeconfig points at a
closed port, and the race is made certain by holding the port it is handed first.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.harness import operator_process
from e2e.harness.operator_process import start_operator

NOWHERE = "http://127.0.0.1:9"
KUBECONFIG = f"""apiVersion: v1
kind: Config
clusters: [{{name: nowhere, cluster: {{server: "{NOWHERE}"}}}}]
users: [{{name: nobody, user: {{token: unused}}}}]
contexts: [{{name: nowhere, context: {{cluster: nowhere, user: nobody}}}}]
current-context: nowhere
"""


def _settings(**operator: Any) -> dict[str, Any]:
    return {"namespace": "harness", "chain": {"rpc_urls": [NOWHERE]}, "operator": operator}


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    return path


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port held (listening) by this test for as long as it runs."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield int(held.getsockname()[1])


@pytest.mark.parametrize("taken", ["metrics_port", "probe_port"])
def test_a_port_taken_before_the_bind_costs_a_second_start(
    taken: str,
    taken_port: int,
    kubeconfig: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # start_operator asks for the metrics port first, then the probe port.
    handed = iter([taken_port] if taken == "metrics_port" else [0, taken_port])
    free = operator_process.free_port
    monkeypatch.setattr(operator_process, "free_port", lambda: next(handed, 0) or free())

    operator = start_operator(_settings(), kubeconfig=kubeconfig, workdir=tmp_path, name="op")
    try:
        assert operator.healthy()
        assert taken_port not in (operator.metrics_port, operator.probe_port)
        log = operator.log()
        assert "address already in use" in log.lower()
        assert "start 1 of 4 found port" in log
    finally:
        operator.stop(signal.SIGTERM)


def test_an_operator_that_exits_for_another_reason_fails_the_start_with_its_log(
    kubeconfig: Path, tmp_path: Path
) -> None:
    with pytest.raises(AssertionError, match="exited") as failed:
        start_operator(
            _settings(reconcile_interval_seconds=-1),
            kubeconfig=kubeconfig,
            workdir=tmp_path,
            name="op",
        )
    assert "reconcile_interval_seconds" in str(failed.value)
