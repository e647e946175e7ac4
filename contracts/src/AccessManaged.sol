// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControlManager} from "./IAccessControlManager.sol";
import {Roles} from "./Roles.sol";

/// @title AccessManaged
/// @notice Base for contracts whose privileged calls are checked against the shared
/// AccessControlManager.
abstract contract AccessManaged {
    IAccessControlManager public immutable accessControl;

    constructor(address _access) {
        require(_access != address(0), "Access control is the zero address");
        accessControl = IAccessControlManager(_access);
    }

    modifier onlyAdmin() {
        require(accessControl.hasRole(Roles.DEFAULT_ADMIN, msg.sender), "Caller is not an admin");
        _;
    }

    modifier onlyRegistryAdmin() {
        require(_isRegistryAdmin(msg.sender), "Caller is not a registry admin");
        _;
    }

    function _isRegistryAdmin(address account) internal view returns (bool) {
        return accessControl.hasRole(Roles.REGISTRY_ADMIN, account)
            || accessControl.hasRole(Roles.DEFAULT_ADMIN, account);
    }
}
