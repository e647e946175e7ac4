// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControlManager} from "./IAccessControlManager.sol";
import {Roles} from "./Roles.sol";

/// @title AccessControlManager
/// @notice One role registry for the whole devnet marketplace (Spheron's contracts point at
/// theirs through `accessControl()`). Holders of DEFAULT_ADMIN_ROLE grant and revoke every
/// role; the deployer is the first admin.
contract AccessControlManager is IAccessControlManager {
    bytes32 public constant DEFAULT_ADMIN_ROLE = Roles.DEFAULT_ADMIN;
    bytes32 public constant MATCHMAKER_ROLE = Roles.MATCHMAKER;
    bytes32 public constant VERIFIER_ROLE = Roles.VERIFIER;
    bytes32 public constant REGISTRY_ADMIN_ROLE = Roles.REGISTRY_ADMIN;

    mapping(bytes32 => mapping(address => bool)) private _members;

    error AccessControlBadConfirmation();
    error AccessControlUnauthorizedAccount(address account, bytes32 neededRole);
    error InvalidAddress();

    event RoleGranted(bytes32 indexed role, address indexed account, address indexed sender);
    event RoleRevoked(bytes32 indexed role, address indexed account, address indexed sender);

    constructor() {
        _grant(Roles.DEFAULT_ADMIN, msg.sender);
    }

    modifier onlyAdmin() {
        if (!_members[Roles.DEFAULT_ADMIN][msg.sender]) {
            revert AccessControlUnauthorizedAccount(msg.sender, Roles.DEFAULT_ADMIN);
        }
        _;
    }

    function hasRole(bytes32 role, address account) public view returns (bool) {
        return _members[role][account];
    }

    /// @notice Every role is administered by DEFAULT_ADMIN_ROLE.
    function getRoleAdmin(bytes32) external pure returns (bytes32) {
        return Roles.DEFAULT_ADMIN;
    }

    function grantRole(bytes32 role, address account) external onlyAdmin {
        if (account == address(0)) revert InvalidAddress();
        _grant(role, account);
    }

    function revokeRole(bytes32 role, address account) external onlyAdmin {
        _revoke(role, account);
    }

    function renounceRole(bytes32 role, address callerConfirmation) external {
        if (callerConfirmation != msg.sender) revert AccessControlBadConfirmation();
        _revoke(role, msg.sender);
    }

    function _grant(bytes32 role, address account) private {
        if (!_members[role][account]) {
            _members[role][account] = true;
            emit RoleGranted(role, account, msg.sender);
        }
    }

    function _revoke(bytes32 role, address account) private {
        if (_members[role][account]) {
            _members[role][account] = false;
            emit RoleRevoked(role, account, msg.sender);
        }
    }
}
