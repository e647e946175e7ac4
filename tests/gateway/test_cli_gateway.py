"""`gpu-provider gateway` teaches its TLS choices and refuses unsafe ones before starting."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gpu_provider.cli import main


def test_help_names_every_tls_source() -> None:
    result = CliRunner().invoke(main, ["gateway", "--help"])
    assert result.exit_code == 0
    for flag in (
        "--tls-cert",
        "--tls-key",
        "--tls-secret",
        "--devnet-self-signed",
        "--insecure-http",
        "certificateSecretRef",
        "/status",
    ):
        assert flag in result.output


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tls-cert", "cert.pem"], "--tls-cert and --tls-key go together"),
        (["--devnet-self-signed", "--insecure-http"], "choose one TLS source"),
        (["--tls-secret", "no-namespace"], "--tls-secret must be namespace/name"),
    ],
)
def test_unsafe_or_contradictory_tls_is_refused_before_start(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GPU_PROVIDER_CONFIG", raising=False)
    result = CliRunner().invoke(main, ["gateway", *argv])
    assert result.exit_code == 1
    assert message in result.output
