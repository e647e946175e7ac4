// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IEscrowProtocol
/// @notice Settlement of tenants' locked escrow into provider earnings.
interface IEscrowProtocol {
    function computeFee(uint256 amount) external view returns (uint256);
    function transferLocked(address from, address to, address token, uint256 amount, uint256 fees, bool isOperator)
        external;
}
