// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IAccessControlManager
/// @notice What the marketplace contracts ask the shared role registry.
interface IAccessControlManager {
    function hasRole(bytes32 role, address account) external view returns (bool);
}
