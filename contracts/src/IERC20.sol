// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IERC20
/// @notice The part of ERC-20 the escrow needs.
interface IERC20 {
    function transfer(address to, uint256 value) external returns (bool);
    function transferFrom(address from, address to, uint256 value) external returns (bool);
    function balanceOf(address account) external view returns (uint256);
}
