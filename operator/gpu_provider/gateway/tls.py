"""The gateway's TLS context: from PEM files, from a `kubernetes.io/tls` Secret, or self-signed.

A self-signed certificate is made only when asked for (`--devnet-self-signed`): tenants'
SDKs talk to providers through Spheron's proxy, which checks the certificate registered
on-chain, and a provider that silently fell back to a throwaway certificate would fail
every tenant without saying why.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path
from typing import Final

__all__ = [
    "TlsError",
    "context_from_files",
    "context_from_pem",
    "load_pem",
    "make_self_signed",
    "read_files",
    "server_context",
]

SELF_SIGNED_DAYS: Final = 30


class TlsError(RuntimeError):
    """The certificate or key cannot be used; the message says which and why."""


def server_context() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def context_from_files(cert: Path, key: Path) -> ssl.SSLContext:
    cert_pem, key_pem = read_files(cert, key)
    return context_from_pem(cert_pem, key_pem, source=f"files {cert} and {key}")


def read_files(cert: Path, key: Path) -> tuple[bytes, bytes]:
    """The PEM bytes of a certificate file and a key file; `TlsError` naming a missing one."""
    pems = []
    for what, path in (("certificate", cert), ("key", key)):
        try:
            pems.append(path.read_bytes())
        except OSError as exc:
            raise TlsError(f"TLS {what} file {path} cannot be read: {exc.strerror}") from None
    return pems[0], pems[1]


def context_from_pem(cert_pem: bytes, key_pem: bytes, *, source: str) -> ssl.SSLContext:
    """A server context from PEM bytes; `source` names them in errors."""
    context = server_context()
    load_pem(context, cert_pem, key_pem, source=source)
    return context


def load_pem(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes, *, source: str) -> None:
    """Load a certificate chain and key into `context`; new handshakes use it from then on.

    `ssl` loads keys only from files: they go to a private temporary directory that is
    removed as soon as they are loaded.
    """
    with tempfile.TemporaryDirectory(prefix="gateway-tls-") as tmp:
        cert, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        cert.write_bytes(cert_pem)
        key.touch(mode=0o600)
        key.write_bytes(key_pem)
        try:
            context.load_cert_chain(certfile=str(cert), keyfile=str(key))
        except (ssl.SSLError, OSError) as exc:
            raise TlsError(
                f"cannot load the TLS certificate and key from {source}: {exc} (both must be "
                "PEM, and the key must belong to the certificate)"
            ) from None


def make_self_signed(directory: Path, hostnames: list[str]) -> tuple[Path, Path]:
    """Write a self-signed certificate for `hostnames` (and localhost) into `directory`.

    Uses the `openssl` command, present wherever the devnet runs; the production image never
    needs it.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TlsError(
            "--devnet-self-signed needs the `openssl` command; install it or pass "
            "--tls-cert/--tls-key"
        )
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "tls.crt", directory / "tls.key"
    names = dict.fromkeys([*hostnames, "localhost"])
    san = ",".join([f"IP:{n}" if _is_ip(n) else f"DNS:{n}" for n in names] + ["IP:127.0.0.1"])
    command = [
        openssl,
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        str(SELF_SIGNED_DAYS),
        "-subj",
        f"/CN={next(iter(names))}",
        "-addext",
        f"subjectAltName={san}",
        "-keyout",
        str(key),
        "-out",
        str(cert),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise TlsError(f"openssl could not make a self-signed certificate: {result.stderr}")
    os.chmod(key, 0o600)
    return cert, key


def _is_ip(name: str) -> bool:
    return name.replace(".", "").isdigit() or ":" in name
