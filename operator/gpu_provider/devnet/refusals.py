"""A contract's refusal as a sentence a devnet user can act on.

The chain layer decodes a revert by its selector: a custom error (`BiddingClosed()`) comes
with its name, its arguments and a `sentence` saying what it means; a revert with a string
(`Error(string)`) is its own sentence. This picks what the CLI prints after "... was refused: ".
"""

from __future__ import annotations

__all__ = ["refusal_sentence"]


def refusal_sentence(revert: object) -> str:
    """`the bidding window of order 3 has closed (BiddingClosed)`, or the revert's own reason."""
    reason = str(getattr(revert, "reason", revert))
    name = getattr(revert, "error_name", None)
    if name is None or name == "Error":
        return reason
    sentence = getattr(revert, "sentence", None)
    if isinstance(sentence, str) and sentence:
        return f"{sentence.rstrip('.')} ({name})"
    return reason
