// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IEscrowUser
/// @notice Tenant escrow: the marketplace contracts lock, unlock and spend tenants' deposits.
interface IEscrowUser {
    struct UserTokenData {
        uint128 lockedBalance;
        uint128 unlockedBalance;
    }

    function getUserData(address user, address token, bool isOperator) external view returns (UserTokenData memory);
    function lockTokens(address user, address token, uint256 amount, bool isOperator) external;
    function unlockTokens(address user, address token, uint256 amount, bool isOperator) external;
    function reduceLockedTokens(address user, address token, uint256 amount, bool isOperator) external;
    function transferEarnedTokens(address token, address rewardWallet, uint256 amount) external;
}
