// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessManaged} from "./AccessManaged.sol";
import {IComputeLease} from "./IComputeLease.sol";
import {IOrderRequest} from "./IOrderRequest.sol";
import {IProviderRegistry} from "./IProviderRegistry.sol";
import {Roles} from "./Roles.sol";

/// @title Bid
/// @notice Active providers bid on an open order within `bidWindow` blocks of its creation;
/// the matchmaker picks one bid and the lease starts (ComputeLease, lease id = order id).
/// The lease's provider accepts the tenant's order updates here.
contract Bid is AccessManaged {
    enum BidState {
        Pending,
        Accepted,
        Rejected
    }

    struct ProviderBid {
        uint256 requestId;
        address provider;
        uint256 bidPrice;
        uint256 fizzId;
        uint256 timestamp;
        BidState state;
    }

    IProviderRegistry public immutable providerRegistry;
    IOrderRequest public immutable orderRequest;
    IComputeLease public immutable lease;
    /// @notice Bids are accepted up to and including block orderCreatedBlock + bidWindow.
    uint64 public bidWindow;

    mapping(uint64 => ProviderBid[]) public bids;
    /// @dev Position in bids[orderId] plus one; 0 = no bid.
    mapping(address => mapping(uint64 => uint256)) private _bidSlot;

    error BidPriceExceedsMaxPrice();
    error BiddingClosed();
    error FizzNodeNotActive();
    error FizzNotLinkedToProvider();
    error LeaseNotActive();
    error OrderNotActive();
    error OrderNotFound();
    error ProviderHasActiveBid();
    error ProviderNotActive();
    error TokenNotAccepted();
    error UnAuthourized();
    error UpdateOrderNotAccepted();
    // Spheron's name from the escrow contracts, for a zero bid price.
    error InvalidAmount();
    /// @dev Devnet-only: a bid window of zero blocks; a provider without a bid on the order;
    /// an accepted price below the provider's bid.
    error InvalidBidWindow();
    error ProviderHasNoBid();
    error AcceptedPriceBelowBid();

    event BidPlaced(uint64 orderId, uint256 bidPrice, address provider, uint256 fizz);
    event OrderMatched(
        uint64 orderId,
        address providerAddress,
        uint256 fizzId,
        uint256 providerId,
        uint256 acceptedPrice,
        address creator
    );
    event UpdateRequestAccepted(uint64 orderId, address providerAddress, address tenant);
    event LeaseUpdated(uint64 orderId, address providerAddress, address tenant, uint256 acceptedPrice);
    event BidWindowUpdated(uint64 bidWindow);

    constructor(
        address _providerRegistryAddress,
        address _orderRequest,
        address _lease,
        address _access,
        uint64 _bidWindow
    ) AccessManaged(_access) {
        if (_providerRegistryAddress == address(0) || _orderRequest == address(0) || _lease == address(0)) {
            revert InvalidAddress();
        }
        if (_bidWindow == 0) revert InvalidBidWindow();
        providerRegistry = IProviderRegistry(_providerRegistryAddress);
        orderRequest = IOrderRequest(_orderRequest);
        lease = IComputeLease(_lease);
        bidWindow = _bidWindow;
    }

    function setBidWindow(uint64 _bidWindow) external onlyAdmin {
        if (_bidWindow == 0) revert InvalidBidWindow();
        bidWindow = _bidWindow;
        emit BidWindowUpdated(_bidWindow);
    }

    /// @notice Bid `_bidPrice` per block on an open order. `_fizzId` must be 0 (no Fizz nodes
    /// on the devnet). One bid per provider and order.
    function placeBid(uint64 _orderId, uint256 _bidPrice, uint256 _fizzId) external {
        if (_fizzId != 0) revert FizzNodeNotActive();
        IOrderRequest.InitialOrder memory order = orderRequest.getOrderById(_orderId);
        if (order.state != IOrderRequest.State.OPEN) revert OrderNotActive();
        if (block.number > orderRequest.orderCreatedBlock(_orderId) + bidWindow) revert BiddingClosed();
        if (!providerRegistry.isActiveProvider(msg.sender)) revert ProviderNotActive();
        if (!providerRegistry.isTokenAcceptedByProvider(msg.sender, order.token)) revert TokenNotAccepted();
        if (_bidPrice == 0) revert InvalidAmount();
        if (_bidPrice > order.maxPrice) revert BidPriceExceedsMaxPrice();
        if (_bidSlot[msg.sender][_orderId] != 0) revert ProviderHasActiveBid();
        bids[_orderId].push(ProviderBid(_orderId, msg.sender, _bidPrice, _fizzId, block.timestamp, BidState.Pending));
        _bidSlot[msg.sender][_orderId] = bids[_orderId].length;
        emit BidPlaced(_orderId, _bidPrice, msg.sender, _fizzId);
    }

    /// @notice Matchmaker accepts `_providerAddress`'s bid at `_acceptedPrice` per block (at
    /// least the bid, at most the order's max price); the lease starts in this block.
    /// @return The lease id (the order id).
    function matchOrder(uint64 _orderId, address _providerAddress, uint256 _acceptedPrice)
        external
        returns (uint256)
    {
        if (!accessControl.hasRole(Roles.MATCHMAKER, msg.sender)) revert UnAuthourized();
        IOrderRequest.InitialOrder memory order = orderRequest.getOrderById(_orderId);
        if (order.state != IOrderRequest.State.OPEN) revert OrderNotActive();
        uint256 slot = _bidSlot[_providerAddress][_orderId];
        if (slot == 0) revert ProviderHasNoBid();
        ProviderBid[] storage orderBids = bids[_orderId];
        if (_acceptedPrice < orderBids[slot - 1].bidPrice) revert AcceptedPriceBelowBid();
        if (_acceptedPrice > order.maxPrice) revert BidPriceExceedsMaxPrice();
        if (!providerRegistry.isActiveProvider(_providerAddress)) revert ProviderNotActive();
        for (uint256 i = 0; i < orderBids.length; i++) {
            orderBids[i].state = i == slot - 1 ? BidState.Accepted : BidState.Rejected;
        }
        orderRequest.updateInitialOrderState(_orderId, _providerAddress, _acceptedPrice);
        uint256 leaseId = lease.createLease(_orderId, _acceptedPrice, _providerAddress, 0);
        emit OrderMatched(
            _orderId, _providerAddress, 0, providerRegistry.getProviderId(_providerAddress), _acceptedPrice, order.creator
        );
        return leaseId;
    }

    /// @notice The lease's provider accepts the tenant's pending order update. The price per
    /// block stays the lease's, or drops to the update's max price if that is lower.
    function acceptUpdate(uint64 _orderId) external {
        IComputeLease.Lease memory current = lease.getLease(_orderId);
        if (current.state != IComputeLease.State.ACTIVE) revert LeaseNotActive();
        if (msg.sender != current.providerAddress) revert UnAuthourized();
        uint256 updateMaxPrice = orderRequest.getPendingOrderById(_orderId).maxPrice;
        uint256 price = current.acceptedPrice < updateMaxPrice ? current.acceptedPrice : updateMaxPrice;
        lease.closeAndRenewLease(_orderId, price, msg.sender);
        emit UpdateRequestAccepted(_orderId, msg.sender, current.tenantAddress);
        emit LeaseUpdated(_orderId, msg.sender, current.tenantAddress, price);
    }

    function getAllBidsForOrder(uint64 _orderId) external view returns (ProviderBid[] memory) {
        return bids[_orderId];
    }

    function getProviderOrderBid(uint64 _orderId, address _provider) external view returns (ProviderBid memory) {
        uint256 slot = _bidSlot[_provider][_orderId];
        if (slot == 0) revert ProviderHasNoBid();
        return bids[_orderId][slot - 1];
    }

    /// @notice The provider's bid on the order, all zero when it has none.
    function providerOrderBid(address _provider, uint64 _orderId)
        external
        view
        returns (
            uint256 requestId,
            address provider,
            uint256 bidPrice,
            uint256 fizzId,
            uint256 timestamp,
            BidState state
        )
    {
        uint256 slot = _bidSlot[_provider][_orderId];
        if (slot == 0) {
            return (0, address(0), 0, 0, 0, BidState.Pending);
        }
        ProviderBid storage found = bids[_orderId][slot - 1];
        return (found.requestId, found.provider, found.bidPrice, found.fizzId, found.timestamp, found.state);
    }
}
