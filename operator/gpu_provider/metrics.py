"""Prometheus metrics of `gpu-provider run`, served on `metrics_port` (`/metrics`).

One registry per process (not the client library's global one), so tests can start two
operators in one interpreter and the node agent's metrics never mix with these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["OperatorMetrics"]


def _registry() -> CollectorRegistry:
    return CollectorRegistry(auto_describe=True)


@dataclass
class OperatorMetrics:
    registry: CollectorRegistry = field(default_factory=_registry)

    def __post_init__(self) -> None:
        r = self.registry
        self.leader = Gauge(
            "gpu_provider_leader", "1 while this instance holds the operator Lease", registry=r
        )
        self.reconciles = Counter(
            "gpu_provider_reconciles",
            "ProviderNode reconciles, by result (ok, error, waiting)",
            ["provider", "result"],
            registry=r,
        )
        self.reconcile_seconds = Histogram(
            "gpu_provider_reconcile_seconds",
            "Time of one ProviderNode reconcile (inventory, status and chain)",
            ["provider"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.inventory_seconds = Histogram(
            "gpu_provider_inventory_seconds",
            "Time to compute the GPU inventory from the Node and Pod indexes",
            ["provider"],
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.gpus = Gauge(
            "gpu_provider_gpus",
            "GPUs per catalog model and state (total, allocated, unhealthy, offered)",
            ["provider", "model", "state"],
            registry=r,
        )
        self.nodes = Gauge(
            "gpu_provider_nodes",
            "Selected Nodes by whether they are offered (offered, excluded)",
            ["provider", "state"],
            registry=r,
        )
        self.condition = Gauge(
            "gpu_provider_condition",
            "1 when the ProviderNode condition is True, 0 otherwise",
            ["provider", "type"],
            registry=r,
        )
        self.pending_txs = Gauge(
            "gpu_provider_pending_transactions",
            "Open (signed or pending) transactions in status.pendingTxs",
            ["provider"],
            registry=r,
        )

        self._chain_daemon(r)

    def _chain_daemon(self, r: CollectorRegistry) -> None:
        """The chain daemon's (issue 9): bids, leases, transactions, chain lag, earnings.
        Bid counts are totals of the current leadership term's bid engine."""
        self.bids = Gauge(
            "gpu_provider_bids",
            "Orders by bid outcome this term (placed, won, lost, expired)",
            ["provider", "outcome"],
            registry=r,
        )
        self.bid_skips = Gauge(
            "gpu_provider_bid_skips",
            "Orders not bid on this term, by reason (market.eligibility.SkipReason)",
            ["provider", "reason"],
            registry=r,
        )
        self.bid_failures = Gauge(
            "gpu_provider_bid_failures",
            "Bids that failed this term, by error",
            ["provider", "error"],
            registry=r,
        )
        self.reservations = Gauge(
            "gpu_provider_reservations",
            "GPU holds in the reservation book, by kind (bid, lease)",
            ["provider", "kind"],
            registry=r,
        )
        self.leases = Gauge(
            "gpu_provider_leases",
            "GpuLeases of the ProviderNode by phase",
            ["provider", "phase"],
            registry=r,
        )
        self.intake_seconds = Histogram(
            "gpu_provider_lease_intake_seconds",
            "LeaseCreated block time to GpuLease created",
            ["provider"],
            buckets=(0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120),
            registry=r,
        )
        self.start_seconds = Histogram(
            "gpu_provider_lease_start_seconds",
            "Manifest applied (GpuLease Deploying) to every replica ready (Running)",
            ["provider"],
            buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800),
            registry=r,
        )
        self.leases_closed = Counter(
            "gpu_provider_leases_closed",
            "Leases that went Closing, by close reason and whether we sent closeLease",
            ["provider", "reason", "sent"],
            registry=r,
        )
        self.transactions = Counter(
            "gpu_provider_transactions",
            "Transactions by purpose and result (sent, failed, replaced)",
            ["provider", "purpose", "result"],
            registry=r,
        )
        self.chain_head = Gauge(
            "gpu_provider_chain_head", "Latest block the chain daemon saw", ["provider"], registry=r
        )
        self.chain_lag = Gauge(
            "gpu_provider_chain_lag_blocks",
            "Head minus the last block lease intake processed (confirmations included)",
            ["provider"],
            registry=r,
        )
        self.earnings = Gauge(
            "gpu_provider_earnings",
            "Provider earnings in base units, by token and kind (earned, withdrawn, balance)",
            ["provider", "token", "kind"],
            registry=r,
        )
        self.withdrawals = Counter(
            "gpu_provider_withdrawals",
            "Withdrawals of earnings mined, by token",
            ["provider", "token"],
            registry=r,
        )

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104 - scraped in-cluster
        start_http_server(port, addr=addr, registry=self.registry)
