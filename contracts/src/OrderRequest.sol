// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessManaged} from "./AccessManaged.sol";
import {IEscrowUser} from "./IEscrowUser.sol";
import {IOrderRequest} from "./IOrderRequest.sol";
import {ITokenRegistry} from "./ITokenRegistry.sol";

/// @title OrderRequest
/// @notice A tenant creates an order with a per-block max price and a duration in blocks;
/// maxPrice × numOfBlocks of the tenant's escrow is locked until the order closes. On match
/// (through Bid) the order becomes MATCHED and the lock shrinks to acceptedPrice × numOfBlocks;
/// ComputeLease closes it when the lease ends. Updates to a matched order wait, with their own
/// escrow locked, until the provider accepts them (Bid.acceptUpdate).
contract OrderRequest is IOrderRequest, AccessManaged {
    IEscrowUser public immutable escrowUser;
    ITokenRegistry public immutable tokenRegistry;
    address public bid;
    address public lease;
    uint256 public maxBlockNumber;
    uint256 public minBlockNumber;
    uint64 public nextOrderId = 1;

    mapping(uint64 => InitialOrder) public orders;
    mapping(uint64 => uint256) public orderCreatedBlock;
    mapping(uint64 => bool) public hasPendingUpdate;
    mapping(uint64 => InitialOrder) private _pendingOrders;
    mapping(address => uint64[]) private _providerOrders;

    error ECDSAInvalidSignature();
    error ECDSAInvalidSignatureLength(uint256 length);
    error ECDSAInvalidSignatureS(bytes32 s);
    error InsufficientBalance();
    error InvalidAmount();
    error InvalidBlockNumber();
    error InvalidNonce();
    error InvalidOrderState();
    error InvalidSignature();
    error LeaseAlreadyTerminated();
    error NotAuthorized();
    error NotBidContract();
    error OrderNotActive();
    error OrderNotFound();
    error OrderNotMatched();
    error OrderNotOpened();
    error SignatureExpired();
    error UnAuthorized();
    // Spheron's name from Bid and EscrowUser, for the same check here.
    error TokenNotAccepted();
    /// @dev Devnet-only: an order with an empty spec; an update that changes the token.
    error EmptyOrderSpec();
    error TokenCannotChange();

    event OrderCreated(
        uint64 orderId,
        address creator,
        uint256 maxPrice,
        uint64 numOfBlocks,
        address token,
        string specs,
        uint16 version,
        Mode mode
    );
    event OrderUpdateRequested(
        uint64 _orderId,
        address user,
        uint256 maxPrice,
        uint64 numOfBlocks,
        address token,
        string specs,
        uint16 version,
        Mode mode
    );
    event OrderStateChanged(uint64 orderId, uint256 maxPrice, State state);
    event OrderMarkedAsClosed(uint64 indexed _orderId);
    event LeaseAddressUpdated(address lease);
    event BidAddressUpdated(address bid);
    event MaxBlockNumberUpdated(uint256 maxBlockNumber);
    event MinBlockNumberUpdated(uint256 minBlockNumber);

    constructor(
        address _escrowUser,
        address _tokenRegistryAddress,
        address _access,
        uint256 _maxBlockNumber,
        uint256 _minBlockNumber
    ) AccessManaged(_access) {
        if (_escrowUser == address(0) || _tokenRegistryAddress == address(0)) revert InvalidAddress();
        if (_minBlockNumber == 0 || _minBlockNumber > _maxBlockNumber) revert InvalidBlockNumber();
        escrowUser = IEscrowUser(_escrowUser);
        tokenRegistry = ITokenRegistry(_tokenRegistryAddress);
        maxBlockNumber = _maxBlockNumber;
        minBlockNumber = _minBlockNumber;
    }

    modifier onlyBid() {
        if (msg.sender != bid) revert NotBidContract();
        _;
    }

    modifier onlyLease() {
        if (msg.sender != lease) revert UnAuthorized();
        _;
    }

    function setMarketContracts(address _bid, address _lease) external onlyAdmin {
        if (_bid == address(0) || _lease == address(0)) revert InvalidAddress();
        bid = _bid;
        lease = _lease;
        emit BidAddressUpdated(_bid);
        emit LeaseAddressUpdated(_lease);
    }

    function setMaxBlockNumber(uint256 _maxBlockNumber) external onlyAdmin {
        if (_maxBlockNumber < minBlockNumber) revert InvalidBlockNumber();
        maxBlockNumber = _maxBlockNumber;
        emit MaxBlockNumberUpdated(_maxBlockNumber);
    }

    function setMinBlockNumber(uint256 _minBlockNumber) external onlyAdmin {
        if (_minBlockNumber == 0 || _minBlockNumber > maxBlockNumber) revert InvalidBlockNumber();
        minBlockNumber = _minBlockNumber;
        emit MinBlockNumberUpdated(_minBlockNumber);
    }

    /// @notice Create an order; needs maxPrice × numOfBlocks unlocked in the caller's escrow.
    function createOrder(OrderDetails calldata details) external {
        _validate(details);
        uint256 escrowNeeded = details.maxPrice * details.numOfBlocks;
        _requireUnlocked(msg.sender, details.token, escrowNeeded);
        uint64 orderId = nextOrderId++;
        InitialOrder storage order = orders[orderId];
        order.id = orderId;
        order.creator = msg.sender;
        order.state = State.OPEN;
        _writeTerms(order, details);
        orderCreatedBlock[orderId] = block.number;
        escrowUser.lockTokens(msg.sender, details.token, escrowNeeded, false);
        emit OrderCreated(
            orderId,
            msg.sender,
            details.maxPrice,
            details.numOfBlocks,
            details.token,
            details.spec,
            details.version,
            details.mode
        );
    }

    /// @notice Request new terms for a matched order. maxPrice × numOfBlocks of the new terms
    /// is locked now (replacing an earlier unaccepted request) so the provider's acceptance
    /// cannot fail for lack of funds; the lease keeps its terms until then.
    function updateInitialOrder(uint64 _orderId, OrderDetails calldata details) external {
        InitialOrder storage order = _existing(_orderId);
        if (msg.sender != order.creator) revert NotAuthorized();
        if (order.state != State.MATCHED) revert OrderNotMatched();
        if (details.token != order.token) revert TokenCannotChange();
        _validate(details);
        _releasePending(_orderId);
        uint256 escrowNeeded = details.maxPrice * details.numOfBlocks;
        _requireUnlocked(msg.sender, details.token, escrowNeeded);
        InitialOrder storage pending = _pendingOrders[_orderId];
        pending.id = _orderId;
        pending.creator = msg.sender;
        pending.state = State.MATCHED;
        _writeTerms(pending, details);
        hasPendingUpdate[_orderId] = true;
        escrowUser.lockTokens(msg.sender, details.token, escrowNeeded, false);
        emit OrderUpdateRequested(
            _orderId,
            msg.sender,
            details.maxPrice,
            details.numOfBlocks,
            details.token,
            details.spec,
            details.version,
            details.mode
        );
    }

    /// @notice Bid marks the order MATCHED at `_amount` per block and the lock shrinks to it.
    function updateInitialOrderState(uint64 _orderId, address _providerAddress, uint256 _amount) external onlyBid {
        InitialOrder storage order = _existing(_orderId);
        if (order.state != State.OPEN) revert OrderNotOpened();
        if (_amount > order.maxPrice) revert InvalidAmount();
        order.state = State.MATCHED;
        _providerOrders[_providerAddress].push(_orderId);
        uint256 excess = (order.maxPrice - _amount) * order.numOfBlocks;
        if (excess > 0) {
            escrowUser.unlockTokens(order.creator, order.token, excess, false);
        }
        emit OrderStateChanged(_orderId, order.maxPrice, State.MATCHED);
    }

    /// @notice The creator closes an OPEN order (its escrow is unlocked); ComputeLease closes a
    /// MATCHED one when its lease ends (the lease settles the escrow).
    function updateOrderStateToClosed(uint64 _orderId) external {
        InitialOrder storage order = _existing(_orderId);
        if (msg.sender == lease) {
            if (order.state != State.MATCHED) revert OrderNotMatched();
            _releasePending(_orderId);
        } else {
            if (msg.sender != order.creator) revert NotAuthorized();
            // A matched order is closed by closing its lease.
            if (order.state != State.OPEN) revert OrderNotOpened();
            escrowUser.unlockTokens(order.creator, order.token, order.maxPrice * order.numOfBlocks, false);
        }
        order.state = State.CLOSED;
        emit OrderMarkedAsClosed(_orderId);
        emit OrderStateChanged(_orderId, order.maxPrice, State.CLOSED);
    }

    /// @notice ComputeLease applies the pending update at `_acceptedPrice` per block; the
    /// update's lock shrinks to acceptedPrice × numOfBlocks.
    function updatePendingOrder(uint64 _orderId, uint256 _acceptedPrice) external onlyLease {
        if (!hasPendingUpdate[_orderId]) revert InvalidOrderState();
        InitialOrder storage pending = _pendingOrders[_orderId];
        if (_acceptedPrice > pending.maxPrice) revert InvalidAmount();
        uint256 excess = (pending.maxPrice - _acceptedPrice) * pending.numOfBlocks;
        if (excess > 0) {
            escrowUser.unlockTokens(pending.creator, pending.token, excess, false);
        }
        InitialOrder storage order = orders[_orderId];
        order.maxPrice = pending.maxPrice;
        order.numOfBlocks = pending.numOfBlocks;
        order.specs = pending.specs;
        delete _pendingOrders[_orderId];
        hasPendingUpdate[_orderId] = false;
        emit OrderStateChanged(_orderId, order.maxPrice, order.state);
    }

    function getOrderById(uint64 _orderId) external view returns (InitialOrder memory) {
        return _existing(_orderId);
    }

    function getPendingOrderById(uint64 _orderId) external view returns (InitialOrder memory) {
        if (!hasPendingUpdate[_orderId]) revert InvalidOrderState();
        return _pendingOrders[_orderId];
    }

    /// @notice Ids of the orders matched to `_providerAddress`, oldest first.
    function getOrderByProvider(address _providerAddress) external view returns (uint64[] memory) {
        return _providerOrders[_providerAddress];
    }

    function _existing(uint64 orderId) private view returns (InitialOrder storage order) {
        order = orders[orderId];
        if (order.creator == address(0)) revert OrderNotFound();
    }

    function _validate(OrderDetails calldata details) private view {
        if (!tokenRegistry.isAcceptedToken(details.token)) revert TokenNotAccepted();
        // The upper bound keeps maxPrice × numOfBlocks far from overflow; escrow balances are
        // uint128 anyway.
        if (details.maxPrice == 0 || details.maxPrice > type(uint128).max) revert InvalidAmount();
        if (details.numOfBlocks < minBlockNumber || details.numOfBlocks > maxBlockNumber) revert InvalidBlockNumber();
        if (bytes(details.spec).length == 0) revert EmptyOrderSpec();
    }

    function _requireUnlocked(address user, address token, uint256 amount) private view {
        if (escrowUser.getUserData(user, token, false).unlockedBalance < amount) revert InsufficientBalance();
    }

    function _writeTerms(InitialOrder storage order, OrderDetails calldata details) private {
        order.maxPrice = details.maxPrice;
        order.numOfBlocks = details.numOfBlocks;
        order.token = details.token;
        order.specs.specs = details.spec;
        order.specs.version = details.version;
        order.specs.mode = details.mode;
        order.specs.tier = details.tier;
    }

    function _releasePending(uint64 orderId) private {
        if (!hasPendingUpdate[orderId]) {
            return;
        }
        InitialOrder storage pending = _pendingOrders[orderId];
        escrowUser.unlockTokens(pending.creator, pending.token, pending.maxPrice * pending.numOfBlocks, false);
        delete _pendingOrders[orderId];
        hasPendingUpdate[orderId] = false;
    }
}
