// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Roles
/// @notice Role identifiers shared by every devnet marketplace contract. They are the
/// keccak256 of the role's name, as OpenZeppelin's AccessControl does, so off-chain code can
/// compute them without a call.
library Roles {
    bytes32 internal constant DEFAULT_ADMIN = 0x00;
    bytes32 internal constant MATCHMAKER = keccak256("MATCHMAKER_ROLE");
    bytes32 internal constant VERIFIER = keccak256("VERIFIER_ROLE");
    bytes32 internal constant REGISTRY_ADMIN = keccak256("REGISTRY_ADMIN_ROLE");
}
