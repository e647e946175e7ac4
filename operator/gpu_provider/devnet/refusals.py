"""A contract's refusal as a sentence a devnet user can act on.

The chain layer decodes a revert by its selector: a custom error (`BiddingClosed()`) comes
with its name, its arguments and, for a transaction, the sentence saying what it means
(`ContractRevert.sentence`, from `gpu_provider.chain.revert_sentences`). A revert with a string
(`Error(string)`) is its own sentence. This picks what the CLI prints after "... was refused: ".
"""

from __future__ import annotations

from typing import Any

from gpu_provider.chain.revert_sentences import sentence_for

__all__ = ["refusal_sentence"]


def refusal_sentence(revert: Any) -> str:
    """`the lease is already closed (LeaseAlreadyTerminated)`, or the revert's own reason."""
    reason = str(getattr(revert, "reason", revert))
    name = getattr(revert, "error_name", None)
    if name is None or name in ("Error", "Panic"):
        return reason
    sentence = getattr(revert, "sentence", None) or sentence_for(
        name, getattr(revert, "error_args", ())
    )
    return f"{sentence} ({name})" if sentence else reason
