"""How the chain client reads RPC answers: a rate limit is retried as it is, only an explicit
"range too large" answer shrinks an `eth_getLogs` range, `Retry-After` is honoured in both of
its forms, RPC URLs never show their API keys, and websocket URLs fail when settings load."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gpu_provider.chain.rpc import redact_url
from gpu_provider.chain.rpcerrors import (
    RpcErrorKind,
    classify,
    parse_retry_after,
    retry_after_hint,
)
from gpu_provider.config import ChainSettings

RATE, RANGE, OTHER = RpcErrorKind.RATE_LIMITED, RpcErrorKind.RANGE_TOO_LARGE, RpcErrorKind.OTHER

# (who, JSON-RPC code, message, kind). Codes -429 and -413 are HTTP statuses without a
# JSON-RPC body, as `FailoverProvider` hands them back.
WORDINGS = [
    (
        "alchemy",
        429,
        "Your app has exceeded its compute units per second capacity. If you have retries "
        "enabled, you can safely ignore this message. If not, check out "
        "https://docs.alchemy.com/reference/throughput",
        RATE,
    ),
    (
        "alchemy",
        -32602,
        "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block "
        "range and no limit on the response size, or you can request any block range with a "
        "cap of 10K logs in the response. Based on your parameters, this block range should "
        "work: [0x0, 0x1b7]",
        RANGE,
    ),
    (
        "alchemy",
        -32600,
        "Under the Free tier plan, you can make eth_getLogs requests with up to a 10 block "
        "range. Based on your parameters, this block range should work: [0x1, 0xa]. Upgrade "
        "to PAYG for expanded block range.",
        RANGE,
    ),
    ("infura", -32005, "daily request count exceeded, request rate limited", RATE),
    ("infura", -32005, "project ID request rate exceeded", RATE),
    (
        "infura",
        -32005,
        "query returned more than 10000 results. Try with this block range [0x1, 0x2a].",
        RANGE,
    ),
    (
        "quicknode",
        -32007,
        "15/second request limit reached - reduce calls per second or upgrade your account",
        RATE,
    ),
    ("quicknode", -32614, "eth_getLogs is limited to a 10,000 range", RANGE),
    (
        "quicknode",
        -32602,
        "eth_getLogs and eth_newFilter are limited to a 10,000 blocks range",
        RANGE,
    ),
    ("base public rpc", -32016, "over rate limit", RATE),
    ("base public rpc", -32000, "block range greater than 10000 max", RANGE),
    ("base public rpc", -32011, "no backends available for method", OTHER),
    ("geth", -32000, "query exceeds max results 10000", RANGE),
    ("geth", -32000, "exceed maximum block range: 10000", RANGE),
    ("geth", -32000, "exceed max addresses or topics per search position", OTHER),
    ("geth", -32000, "request timed out", OTHER),
    ("geth", -32000, "execution aborted (timeout = 5s)", OTHER),
    ("geth", -32000, "invalid block range params", OTHER),
    ("erigon", -32000, "query exceeds max block range 20000", RANGE),
    ("erigon", -32000, "too many requests, please try again in 2s", RATE),
    ("erigon", -32000, "batch limit 100 exceeded", OTHER),
    ("anvil", -32603, "Too many requests, reason: exceeded compute units per second", RATE),
    ("anvil", -32000, "BlockOutOfRangeError: block height is 10 but requested was 20", OTHER),
    ("geth", 3, "execution reverted: too many requests, try again in 5 blocks", OTHER),
    ("any proxy", -429, "HTTP 429: Too Many Requests", RATE),
    ("any proxy", -413, "HTTP 413: Request Entity Too Large", OTHER),
]


@pytest.mark.parametrize(
    ("who", "code", "message", "kind"), WORDINGS, ids=[f"{w[0]}:{w[2][:40]}" for w in WORDINGS]
)
def test_rpc_answers_are_classified_by_what_they_mean(
    who: str, code: int, message: str, kind: RpcErrorKind
) -> None:
    assert classify(code, message) is kind, f"{who} said {message!r}"


@pytest.mark.parametrize(
    ("message", "data", "seconds"),
    [
        ("too many requests, please try again in 2s", None, 2.0),
        ("rate limited: retry after 1.5 seconds", None, 1.5),
        ("Too many requests. Try again in 500ms", None, 0.5),
        ("Retry-After: 3", None, 3.0),
        ("try again in 1 minute", None, 60.0),
        (
            "project ID request rate exceeded",
            {"rate": {"allowed_rps": 1, "backoff_seconds": 30, "current_rps": 1.4}},
            30.0,
        ),
        ("over rate limit", {"retry_after": 4}, 4.0),
        ("over rate limit", None, None),
    ],
)
def test_retry_after_hints_in_messages_are_read(
    message: str, data: object, seconds: float | None
) -> None:
    assert retry_after_hint(message, data) == seconds


def test_retry_after_header_in_seconds_or_as_a_date() -> None:
    now = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(" 0 ", now) == 0.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:30 GMT", now) == 10.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", now) == 0.0  # in the past
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-3", now) is None


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://base-mainnet.g.alchemy.com/v2/SECRETKEY", "https://base-mainnet.g.alchemy.com"),
        ("https://mainnet.infura.io/v3/SECRETKEY?x=1", "https://mainnet.infura.io"),
        ("https://user:SECRET@rpc.example:8443/path", "https://rpc.example:8443"),
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("https://rpc.example/#SECRET", "https://rpc.example"),
        ("https://[::1]:8545/SECRET", "https://[::1]:8545"),
    ],
)
def test_rpc_urls_are_shown_without_credentials_path_or_query(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "SECRET" not in redact_url(url)


@pytest.mark.parametrize("url", ["ws://127.0.0.1:8546", "wss://base-mainnet.example/v2/key"])
def test_websocket_rpc_urls_are_refused_when_settings_load(url: str) -> None:
    with pytest.raises(ValidationError, match=r"polls over http\(s\)") as caught:
        ChainSettings(rpc_urls=["https://rpc.example", url])
    assert "key" not in caught.value.errors()[0]["msg"]  # the message shows the URL redacted


def test_http_rpc_urls_load() -> None:
    assert ChainSettings(rpc_urls=["https://a.example/v2/k", "http://b:8545"]).rpc_urls == [
        "https://a.example/v2/k",
        "http://b:8545",
    ]
