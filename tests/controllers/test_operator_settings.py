"""`gpu-provider run`'s own settings: pace and election, from a file or the environment."""

from __future__ import annotations

import pytest

from gpu_provider.config import SettingsError, load_settings


def test_defaults_elect_with_a_15_second_lease_and_reconcile_every_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GPU_PROVIDER_CONFIG", raising=False)
    op = load_settings().operator
    assert (op.lease_name, op.lease_duration_seconds, op.lease_renew_seconds) == (
        "gpu-provider-operator",
        15,
        5,
    )
    assert op.reconcile_interval_seconds == 60
    assert op.probe_port == 8080


def test_the_environment_sets_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPU_PROVIDER_OPERATOR__RECONCILE_INTERVAL_SECONDS", "5")
    monkeypatch.setenv("GPU_PROVIDER_OPERATOR__PROBE_PORT", "18080")
    op = load_settings().operator
    assert (op.reconcile_interval_seconds, op.probe_port) == (5, 18080)


def test_a_renewal_slower_than_the_lease_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPU_PROVIDER_OPERATOR__LEASE_DURATION_SECONDS", "10")
    monkeypatch.setenv("GPU_PROVIDER_OPERATOR__LEASE_RENEW_SECONDS", "10")
    with pytest.raises(SettingsError, match="lease_renew_seconds must be shorter"):
        load_settings()
