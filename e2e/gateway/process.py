"""Run `gpu-provider gateway` as its own process and talk to it like a tenant does; the
ProviderNode it serves (`example_provider_node`) and the module-long gateway (`serving`) of
the gateway and tenant gateway tests."""

from __future__ import annotations

import copy
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from kubernetes import client
from tests.samples import load_example

from gpu_provider.api.v1alpha1 import GROUP, VERSION

REFRESH_SECONDS = 1.0
NO_VERIFY = ssl.create_default_context()
NO_VERIFY.check_hostname = False
NO_VERIFY.verify_mode = ssl.CERT_NONE


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


def get(url: str, context: ssl.SSLContext = NO_VERIFY) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, context=context, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class Gateway:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log
        self.url = f"https://127.0.0.1:{port}"

    def get(self, path: str) -> tuple[int, Any]:
        return get(self.url + path)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)


def start_gateway(
    kubeconfig: Path, tmp: Path, *args: str, env: Mapping[str, str] | None = None
) -> Gateway:
    """`gpu-provider gateway *args`, once it answers; `env`: added to its environment."""
    port = free_port()
    log = tmp / f"gateway-{port}.log"
    command = [
        sys.executable,
        "-m",
        "gpu_provider",
        "gateway",
        "--kubeconfig",
        str(kubeconfig),
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--refresh-seconds",
        str(REFRESH_SECONDS),
        *args,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    gateway = Gateway(process, port, log)

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"gateway exited {process.returncode}: {log.read_text()}")
        try:
            return gateway.get("/version")[0] == 200
        except (OSError, ssl.SSLError):
            return False

    wait_for(answers, "the gateway to answer /version")
    return gateway


@contextmanager
def example_provider_node(api_client: client.ApiClient, name: str) -> Iterator[dict[str, Any]]:
    """The production-shaped example ProviderNode under `name`, as created; deleted after."""
    body = copy.deepcopy(load_example("providernode.yaml"))
    body["metadata"] = {"name": name}
    custom = client.CustomObjectsApi(api_client)
    yield cast(
        dict[str, Any], custom.create_cluster_custom_object(GROUP, VERSION, "providernodes", body)
    )
    custom.delete_cluster_custom_object(GROUP, VERSION, "providernodes", name)


@contextmanager
def serving(
    kubeconfig: Path, tmp: Path, provider_node: str, env: Mapping[str, str] | None = None
) -> Iterator[Gateway]:
    """A gateway for `provider_node` with a self-signed certificate; stopped after."""
    running = start_gateway(
        kubeconfig, tmp, "--provider-node", provider_node, "--devnet-self-signed", env=env
    )
    yield running
    running.stop()
