"""Errors raised by `gpu_provider.chain`; each message says what happened and what to do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from web3.exceptions import ProviderConnectionError


class ChainError(Exception):
    """Base class of every error raised by `gpu_provider.chain`."""


class RpcError(ChainError):
    """An endpoint answered a JSON-RPC request with an error object."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method} failed: {message} (code {code})")
        self.method = method
        self.code = code
        self.rpc_message = message
        self.data = data

    @property
    def text(self) -> str:
        """Lower-cased message, for matching the client-specific wording of known errors."""
        return self.rpc_message.lower()


class RpcUnavailable(ChainError, ProviderConnectionError):
    """No configured endpoint answered (connection refused, timeout, HTTP 5xx or 429).

    Also a web3.py `ProviderConnectionError`, so web3.py treats it as "not connected".
    """


class RpcRateLimited(RpcUnavailable):
    """The endpoints are rate limiting: nothing was processed, send the same request again.

    `retry_after` is the wait in seconds the answer asked for (None: it did not say).
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ChainIdMismatch(ChainError):
    """An endpoint serves a different chain than the settings name."""


class ReorgBeyondConfirmations(ChainError):
    """Blocks whose events were already delivered as confirmed are no longer canonical.

    The chain reorganised deeper than `confirmations`. Delivered events cannot be taken back:
    the caller must re-read the affected state from the chain and restart the stream after
    `resume_from` (`Checkpoint(resume_from)`: the newest block both chains share).
    """

    def __init__(
        self,
        message: str,
        resume_from: int,
        *,
        block_number: int | None = None,
        ours: str | None = None,
        theirs: str | None = None,
        verified: bool = True,
    ) -> None:
        super().__init__(message)
        self.resume_from = resume_from
        self.block_number = block_number
        """The replaced block, with the hash the stream had (`ours`) and the chain's now."""
        self.ours = ours
        self.theirs = theirs
        self.verified = verified
        """False when no remembered block below the fork is still canonical, so
        `resume_from` is a margin below the forked block rather than a shared block."""


class WalletError(ChainError):
    """A key or keystore could not be loaded. Messages never contain key material."""


class TransactionError(ChainError):
    """A transaction could not be sent or did not complete."""


class FeeCapExceeded(TransactionError):
    """The fee needed to get the transaction mined now is above the configured cap."""


class NonceConflict(TransactionError):
    """The nonce was used by a transaction this manager did not send."""


class IntentConflict(TransactionError):
    """An idempotency key was reused for a different transaction."""


class TransactionTimeout(TransactionError):
    """No receipt within the wait limit. The intent stays recorded; `send` again to resume."""


class TransactionReverted(TransactionError):
    """The transaction reverted (when estimated, or when mined); `reason` says why.

    `error_name` and `error_args` (by argument name) are set when the revert data could be
    decoded: `Error` (`{"message"}`), `Panic` (`{"code"}`) or, as `ContractRevert`, a
    contract's custom error.
    """

    def __init__(
        self,
        reason: str,
        *,
        tx_hash: str | None = None,
        error_name: str | None = None,
        error_args: Mapping[str, Any] | None = None,
    ) -> None:
        where = f" in {tx_hash}" if tx_hash else " (not sent: gas estimation reverted)"
        super().__init__(f"transaction reverted{where}: {reason}")
        self.reason = reason
        self.tx_hash = tx_hash
        self.error_name = error_name
        self.error_args: Mapping[str, Any] = dict(error_args or {})


class ContractRevert(TransactionReverted):
    """A revert with one of the contracts' custom errors (Spheron's, e.g. `BiddingClosed()`),
    decoded by its selector.

    `error_name` is the error's name, `error_args` its arguments by name, `contract` the
    contract whose ABI declares it, `selector` its 4-byte selector (0x-hex) and `sentence`
    what it means in words (`gpu_provider.chain.revert_sentences`).
    """

    def __init__(
        self,
        reason: str,
        *,
        error_name: str,
        error_args: Mapping[str, Any],
        selector: str,
        sentence: str,
        contract: str | None = None,
        tx_hash: str | None = None,
    ) -> None:
        super().__init__(
            f"{reason}: {sentence}", tx_hash=tx_hash, error_name=error_name, error_args=error_args
        )
        self.reason = reason
        self.error_name: str = error_name
        self.selector = selector
        self.sentence = sentence
        self.contract = contract


class ContractNotConfigured(ChainError):
    """A contract's address is missing from `chain.contracts` in the settings."""
