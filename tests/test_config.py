"""Settings come from env and an optional YAML file; a bad value fails naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_provider.config import SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("GPU_PROVIDER_"):
            monkeypatch.delenv(key)


def test_defaults_are_the_local_devnet() -> None:
    settings = load_settings()
    assert settings.namespace == "gpu-provider-system"
    assert settings.chain.chain_id == 31337
    assert settings.chain.blocks_per_hour == 1800


def test_yaml_file_then_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text(
        "chain:\n"
        "  network: base-sepolia\n"
        "  chain_id: 84532\n"
        "  rpc_urls: [https://rpc-a.invalid, https://rpc-b.invalid]\n"
        "  contracts:\n"
        "    bid: '0x1582d6f9a7098b112dc76dd55a98d11d95f4702a'\n"
        "metrics_port: 9100\n"
    )
    monkeypatch.setenv("GPU_PROVIDER_METRICS_PORT", "9200")
    monkeypatch.setenv("GPU_PROVIDER_LOG_FORMAT", "json")
    settings = load_settings(config)
    assert settings.chain.network == "base-sepolia"
    assert settings.chain.rpc_urls == ["https://rpc-a.invalid", "https://rpc-b.invalid"]
    assert settings.chain.contracts.bid == "0x1582D6f9A7098B112dC76dd55a98d11d95f4702A"
    assert settings.metrics_port == 9200
    assert settings.log_format == "json"


def test_config_file_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "s.yaml"
    config.write_text("namespace: gpu-ops\n")
    monkeypatch.setenv("GPU_PROVIDER_CONFIG", str(config))
    assert load_settings().namespace == "gpu-ops"


@pytest.mark.parametrize(
    ("yaml_text", "env", "field"),
    [
        ("metrics_port: 70000\n", {}, "metrics_port"),
        ("chain:\n  rpc_urls: [ftp://x]\n", {}, "chain.rpc_urls"),
        ("chain:\n  chain_id: 0\n", {}, "chain.chain_id"),
        ("chain:\n  contracts:\n    bid: '0x12'\n", {}, "chain.contracts.bid"),
        ("namespace: Bad_Name\n", {}, "namespace"),
        ("colour: blue\n", {}, "colour"),
        ("", {"GPU_PROVIDER_CHAIN__CONFIRMATIONS": "-1"}, "chain.confirmations"),
        ("", {"GPU_PROVIDER_LOG_LEVEL": "LOUD"}, "log_level"),
    ],
)
def test_bad_value_names_the_field(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    yaml_text: str,
    env: dict[str, str],
    field: str,
) -> None:
    config = tmp_path / "s.yaml"
    config.write_text(yaml_text)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(config)
    assert f"\n  {field}:" in str(caught.value)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read settings file"):
        load_settings(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("chain: [unclosed\n")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_settings(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n")
    with pytest.raises(SettingsError, match="mapping"):
        load_settings(listy)
