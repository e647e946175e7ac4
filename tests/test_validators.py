"""Boundary validators: what a provider may write in a CR, and the messages for mistakes."""

from __future__ import annotations

import re

import pytest
from pydantic import TypeAdapter, ValidationError

from gpu_provider.api.v1alpha1.common import LabelSelector
from gpu_provider.api.validators import DecimalString, EvmAddress, HostUri, Quantity

ADDRESS = TypeAdapter(EvmAddress)
DECIMAL = TypeAdapter(DecimalString)
QUANTITY = TypeAdapter(Quantity)
HOST = TypeAdapter(HostUri)


@pytest.mark.parametrize(
    "raw",
    [
        "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
        "0xF39FD6E51AAD88F6F4CE6AB8827279CFFFB92266",
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    ],
)
def test_address_is_checksummed_on_output(raw: str) -> None:
    assert ADDRESS.validate_python(raw) == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92267", "checksum"),
        ("f39fd6e51aad88f6f4ce6ab8827279cfffb92266", "0x-prefixed"),
        ("0x1234", "20-byte"),
        (1234, "20-byte"),
    ],
)
def test_bad_address_rejected(raw: object, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        ADDRESS.validate_python(raw)


@pytest.mark.parametrize(("raw", "out"), [("2.49", "2.49"), ("0", "0"), (3, "3")])
def test_decimal_prices(raw: object, out: str) -> None:
    assert DECIMAL.validate_python(raw) == out


@pytest.mark.parametrize("raw", ["-1", "1e3", "01.5", "1.", "", "NaN", 2.5, True])
def test_bad_decimal_prices(raw: object) -> None:
    with pytest.raises(ValidationError, match="non-negative decimal"):
        DECIMAL.validate_python(raw)


@pytest.mark.parametrize("raw", ["500m", "16Gi", "2", "1.5", "1e3", "100Ki", 4])
def test_quantities(raw: object) -> None:
    assert QUANTITY.validate_python(raw) == str(raw)


@pytest.mark.parametrize("raw", ["-1", "16GB", "lots", "1.5.5", ""])
def test_bad_quantities(raw: str) -> None:
    with pytest.raises(ValidationError, match="Kubernetes quantity"):
        QUANTITY.validate_python(raw)


@pytest.mark.parametrize("raw", ["gpu.example.com", "Provider-1.example.com", "10.0.0.5", "x"])
def test_host_uri_is_a_bare_host_name(raw: str) -> None:
    assert HOST.validate_python(raw) == raw


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        # Spheron's SDK builds https://<hostUri>:8443 itself; a scheme or port breaks the URL.
        ("https://gpu.example.com", "without scheme"),
        ("https://x", "without scheme"),
        ("gpu.example.com:8443", "without scheme or port"),
        ("x:8443", "without scheme or port"),
        ("10.0.0.5:443", "without scheme or port"),
        ("gpu.example.com/x", "without scheme or port"),
        ("-bad-.com", "DNS name"),
        ("", "DNS name"),
        ("a" * 64 + ".example.com", "DNS name"),
    ],
)
def test_bad_host_uri(raw: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        HOST.validate_python(raw)


def test_host_uri_schema_pattern_refuses_scheme_and_port() -> None:
    pattern = HOST.json_schema()["pattern"]
    assert re.match(pattern, "gpu.example.com")
    for raw in ("https://x", "x:8443", "gpu.example.com/x"):
        assert not re.match(pattern, raw)


def test_label_selector_semantics() -> None:
    selector = LabelSelector.model_validate(
        {
            "matchLabels": {"gpuprovider.dev/offer": "true"},
            "matchExpressions": [
                {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["H100", "A100"]},
                {"key": "node.kubernetes.io/exclude", "operator": "DoesNotExist"},
            ],
        }
    )
    base = {"gpuprovider.dev/offer": "true", "nvidia.com/gpu.product": "H100"}
    assert selector.matches(base)
    assert not selector.matches({**base, "gpuprovider.dev/offer": "false"})
    assert not selector.matches({**base, "nvidia.com/gpu.product": "T4"})
    assert not selector.matches({**base, "node.kubernetes.io/exclude": ""})
    assert LabelSelector().matches({})


@pytest.mark.parametrize(
    "expr",
    [
        {"key": "a", "operator": "In", "values": []},
        {"key": "a", "operator": "Exists", "values": ["x"]},
    ],
)
def test_selector_values_must_fit_operator(expr: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="values must be non-empty for In/NotIn"):
        LabelSelector.model_validate({"matchExpressions": [expr]})


def test_bad_label_key_rejected() -> None:
    with pytest.raises(ValidationError, match="not a valid label key"):
        LabelSelector.model_validate({"matchLabels": {"bad key!": "x"}})
