"""Every GpuLease request of the chain daemon and the lease controller is bounded: an
apiserver that takes the connection and never answers fails the request (and the caller's
loop retries) instead of blocking a worker thread and its task for ever.

The "apiserver" here is a real TCP listener on 127.0.0.1 that accepts and never answers."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from gpu_provider.kube import leases, leasesink

BOUND = 0.5


@pytest.fixture
def silent_server() -> Iterator[str]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)  # read nothing, answer nothing

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


@pytest.fixture
def api(silent_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[client.ApiClient]:
    monkeypatch.setattr(leases, "REQUEST_TIMEOUT", BOUND)
    monkeypatch.setattr(leasesink, "REQUEST_TIMEOUT", BOUND)
    configuration = client.Configuration()
    configuration.host = silent_server
    with client.ApiClient(configuration) as made:
        yield made


CALLS: dict[str, Callable[[client.ApiClient], Awaitable[Any]]] = {
    "read": lambda api: leases.read_gpulease(api, "ns", "lease-1"),
    "patch": lambda api: leases.patch_gpulease(api, "ns", "lease-1", {"spec": {}}),
    "status": lambda api: leases.patch_gpulease_status(api, "ns", "lease-1", {"phase": "x"}),
    "list": lambda api: leasesink.list_provider_leases(api, "ns", "pn"),
    "create": lambda api: leasesink.create_gpulease(
        api, {"metadata": {"namespace": "ns", "name": "lease-1"}}, {}
    ),
}


@pytest.mark.parametrize("call", sorted(CALLS))
async def test_a_silent_apiserver_fails_the_request_within_its_bound(
    api: client.ApiClient, call: str
) -> None:
    started = time.monotonic()
    with pytest.raises(Exception, match=r"(?i)timed? ?out"):
        await asyncio.wait_for(CALLS[call](api), 10)
    assert time.monotonic() - started < 5 * BOUND + 2  # the bound, not the 10 s backstop
