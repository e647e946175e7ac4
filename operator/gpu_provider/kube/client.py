"""One way to reach the apiserver: a configured `ApiClient` and a bounded executor for its calls.

The `kubernetes` client is synchronous. Its calls run in one small thread pool per process so
that the event loop (Kopf's, the gateway's, the node agent's) never blocks on the network, and
so that a burst of calls cannot open an unbounded number of threads and connections.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final, ParamSpec, TypeVar

from kubernetes import client, config

__all__ = ["FIELD_MANAGER", "KubeConfigError", "new_api_client", "off_loop"]

FIELD_MANAGER: Final = "gpu-provider"
"""The server-side apply field manager of every write this project makes."""

_MAX_THREADS: Final = 8
_executor: ThreadPoolExecutor | None = None

P = ParamSpec("P")
T = TypeVar("T")


class KubeConfigError(RuntimeError):
    """Neither the given kubeconfig nor the in-cluster service account could be loaded."""


def new_api_client(kubeconfig: Path | str | None = None) -> client.ApiClient:
    """An `ApiClient` from `kubeconfig`, else `$KUBECONFIG`, else the in-cluster account."""
    path = kubeconfig or os.environ.get("KUBECONFIG")
    try:
        if path:
            api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=str(path)
            )
            return api
        configuration = client.Configuration()
        config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
        return client.ApiClient(configuration)
    except (config.ConfigException, OSError) as exc:
        where = f"kubeconfig {path}" if path else "the in-cluster service account"
        raise KubeConfigError(
            f"cannot reach Kubernetes with {where}: {exc}; pass --kubeconfig or set KUBECONFIG"
        ) from None


async def off_loop(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking `kubernetes` client call in the shared bounded thread pool."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=_MAX_THREADS, thread_name_prefix="kube")
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, functools.partial(fn, *args, **kwargs))
