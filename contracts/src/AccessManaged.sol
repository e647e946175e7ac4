// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControlManager} from "./IAccessControlManager.sol";
import {Roles} from "./Roles.sol";

/// @title AccessManaged
/// @notice Base for contracts whose privileged calls are checked against the shared
/// AccessControlManager.
/// @dev A missing role reverts with OpenZeppelin's AccessControlUnauthorizedAccount, as
/// Spheron's AccessControl-based contracts do; every contract built on this one declares it.
abstract contract AccessManaged {
    error AccessControlUnauthorizedAccount(address account, bytes32 neededRole);
    error InvalidAddress();

    IAccessControlManager public immutable accessControl;

    constructor(address _access) {
        if (_access == address(0)) revert InvalidAddress();
        accessControl = IAccessControlManager(_access);
    }

    modifier onlyAdmin() {
        _checkRole(Roles.DEFAULT_ADMIN, msg.sender);
        _;
    }

    modifier onlyRegistryAdmin() {
        if (!_isRegistryAdmin(msg.sender)) {
            revert AccessControlUnauthorizedAccount(msg.sender, Roles.REGISTRY_ADMIN);
        }
        _;
    }

    function _checkRole(bytes32 role, address account) internal view {
        if (!accessControl.hasRole(role, account)) revert AccessControlUnauthorizedAccount(account, role);
    }

    function _isRegistryAdmin(address account) internal view returns (bool) {
        return accessControl.hasRole(Roles.REGISTRY_ADMIN, account)
            || accessControl.hasRole(Roles.DEFAULT_ADMIN, account);
    }
}
