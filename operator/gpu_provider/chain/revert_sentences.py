"""What each of the contracts' custom errors means, as a sentence a person can act on.

`sentence_for("BiddingClosed", {})` → "the bidding window for this order has closed". Every
error of every devnet artifact has one (`tests/chain/test_custom_errors.py` checks), including
those the devnet never raises but Spheron's contracts do. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from eth_utils.crypto import keccak

__all__ = ["SENTENCES", "revert_sentence", "sentence_for"]

_ROLES: Final[Mapping[bytes, str]] = {
    bytes(32): "DEFAULT_ADMIN_ROLE",
    **{
        keccak(text=role): role
        for role in ("MATCHMAKER_ROLE", "VERIFIER_ROLE", "REGISTRY_ADMIN_ROLE")
    },
}

SENTENCES: Final[Mapping[str, str]] = {
    # Bid
    "AcceptedPriceBelowBid": "the accepted price is below the provider's bid",
    "BidPriceExceedsMaxPrice": "the price is above the order's maximum price per block",
    "BiddingClosed": "the bidding window for this order has closed",
    "FizzNodeNotActive": "the Fizz node is not active (the devnet has no Fizz nodes: use 0)",
    "FizzNotLinkedToProvider": "the Fizz node does not belong to this provider",
    "InvalidBidWindow": "the bid window must be at least one block",
    "LeaseNotActive": "the lease is not active",
    "OrderNotActive": "the order is no longer open for bids or matching",
    "ProviderHasActiveBid": "this provider has already bid on this order",
    "ProviderHasNoBid": "this provider has not bid on this order",
    "ProviderNotActive": "the provider is not active: register it and set its status to Active",
    "UnAuthourized": "the caller is not allowed to do this (matchmaker or the lease's provider)",
    "UpdateOrderNotAccepted": "the order update has not been accepted",
    # ComputeLease
    "LeaseAlreadyExists": "a lease with this id already exists",
    "LeaseAlreadyTerminated": "the lease is already closed",
    "LeaseNotFound": "no lease has this id",
    "OnlyTenantOrProvider": "only the lease's tenant or provider can do this",
    # escrow
    "InsufficientBalance": "the balance is too low: {available} available, {required} needed",
    "InvalidAmount": "the amount is not valid (zero, too large, or above the maximum)",
    "InvalidOperator": "operator (delegated) balances are not supported",
    "MinimumDepositNotMet": "the deposit is below the token's minimum deposit",
    "TransferFailed": "the token transfer failed",
    "UnauthorizedAccess": "the caller may not move these funds",
    "DifferentOwnerExists": "the operator already belongs to another owner",
    "EmptyOperatorArray": "no operators were given",
    "SafeERC20FailedOperation": "the token {token} refused the transfer",
    # OrderRequest
    "EmptyOrderSpec": "the order spec is empty",
    "InvalidBlockNumber": "the number of blocks is outside the allowed range",
    "InvalidOrderState": "the order is not in a state that allows this (no pending update?)",
    "NotAuthorized": "only the order's creator can do this",
    "NotBidContract": "only the Bid contract may call this",
    "OrderNotFound": "no order has this id",
    "OrderNotMatched": "the order is not matched to a provider",
    "OrderNotOpened": "the order is not open (a matched order ends by closing its lease)",
    "TokenCannotChange": "an order update cannot change the payment token",
    "UnAuthorized": "the caller is not allowed to do this",
    # ProviderRegistry
    "InvalidStatus": "a provider's status cannot be set to Unregistered",
    "ProviderAlreadyRegistered": "this address is already registered as a provider",
    "ProviderNotFound": "no provider is registered at this address",
    "StatusUnchanged": "the provider already has this status",
    "TokenAlreadyAccepted": "the provider already accepts this token",
    "TokenNotFound": "the provider does not accept this token",
    "UnauthorizedRegistration": "a provider can only register its own wallet address",
    "UnregisteredToken": "the token is not registered in the token registry",
    # ProviderAttributeRegistry
    "ArrayMismatch": "the lists have different lengths",
    "DuplicateId": "a resource id appears twice",
    "EmptyArray": "the list is empty",
    "InvalidCategory": 'the category must be "GPU" or "CPU"',
    "InvalidUnit": "every resource needs at least one unit",
    "NoPendingAttributes": "the provider has no attributes pending approval",
    # TokenRegistry
    "InvalidOwnerAddress": "the owner address is not valid",
    "InvalidTokenAddress": "the token address is not valid",
    "InvalidTokenSymbol": "the token symbol is empty",
    "TokenAlreadyRegistered": "the token (or its symbol) is already registered",
    "TokenNotAccepted": "the token is not accepted here",
    "TokenNotRegistered": "the token is not registered in the token registry",
    # shared by several contracts
    "AccessControlBadConfirmation": "an account can only renounce its own roles",
    "AccessControlUnauthorizedAccount": "{account} lacks the role {neededRole}",
    "InvalidAddress": "an address is missing or zero",
    "ReentrancyGuardReentrantCall": "re-entrant call refused",
    "InvalidInitialization": "the contract is already initialised",
    "NotInitializing": "the contract is not being initialised",
    # signatures (Spheron's ...WithSignature variants)
    "ECDSAInvalidSignature": "the signature is not valid",
    "ECDSAInvalidSignatureLength": "the signature has the wrong length ({length} bytes)",
    "ECDSAInvalidSignatureS": "the signature's s value is not valid",
    "InvalidNonce": "the signed request's nonce was already used or is wrong",
    "InvalidSignature": "the signature does not match the signer",
    "SignatureExpired": "the signed request has expired",
    # low-level calls
    "AddressEmptyCode": "there is no contract at {target}",
    "AddressInsufficientBalance": "{account} has too little native currency for the call",
    "FailedInnerCall": "a call to another contract failed",
    # ERC-20 (the payment token)
    "ERC20InsufficientAllowance": (
        "the token allowance is too low: {spender} may spend {allowance}, {needed} needed; "
        "approve more first"
    ),
    "ERC20InsufficientBalance": "{sender} holds {balance} tokens, {needed} needed",
    "ERC20InvalidApprover": "the approver {approver} is not valid",
    "ERC20InvalidReceiver": "tokens cannot be sent to {receiver}",
    "ERC20InvalidSender": "tokens cannot be sent from {sender}",
    "ERC20InvalidSpender": "the spender {spender} is not valid",
    "OwnableInvalidOwner": "{owner} cannot be the owner",
    "OwnableUnauthorizedAccount": "{account} is not the owner",
}
"""Error name → sentence; `{name}` placeholders are filled from the error's arguments."""

_WITHOUT_ARGS: Final[Mapping[str, str]] = {
    # OrderRequest's InsufficientBalance() carries no amounts.
    "InsufficientBalance": "the unlocked escrow balance is too low: deposit more first",
}


def _shown(value: Any) -> str:
    if isinstance(value, bytes):
        return _ROLES.get(value, "0x" + value.hex())
    return str(value)


def sentence_for(name: str, args: Mapping[str, Any] | Sequence[Any] = ()) -> str | None:
    """The sentence for custom error `name` with its arguments (by name), or None if unknown.

    Positional arguments fill the placeholders in order.
    """
    template = SENTENCES.get(name)
    if template is None:
        return None
    if not isinstance(args, Mapping):
        fields = [part.split("}")[0] for part in template.split("{")[1:]]
        args = dict(zip(fields, args, strict=False))
    try:
        return template.format(**{key: _shown(value) for key, value in args.items()})
    except (KeyError, IndexError):
        return _WITHOUT_ARGS.get(name, template.split(":")[0])


def revert_sentence(error_name: str | None, args: Mapping[str, Any], reason: str) -> str:
    """A sentence for any decoded revert: the custom error's, else the reason itself."""
    if error_name is None or error_name in ("Error", "Panic"):
        return reason
    return sentence_for(error_name, args) or reason
