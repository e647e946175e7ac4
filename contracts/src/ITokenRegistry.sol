// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title ITokenRegistry
/// @notice The tokens the marketplace accepts for escrow and payment.
interface ITokenRegistry {
    struct Token {
        string symbol;
        uint128 decimals;
        address tokenAddress;
        uint256 minimumDeposit;
        bool isDefault;
    }

    function isAcceptedToken(address token) external view returns (bool);
    function getTokenDetails(address token) external view returns (Token memory);
}
