"""TLS choices: one source, never a silent self-signed certificate, no TLS only when asked."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from gpu_provider.gateway.server import GatewayOptions, OptionsError, TlsChoice, choose_tls
from gpu_provider.gateway.tls import (
    TlsError,
    context_from_files,
    context_from_pem,
    make_self_signed,
)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (GatewayOptions(), TlsChoice("provider-node")),
        (GatewayOptions(tls_cert=Path("c"), tls_key=Path("k")), TlsChoice("files")),
        (GatewayOptions(tls_secret="ns/gw-tls"), TlsChoice("secret", ("ns", "gw-tls"))),
        (GatewayOptions(devnet_self_signed=True), TlsChoice("self-signed")),
        (GatewayOptions(insecure_http=True), TlsChoice("none")),
    ],
)
def test_each_tls_flag_picks_its_source(options: GatewayOptions, expected: TlsChoice) -> None:
    assert choose_tls(options) == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (GatewayOptions(tls_cert=Path("c")), "go together"),
        (GatewayOptions(tls_secret="gw-tls"), "namespace/name"),
        (GatewayOptions(tls_secret="ns/gw-tls", insecure_http=True), "choose one"),
        (GatewayOptions(devnet_self_signed=True, tls_secret="a/b"), "choose one"),
    ],
)
def test_contradictory_tls_flags_are_refused(options: GatewayOptions, message: str) -> None:
    with pytest.raises(OptionsError, match=message):
        choose_tls(options)


def test_self_signed_certificate_loads_and_names_the_host(tmp_path: Path) -> None:
    cert, key = make_self_signed(tmp_path, ["gpu.example.com"])
    assert isinstance(context_from_files(cert, key), ssl.SSLContext)
    assert key.stat().st_mode & 0o077 == 0
    decoded = ssl._ssl._test_decode_cert(str(cert))  # type: ignore[attr-defined]
    assert ("DNS", "gpu.example.com") in decoded["subjectAltName"]


def test_a_key_that_is_not_the_certificates_is_refused_by_name(tmp_path: Path) -> None:
    cert, _ = make_self_signed(tmp_path / "a", ["a.example.com"])
    _, other_key = make_self_signed(tmp_path / "b", ["b.example.com"])
    with pytest.raises(TlsError, match=r"from Secret ns/gw: .*key must belong"):
        context_from_pem(cert.read_bytes(), other_key.read_bytes(), source="Secret ns/gw")


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(
        TlsError, match=r"certificate file .*nope\.pem cannot be read: No such file"
    ):
        context_from_files(tmp_path / "nope.pem", tmp_path / "key.pem")
