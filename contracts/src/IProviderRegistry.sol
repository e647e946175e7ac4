// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IProviderRegistry
/// @notice Provider identities, their status, trust tier and accepted tokens.
interface IProviderRegistry {
    enum ProviderStatus {
        Unregistered,
        Registered,
        Active,
        Maintenance,
        Suspended,
        Deactivated
    }

    /// @dev One = the most trusted (>99% uptime per era), Seven = the least.
    enum TrustTier {
        One,
        Two,
        Three,
        Four,
        Five,
        Six,
        Seven
    }

    struct ProviderParams {
        address walletAddress;
        address[] paymentsAccepted;
        string spec;
        string hostUri;
        string certificate;
        address rewardWallet;
    }

    struct Provider {
        uint256 providerId;
        address walletAddress;
        address[] paymentsAccepted;
        string spec;
        string hostUri;
        string certificate;
        ProviderStatus status;
        TrustTier tier;
        uint256 joinTimestamp;
        address rewardWallet;
    }

    function isActiveProvider(address walletAddress) external view returns (bool);
    function isRegisteredProvider(address walletAddress) external view returns (bool);
    function isTokenAcceptedByProvider(address walletAddress, address tokenAddress) external view returns (bool);
    function getProviderId(address walletAddress) external view returns (uint256);
    function getProviderRewardWallet(address walletAddress) external view returns (address);
    function getProviderTrustTier(address walletAddress) external view returns (TrustTier);
}
