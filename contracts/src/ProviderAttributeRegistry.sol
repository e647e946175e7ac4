// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessManaged} from "./AccessManaged.sol";
import {IProviderRegistry} from "./IProviderRegistry.sol";
import {Roles} from "./Roles.sol";

/// @title ProviderAttributeRegistry
/// @notice A provider submits the resources it offers per category ("GPU" or "CPU") as
/// (resource id, units) pairs; they stay pending until a verifier approves them, which
/// replaces the provider's approved attributes in that category.
contract ProviderAttributeRegistry is AccessManaged {
    struct Attribute {
        uint256 id;
        uint256 units;
    }

    bytes32 public constant VERIFIER_ROLE = Roles.VERIFIER;

    IProviderRegistry public immutable providerRegistry;

    mapping(address => mapping(string => Attribute[])) public providerAttributes;
    mapping(address => mapping(string => Attribute[])) public pendingAttributes;

    error ArrayMismatch();
    error DuplicateId();
    error EmptyArray();
    error InvalidUnit();
    error NoPendingAttributes();
    error ProviderNotActive();
    error ProviderNotFound();
    /// @dev Devnet-only: a category other than "GPU" or "CPU".
    error InvalidCategory();

    event ProviderAttributesSubmitted(address indexed provider, string category, uint256[] ids, uint256[] units);
    event ProviderAttributesApproved(address indexed provider, string category, Attribute[] attributes);
    event ProviderAttributesRemoved(address indexed provider, string category);

    constructor(address _providerRegistryAddress, address _access) AccessManaged(_access) {
        if (_providerRegistryAddress == address(0)) revert InvalidAddress();
        providerRegistry = IProviderRegistry(_providerRegistryAddress);
    }

    /// @notice Replace the caller's pending attributes in `category`.
    function submitAttributes(string calldata category, uint256[] calldata ids, uint256[] calldata units) external {
        if (!providerRegistry.isRegisteredProvider(msg.sender)) revert ProviderNotFound();
        _requireCategory(category);
        if (ids.length == 0) revert EmptyArray();
        if (ids.length != units.length) revert ArrayMismatch();
        Attribute[] storage pending = pendingAttributes[msg.sender][category];
        delete pendingAttributes[msg.sender][category];
        for (uint256 i = 0; i < ids.length; i++) {
            if (units[i] == 0) revert InvalidUnit();
            for (uint256 j = 0; j < i; j++) {
                if (ids[j] == ids[i]) revert DuplicateId();
            }
            pending.push(Attribute(ids[i], units[i]));
        }
        emit ProviderAttributesSubmitted(msg.sender, category, ids, units);
    }

    /// @notice Verifier approves a provider's pending attributes in `category`.
    function approveAttributes(address provider, string calldata category) external {
        _checkRole(Roles.VERIFIER, msg.sender);
        Attribute[] storage pending = pendingAttributes[provider][category];
        if (pending.length == 0) revert NoPendingAttributes();
        delete providerAttributes[provider][category];
        Attribute[] storage approved = providerAttributes[provider][category];
        for (uint256 i = 0; i < pending.length; i++) {
            approved.push(pending[i]);
        }
        delete pendingAttributes[provider][category];
        emit ProviderAttributesApproved(provider, category, approved);
    }

    /// @notice Withdraw a provider's approved and pending attributes in `category`: how a
    /// verifier rejects a submission it does not confirm (a registry admin may too).
    function adminRemoveAttributes(address providerAddress, string calldata category) external {
        if (!_isRegistryAdmin(msg.sender)) _checkRole(Roles.VERIFIER, msg.sender);
        if (!providerRegistry.isRegisteredProvider(providerAddress)) revert ProviderNotFound();
        _requireCategory(category);
        delete providerAttributes[providerAddress][category];
        delete pendingAttributes[providerAddress][category];
        emit ProviderAttributesRemoved(providerAddress, category);
    }

    /// @notice Withdraw the caller's approved and pending attributes in `category`.
    function removeAttributes(string calldata category) external {
        if (!providerRegistry.isRegisteredProvider(msg.sender)) revert ProviderNotFound();
        _requireCategory(category);
        delete providerAttributes[msg.sender][category];
        delete pendingAttributes[msg.sender][category];
        emit ProviderAttributesRemoved(msg.sender, category);
    }

    function getAttributes(address _providerAddress, string calldata _category)
        external
        view
        returns (Attribute[] memory)
    {
        return providerAttributes[_providerAddress][_category];
    }

    function getPendingAttributes(address _providerAddress, string calldata _category)
        external
        view
        returns (Attribute[] memory)
    {
        return pendingAttributes[_providerAddress][_category];
    }

    function getProviderTrustTier(address _walletAddress) external view returns (IProviderRegistry.TrustTier tier) {
        return providerRegistry.getProviderTrustTier(_walletAddress);
    }

    function getProviderRewardWallet(address provider) external view returns (address rewardWallet) {
        return providerRegistry.getProviderRewardWallet(provider);
    }

    function _requireCategory(string calldata category) private pure {
        bytes32 hash = keccak256(bytes(category));
        if (hash != keccak256("GPU") && hash != keccak256("CPU")) revert InvalidCategory();
    }
}
