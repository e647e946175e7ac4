// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IOrderRequest
/// @notice Tenants' compute orders.
interface IOrderRequest {
    /// @dev PROVISIONED is part of Spheron's enum; the devnet never uses it.
    enum State {
        OPEN,
        PROVISIONED,
        CLOSED,
        MATCHED
    }

    enum Mode {
        Fizz,
        Provider
    }

    /// @dev One..Three are "secured" tiers, Four..Seven "community".
    enum Tier {
        One,
        Two,
        Three,
        Four,
        Five,
        Six,
        Seven
    }

    struct OrderSpecs {
        string specs;
        uint16 version;
        Mode mode;
        Tier[] tier;
    }

    struct InitialOrder {
        uint64 id;
        uint256 maxPrice;
        uint64 numOfBlocks;
        address token;
        address creator;
        State state;
        OrderSpecs specs;
    }

    struct OrderDetails {
        uint256 maxPrice;
        uint64 numOfBlocks;
        address token;
        string spec;
        uint16 version;
        Mode mode;
        Tier[] tier;
    }

    function getOrderById(uint64 orderId) external view returns (InitialOrder memory);
    function getPendingOrderById(uint64 orderId) external view returns (InitialOrder memory);
    function orderCreatedBlock(uint64 orderId) external view returns (uint256);
    function updateInitialOrderState(uint64 orderId, address providerAddress, uint256 amount) external;
    function updateOrderStateToClosed(uint64 orderId) external;
    function updatePendingOrder(uint64 orderId, uint256 acceptedPrice) external;
}
