"""Annotated types that validate values where they enter: CRs, settings, order specs.

Each type raises a `ValueError` whose message says what a valid value looks like; pydantic
adds the field path, so a rejected CR names the field and the rule.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Final

from eth_utils.address import is_checksum_address, to_checksum_address
from pydantic import AfterValidator, BeforeValidator, StringConstraints, WithJsonSchema

from gpu_provider.api.quantity import QUANTITY_PATTERN as QUANTITY_PATTERN
from gpu_provider.api.quantity import Quantity as Quantity

_HEX_ADDRESS: Final = re.compile(r"^0x[0-9a-fA-F]{40}$")
_DNS_LABEL: Final = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_SUBDOMAIN_PATTERN: Final = rf"^{_DNS_LABEL}([.]{_DNS_LABEL})*$"
_DNS_SUBDOMAIN: Final = re.compile(DNS_SUBDOMAIN_PATTERN)
_HOST_LABEL: Final = r"[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?"
_HOSTNAME: Final = re.compile(rf"^{_HOST_LABEL}(\.{_HOST_LABEL})*$")
_IPV4: Final = re.compile(
    r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$"
)
DECIMAL_PATTERN: Final = r"^(0|[1-9][0-9]*)(\.[0-9]+)?$"
_DECIMAL: Final = re.compile(DECIMAL_PATTERN)
# Label keys: optional DNS-subdomain prefix and a name of at most 63 characters.
_LABEL_NAME: Final = r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)"
LABEL_KEY_PATTERN: Final = rf"^({_DNS_LABEL}(\.{_DNS_LABEL})*/)?{_LABEL_NAME}$"
_LABEL_KEY: Final = re.compile(LABEL_KEY_PATTERN)
LABEL_VALUE_PATTERN: Final = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
_LABEL_VALUE: Final = re.compile(LABEL_VALUE_PATTERN)
EVM_ADDRESS_PATTERN: Final = _HEX_ADDRESS.pattern
HOST_URI_PATTERN: Final = r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$"


def _evm_address(value: object) -> str:
    if not isinstance(value, str) or not _HEX_ADDRESS.match(value):
        raise ValueError("must be a 0x-prefixed 20-byte hex EVM address")
    mixed = value[2:] != value[2:].lower() and value[2:] != value[2:].upper()
    # A mixed-case address carries an EIP-55 checksum; a wrong one is a typo, not a new address.
    if mixed and not is_checksum_address(value):
        raise ValueError("has an invalid EIP-55 checksum (check for a typo)")
    return str(to_checksum_address(value))


EvmAddress = Annotated[
    str,
    BeforeValidator(_evm_address),
    WithJsonSchema({"type": "string", "pattern": EVM_ADDRESS_PATTERN}),
]
"""An EVM address, accepted in any case and always returned EIP-55 checksummed."""


def _decimal_string(value: object) -> str:
    text = str(value) if isinstance(value, int | Decimal) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _DECIMAL.match(text):
        raise ValueError("must be a non-negative decimal number written as a string, e.g. '2.50'")
    try:
        Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the pattern already excludes these
        raise ValueError("must be a decimal number") from exc
    return text


DecimalString = Annotated[
    str,
    BeforeValidator(_decimal_string),
    WithJsonSchema({"type": "string", "pattern": DECIMAL_PATTERN}),
]
"""A non-negative decimal price such as '2.50' (strings keep prices exact on the wire)."""


def _host_uri(value: str) -> str:
    if "/" in value or ":" in value:
        raise ValueError(
            "must be a bare host name, without scheme or port, e.g. gpu.example.com: "
            "Spheron's SDK builds https://<hostUri>:8443 itself"
        )
    labels_fit = all(len(label) <= 63 for label in value.split("."))
    if len(value) > 253 or not labels_fit or not (_HOSTNAME.match(value) or _IPV4.match(value)):
        raise ValueError("must be a bare host name (a DNS name or IPv4 address)")
    return value


HostUri = Annotated[
    str,
    StringConstraints(strip_whitespace=True),
    AfterValidator(_host_uri),
    WithJsonSchema({"type": "string", "pattern": HOST_URI_PATTERN, "maxLength": 253}),
]
"""The provider's public host name, bare (`gpu.example.com`): the SDK adds scheme and port."""


def _dns_subdomain(value: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise ValueError("must be a lowercase RFC 1123 DNS subdomain (a-z, 0-9, '-', '.')")
    return value


DnsSubdomainName = Annotated[
    str,
    AfterValidator(_dns_subdomain),
    WithJsonSchema({"type": "string", "pattern": DNS_SUBDOMAIN_PATTERN, "maxLength": 253}),
]
"""A Kubernetes object name such as a Secret or StorageClass name."""


def _label_key(value: str) -> str:
    prefix, _, name = value.rpartition("/")
    if len(name) > 63 or len(prefix) > 253 or not _LABEL_KEY.match(value):
        raise ValueError(f"{value!r} is not a valid label key")
    return value


def _label_value(value: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise ValueError(f"{value!r} is not a valid label value")
    return value


LabelKey = Annotated[
    str,
    AfterValidator(_label_key),
    WithJsonSchema({"type": "string", "maxLength": 317}),
]
LabelValue = Annotated[
    str,
    AfterValidator(_label_value),
    WithJsonSchema({"type": "string", "pattern": LABEL_VALUE_PATTERN, "maxLength": 63}),
]
