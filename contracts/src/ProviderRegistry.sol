// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessManaged} from "./AccessManaged.sol";
import {IProviderRegistry} from "./IProviderRegistry.sol";
import {ITokenRegistry} from "./ITokenRegistry.sol";
import {Roles} from "./Roles.sol";

/// @title ProviderRegistry
/// @notice Providers register themselves (status Registered), keep their spec, host URI,
/// certificate, reward wallet and accepted tokens up to date, and switch themselves between
/// Active and Maintenance. Registry admins set any status and the trust tier.
/// @dev The devnet runs no uptime challenges, so new providers start in `defaultTier`: Four,
/// the first `community` tier, which Spheron's SDK orders by default (a tier-One provider
/// could never win those orders). A registry admin changes it with setDefaultTier and moves
/// a registered provider with updateProviderTier.
contract ProviderRegistry is IProviderRegistry, AccessManaged {
    bytes32 public constant VERIFIER_ROLE = Roles.VERIFIER;

    ITokenRegistry public immutable tokenRegistry;
    uint256 public nextProviderId = 1;
    /// @notice The tier a newly registered provider starts in.
    TrustTier public defaultTier = TrustTier.Four;

    mapping(uint256 => Provider) public providers;
    mapping(address => uint256) public addressToProviderId;
    mapping(address => uint256) public rewardAddressToProviderId;
    mapping(uint256 => mapping(address => bool)) public providerAcceptedTokens;

    error ProviderAlreadyRegistered();
    error ProviderNotFound();
    error StatusUnchanged();
    error TokenAlreadyAccepted();
    error TokenNotFound();
    error UnauthorizedRegistration();
    error UnregisteredToken();
    /// @dev Devnet-only: setProviderStatus(Unregistered).
    error InvalidStatus();

    event ProviderAdded(
        uint256 indexed providerId,
        address indexed walletAddress,
        string spec,
        string hostUri,
        string certificate,
        address[] paymentsAccepted,
        ProviderStatus status,
        TrustTier tier,
        uint256 joinTimestamp,
        address rewardWallet
    );
    event ProviderSpecUpdated(uint256 indexed providerId, string spec);
    event ProviderHostUriUpdated(uint256 indexed providerId, string hostUri);
    event ProviderCertificateUpdated(uint256 indexed providerId, string certificate);
    event ProviderRewardWalletUpdated(uint256 indexed providerId, address rewardWallet);
    event ProviderPaymentAdded(uint256 indexed providerId, address indexed tokenAddress);
    event ProviderPaymentRemoved(uint256 indexed providerId, address indexed tokenAddress);
    event ProviderStatusUpdated(uint256 indexed providerId, ProviderStatus status);
    event ProviderTierUpdated(address provider, TrustTier tier);
    event DefaultTierUpdated(TrustTier tier);

    constructor(address _tokenRegistryAddress, address _access) AccessManaged(_access) {
        if (_tokenRegistryAddress == address(0)) revert InvalidAddress();
        tokenRegistry = ITokenRegistry(_tokenRegistryAddress);
    }

    /// @notice Register the caller as a provider. `params.walletAddress` must be the caller.
    function addProvider(ProviderParams calldata params) external {
        if (params.walletAddress != msg.sender) revert UnauthorizedRegistration();
        if (addressToProviderId[msg.sender] != 0) revert ProviderAlreadyRegistered();
        if (params.rewardWallet == address(0)) revert InvalidAddress();
        uint256 providerId = nextProviderId++;
        Provider storage provider = providers[providerId];
        provider.providerId = providerId;
        provider.walletAddress = msg.sender;
        provider.spec = params.spec;
        provider.hostUri = params.hostUri;
        provider.certificate = params.certificate;
        provider.status = ProviderStatus.Registered;
        provider.tier = defaultTier;
        provider.joinTimestamp = block.timestamp;
        provider.rewardWallet = params.rewardWallet;
        for (uint256 i = 0; i < params.paymentsAccepted.length; i++) {
            _acceptToken(providerId, params.paymentsAccepted[i]);
        }
        addressToProviderId[msg.sender] = providerId;
        rewardAddressToProviderId[params.rewardWallet] = providerId;
        _emitAdded(provider);
    }

    function updateProviderSpec(string calldata _spec) external {
        uint256 providerId = _callerId();
        providers[providerId].spec = _spec;
        emit ProviderSpecUpdated(providerId, _spec);
    }

    function updateProviderHostUri(string calldata _hostUri) external {
        uint256 providerId = _callerId();
        providers[providerId].hostUri = _hostUri;
        emit ProviderHostUriUpdated(providerId, _hostUri);
    }

    function updateProviderCertificate(string calldata _certificate) external {
        uint256 providerId = _callerId();
        providers[providerId].certificate = _certificate;
        emit ProviderCertificateUpdated(providerId, _certificate);
    }

    function updateProviderRewardAddress(address _rewardWallet) external {
        if (_rewardWallet == address(0)) revert InvalidAddress();
        uint256 providerId = _callerId();
        address previous = providers[providerId].rewardWallet;
        // Several providers may share a reward wallet: only drop the reverse entry if it is ours.
        if (rewardAddressToProviderId[previous] == providerId) {
            delete rewardAddressToProviderId[previous];
        }
        providers[providerId].rewardWallet = _rewardWallet;
        rewardAddressToProviderId[_rewardWallet] = providerId;
        emit ProviderRewardWalletUpdated(providerId, _rewardWallet);
    }

    function addAcceptedPayment(address _tokenAddress) external {
        _acceptToken(_callerId(), _tokenAddress);
    }

    function removeAcceptedPayment(address _tokenAddress) external {
        uint256 providerId = _callerId();
        if (!providerAcceptedTokens[providerId][_tokenAddress]) revert TokenNotFound();
        providerAcceptedTokens[providerId][_tokenAddress] = false;
        address[] storage accepted = providers[providerId].paymentsAccepted;
        uint256 last = accepted.length - 1;
        for (uint256 i = 0; i <= last; i++) {
            if (accepted[i] == _tokenAddress) {
                accepted[i] = accepted[last];
                accepted.pop();
                break;
            }
        }
        emit ProviderPaymentRemoved(providerId, _tokenAddress);
    }

    /// @notice A provider moves itself between Active and Maintenance (not out of Suspended or
    /// Deactivated); a registry admin sets any status but Unregistered. Anything else needs
    /// the registry admin role (AccessControlUnauthorizedAccount).
    function setProviderStatus(address _providerAddress, ProviderStatus _status) external {
        uint256 providerId = _idOf(_providerAddress);
        if (_status == ProviderStatus.Unregistered) revert InvalidStatus();
        Provider storage provider = providers[providerId];
        if (provider.status == _status) revert StatusUnchanged();
        if (!_isRegistryAdmin(msg.sender)) {
            bool ownChoice = msg.sender == _providerAddress
                && (_status == ProviderStatus.Active || _status == ProviderStatus.Maintenance)
                && provider.status != ProviderStatus.Suspended && provider.status != ProviderStatus.Deactivated;
            if (!ownChoice) revert AccessControlUnauthorizedAccount(msg.sender, Roles.REGISTRY_ADMIN);
        }
        provider.status = _status;
        emit ProviderStatusUpdated(providerId, _status);
    }

    /// @notice The tier newly registered providers start in (registered ones keep theirs).
    function setDefaultTier(TrustTier _tier) external onlyRegistryAdmin {
        defaultTier = _tier;
        emit DefaultTierUpdated(_tier);
    }

    function updateProviderTier(address _provider, TrustTier _tier) external onlyRegistryAdmin {
        providers[_idOf(_provider)].tier = _tier;
        emit ProviderTierUpdated(_provider, _tier);
    }

    function getProvider(uint256 _providerId)
        external
        view
        returns (
            string memory spec,
            string memory hostUri,
            string memory certificate,
            address[] memory paymentsAccepted,
            ProviderStatus status,
            TrustTier tier,
            uint256 joinTimestamp,
            address walletAddress,
            address rewardWallet
        )
    {
        if (_providerId == 0 || _providerId >= nextProviderId) revert ProviderNotFound();
        Provider storage p = providers[_providerId];
        return (
            p.spec,
            p.hostUri,
            p.certificate,
            p.paymentsAccepted,
            p.status,
            p.tier,
            p.joinTimestamp,
            p.walletAddress,
            p.rewardWallet
        );
    }

    function getProviderByAddress(address _walletAddress)
        external
        view
        returns (
            string memory spec,
            string memory hostUri,
            string memory certificate,
            address[] memory paymentsAccepted,
            ProviderStatus status,
            TrustTier tier,
            uint256 joinTimestamp,
            address rewardWallet
        )
    {
        Provider storage p = providers[_idOf(_walletAddress)];
        return (
            p.spec, p.hostUri, p.certificate, p.paymentsAccepted, p.status, p.tier, p.joinTimestamp, p.rewardWallet
        );
    }

    function getAllProviders() external view returns (Provider[] memory all) {
        all = new Provider[](nextProviderId - 1);
        for (uint256 i = 0; i < all.length; i++) {
            all[i] = providers[i + 1];
        }
    }

    function getProviderId(address _walletAddress) external view returns (uint256) {
        return _idOf(_walletAddress);
    }

    function getProviderWallet(uint256 _providerId) external view returns (address) {
        if (_providerId == 0 || _providerId >= nextProviderId) revert ProviderNotFound();
        return providers[_providerId].walletAddress;
    }

    function getProviderRewardWallet(address _walletAddress) external view returns (address) {
        return providers[_idOf(_walletAddress)].rewardWallet;
    }

    function getProviderAddressByRewardAddress(address _rewardAddress) external view returns (address) {
        uint256 providerId = rewardAddressToProviderId[_rewardAddress];
        if (providerId == 0) revert ProviderNotFound();
        return providers[providerId].walletAddress;
    }

    /// @notice Unregistered for an address that never registered.
    function getProviderStatus(address _walletAddress) external view returns (ProviderStatus) {
        return providers[addressToProviderId[_walletAddress]].status;
    }

    function getProviderTrustTier(address _walletAddress) external view returns (TrustTier) {
        return providers[_idOf(_walletAddress)].tier;
    }

    function isActiveProvider(address _walletAddress) external view returns (bool) {
        uint256 providerId = addressToProviderId[_walletAddress];
        return providerId != 0 && providers[providerId].status == ProviderStatus.Active;
    }

    function isRegisteredProvider(address _walletAddress) external view returns (bool) {
        return addressToProviderId[_walletAddress] != 0;
    }

    function isTokenAcceptedByProvider(address _walletAddress, address _tokenAddress) external view returns (bool) {
        return providerAcceptedTokens[addressToProviderId[_walletAddress]][_tokenAddress];
    }

    function _idOf(address walletAddress) private view returns (uint256 providerId) {
        providerId = addressToProviderId[walletAddress];
        if (providerId == 0) revert ProviderNotFound();
    }

    function _callerId() private view returns (uint256) {
        return _idOf(msg.sender);
    }

    function _acceptToken(uint256 providerId, address token) private {
        if (!tokenRegistry.isAcceptedToken(token)) revert UnregisteredToken();
        if (providerAcceptedTokens[providerId][token]) revert TokenAlreadyAccepted();
        providerAcceptedTokens[providerId][token] = true;
        providers[providerId].paymentsAccepted.push(token);
        emit ProviderPaymentAdded(providerId, token);
    }

    function _emitAdded(Provider storage p) private {
        emit ProviderAdded(
            p.providerId,
            p.walletAddress,
            p.spec,
            p.hostUri,
            p.certificate,
            p.paymentsAccepted,
            p.status,
            p.tier,
            p.joinTimestamp,
            p.rewardWallet
        );
    }
}
