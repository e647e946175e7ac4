"""Fixtures for the lifecycle benchmarks: the e2e session's kwok cluster (for the bid journal
ConfigMap and the GpuLeases) and the bidding e2e's devnet chain and providers."""

from __future__ import annotations

from e2e.bidding.conftest import providers  # noqa: F401
from e2e.chain.conftest import chain, deployed, market, people, w3  # noqa: F401
from e2e.conftest import api_client, core, crds, kwok_cluster, stack_tools  # noqa: F401
from e2e.devnet.conftest import devnet, devnet_state  # noqa: F401
