"""Who a tenant endpoint lets in: the token's cases, and the replay cache."""

from __future__ import annotations

import pytest
from eth_account import Account

from gpu_provider.market.auth import (
    MAX_CLOCK_SKEW_SECONDS,
    MAX_TOKEN_AGE_SECONDS,
    AuthError,
    ReplayCache,
    build_auth_header,
    verify_auth_header,
)

TENANT_KEY = "0x" + "5d" * 32
OTHER_KEY = "0x" + "a7" * 32
TENANT = Account.from_key(TENANT_KEY).address
NOW = 1_760_000_000


@pytest.mark.parametrize(
    ("signed_at", "key", "expected", "reason"),
    [
        (NOW, TENANT_KEY, TENANT, None),
        (NOW - MAX_TOKEN_AGE_SECONDS, TENANT_KEY, TENANT, None),
        (NOW - MAX_TOKEN_AGE_SECONDS - 1, TENANT_KEY, TENANT, "Expired"),
        (NOW + MAX_CLOCK_SKEW_SECONDS, TENANT_KEY, TENANT, None),
        (NOW + MAX_CLOCK_SKEW_SECONDS + 1, TENANT_KEY, TENANT, "FromTheFuture"),
        (NOW, OTHER_KEY, TENANT, "WrongSigner"),
    ],
)
def test_token_cases(signed_at: int, key: str, expected: str, reason: str | None) -> None:
    header = build_auth_header(key, now=signed_at)
    if reason is None:
        assert verify_auth_header(header, now=NOW, expected_signer=expected).address == TENANT
    else:
        with pytest.raises(AuthError) as caught:
            verify_auth_header(header, now=NOW, expected_signer=expected)
        assert caught.value.reason == reason


def test_a_token_may_be_resent_with_the_same_body_not_another() -> None:
    cache = ReplayCache()
    cache.check("token", "manifest:1", "sha-a", now=NOW)
    cache.check("token", "manifest:1", "sha-a", now=NOW + 3)  # a retry passes
    with pytest.raises(AuthError) as caught:
        cache.check("token", "manifest:1", "sha-b", now=NOW + 4)
    assert caught.value.reason == "Replayed"
    assert "different request body" in str(caught.value)


def test_the_same_token_for_another_lease_is_not_a_replay() -> None:
    # One wallet signing twice in one second makes the same token (RFC 6979 signatures).
    cache = ReplayCache()
    cache.check("token", "manifest:1", "sha-a", now=NOW)
    cache.check("token", "manifest:2", "sha-b", now=NOW)


def test_entries_expire_after_the_tokens_lifetime() -> None:
    cache = ReplayCache()
    assert cache.ttl == MAX_TOKEN_AGE_SECONDS + MAX_CLOCK_SKEW_SECONDS
    cache.check("token", "manifest:1", "sha-a", now=NOW)
    cache.check("other", "manifest:1", "sha-a", now=NOW + cache.ttl)
    assert len(cache) == 1  # the first expired (the token itself is refused as Expired by then)


def test_the_cache_is_bounded_oldest_first() -> None:
    cache = ReplayCache(max_entries=3)
    for n in range(5):
        cache.check(f"token-{n}", "s", "sha", now=NOW)
    assert len(cache) == 3
    cache.check("token-0", "s", "another-sha", now=NOW)  # forgotten, so taken as new
    with pytest.raises(AuthError):
        cache.check("token-4", "s", "another-sha", now=NOW)


def test_a_cache_needs_positive_bounds() -> None:
    with pytest.raises(ValueError, match="positive"):
        ReplayCache(ttl=0)
