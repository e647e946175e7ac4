// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IComputeLease
/// @notice Leases: one per matched order, with the order's id.
interface IComputeLease {
    enum State {
        ACTIVE,
        TERMINATED
    }

    struct Lease {
        uint256 leaseId;
        uint256 fizzId;
        uint64 requestId;
        uint256 acceptedPrice;
        address providerAddress;
        address tenantAddress;
        uint32 startBlock;
        uint32 startTime;
        uint32 endTime;
        State state;
    }

    function createLease(uint64 orderId, uint256 acceptedPrice, address providerAddress, uint256 fizzId)
        external
        returns (uint256);
    function closeAndRenewLease(uint256 leaseId, uint256 acceptedPrice, address providerAddress) external;
    function getLease(uint256 leaseId) external view returns (Lease memory);
}
