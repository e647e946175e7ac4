"""`gpu-provider --help` teaches; unbuilt features say so and exit non-zero."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gpu_provider.cli import NOT_AVAILABLE_EXIT, main

COMMANDS = ["run", "gateway", "node-agent", "crds", "devnet", "demo", "version"]


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert f"  {command} " in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_teaching_help(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    # The first help paragraph is a real sentence, not a placeholder.
    body = result.output.split("\n\n", 2)[1]
    assert len(body.split()) >= 6, body


def test_version() -> None:
    result = CliRunner().invoke(main, ["version"])
    assert result.exit_code == 0
    assert "gpuprovider.dev/v1alpha1" in result.output


def test_run_without_kubernetes_credentials_says_how_to_give_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GPU_PROVIDER_CONFIG", raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    result = CliRunner().invoke(main, ["run"])
    assert result.exit_code == 1
    assert "in-cluster service account" in result.output
    assert "--kubeconfig" in result.output


def test_bad_settings_fail_before_anything_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPU_PROVIDER_CHAIN__CHAIN_ID", "abc")
    result = CliRunner().invoke(main, ["run"])
    assert result.exit_code == 1
    assert "chain.chain_id" in result.output
    assert "GPU_PROVIDER_CHAIN__CHAIN_ID" in result.output


@pytest.mark.parametrize(
    "argv",
    [["demo"]],
)
def test_unbuilt_feature_says_so_and_fails(
    argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GPU_PROVIDER_CONFIG", raising=False)
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == NOT_AVAILABLE_EXIT
    assert "not available yet" in result.output
