// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessManaged} from "./AccessManaged.sol";
import {IComputeLease} from "./IComputeLease.sol";
import {IEscrowProtocol} from "./IEscrowProtocol.sol";
import {IEscrowUser} from "./IEscrowUser.sol";
import {IOrderRequest} from "./IOrderRequest.sol";

/// @title ComputeLease
/// @notice Leases created by Bid when the matchmaker matches an order (lease id = order id).
/// The tenant pays acceptedPrice per block from its locked escrow, for at most the order's
/// numOfBlocks: a settlement (settleLease, or closing the lease) credits the blocks elapsed
/// since the last one to the provider; closing also unlocks what is left for the tenant.
contract ComputeLease is IComputeLease, AccessManaged {
    /// @dev Escrow bookkeeping per lease, kept apart so `leases` keeps Spheron's layout.
    /// lockedRemaining == acceptedPrice × (startBlock + numOfBlocks − settledBlock) while
    /// the lease is active.
    struct LeaseEscrow {
        address token;
        uint64 numOfBlocks;
        uint64 settledBlock;
        uint256 lockedRemaining;
    }

    IOrderRequest public immutable orderRequest;
    IEscrowUser public immutable escrowUser;
    IEscrowProtocol public immutable escrowProtocol;
    address public bid;

    mapping(uint256 => Lease) public leases;
    mapping(uint256 => LeaseEscrow) public leaseEscrow;
    mapping(address => uint256[]) public providerLeases;
    mapping(address => uint256[]) public tenantLeases;

    error ECDSAInvalidSignature();
    error ECDSAInvalidSignatureLength(uint256 length);
    error ECDSAInvalidSignatureS(bytes32 s);
    error InvalidNonce();
    error InvalidSignature();
    error LeaseAlreadyTerminated();
    error OnlyTenantOrProvider();
    error ReentrancyGuardReentrantCall();
    error SignatureExpired();
    // Spheron's name from OrderRequest, for the same check here.
    error NotBidContract();
    /// @dev Devnet-only: no lease has this id; a lease created twice.
    error LeaseNotFound();
    error LeaseAlreadyExists();

    event LeaseCreated(
        uint256 leaseId,
        uint256 fizzId,
        uint64 requestId,
        uint256 acceptedPrice,
        address providerAddress,
        address tenantAddress,
        uint32 startBlock,
        uint32 startTime,
        uint32 endTime,
        State state
    );
    event LeaseClosed(uint256 leaseId, address providerAddress, address tenantAddress, uint32 endTime, State state);
    event LeaseUpdated(
        uint256 indexed leaseId,
        address indexed providerAddress,
        address indexed tenantAddress,
        uint256 acceptedPrice,
        uint32 startBlock,
        uint32 startTime
    );
    event LeaseSettled(uint256 indexed leaseId, address indexed providerAddress, uint256 amount, uint256 settledBlock);
    event BidAddressUpdated(address bid);

    constructor(address _orderRequest, address _escrowUser, address _escrowProtocol, address _access)
        AccessManaged(_access)
    {
        if (_orderRequest == address(0) || _escrowUser == address(0) || _escrowProtocol == address(0)) {
            revert InvalidAddress();
        }
        orderRequest = IOrderRequest(_orderRequest);
        escrowUser = IEscrowUser(_escrowUser);
        escrowProtocol = IEscrowProtocol(_escrowProtocol);
    }

    modifier onlyBid() {
        if (msg.sender != bid) revert NotBidContract();
        _;
    }

    function setBidContract(address _bid) external onlyAdmin {
        if (_bid == address(0)) revert InvalidAddress();
        bid = _bid;
        emit BidAddressUpdated(_bid);
    }

    function createLease(uint64 _orderId, uint256 _acceptedPrice, address _providerAdress, uint256 _fizzId)
        external
        onlyBid
        returns (uint256 leaseId)
    {
        leaseId = _orderId;
        Lease storage lease = leases[leaseId];
        if (lease.tenantAddress != address(0)) revert LeaseAlreadyExists();
        IOrderRequest.InitialOrder memory order = orderRequest.getOrderById(_orderId);
        lease.leaseId = leaseId;
        lease.fizzId = _fizzId;
        lease.requestId = _orderId;
        lease.acceptedPrice = _acceptedPrice;
        lease.providerAddress = _providerAdress;
        lease.tenantAddress = order.creator;
        lease.startBlock = uint32(block.number);
        lease.startTime = uint32(block.timestamp);
        lease.state = State.ACTIVE;
        leaseEscrow[leaseId] =
            LeaseEscrow(order.token, order.numOfBlocks, uint64(block.number), _acceptedPrice * order.numOfBlocks);
        providerLeases[_providerAdress].push(leaseId);
        tenantLeases[order.creator].push(leaseId);
        _emitCreated(lease);
    }

    /// @notice Close an active lease (tenant or provider): settle the elapsed blocks, unlock
    /// the rest of the tenant's escrow, close the order.
    function closeLease(uint256 _leaseId) external {
        Lease storage lease = _active(_leaseId);
        if (msg.sender != lease.tenantAddress && msg.sender != lease.providerAddress) revert OnlyTenantOrProvider();
        _settle(_leaseId, lease);
        _releaseEscrow(_leaseId, lease);
        lease.state = State.TERMINATED;
        lease.endTime = uint32(block.timestamp);
        orderRequest.updateOrderStateToClosed(uint64(_leaseId));
        emit LeaseClosed(_leaseId, lease.providerAddress, lease.tenantAddress, lease.endTime, State.TERMINATED);
    }

    /// @notice Credit the provider for the blocks elapsed since the last settlement (anyone may
    /// call; the terms are fixed). Returns what the tenant paid, fee included.
    function settleLease(uint256 _leaseId) external returns (uint256 paid) {
        return _settle(_leaseId, _active(_leaseId));
    }

    /// @notice Bid applies an accepted order update: the old terms are settled up to this
    /// block, and the lease restarts now at `_acceptedPrice` for the updated numOfBlocks.
    function closeAndRenewLease(uint256 _leaseId, uint256 _acceptedPrice, address _providerAdress) external onlyBid {
        Lease storage lease = _active(_leaseId);
        if (_providerAdress != lease.providerAddress) revert OnlyTenantOrProvider();
        _settle(_leaseId, lease);
        _releaseEscrow(_leaseId, lease);
        orderRequest.updatePendingOrder(uint64(_leaseId), _acceptedPrice);
        uint64 numOfBlocks = orderRequest.getOrderById(uint64(_leaseId)).numOfBlocks;
        lease.acceptedPrice = _acceptedPrice;
        lease.startBlock = uint32(block.number);
        lease.startTime = uint32(block.timestamp);
        LeaseEscrow storage escrow = leaseEscrow[_leaseId];
        escrow.numOfBlocks = numOfBlocks;
        escrow.settledBlock = uint64(block.number);
        escrow.lockedRemaining = _acceptedPrice * numOfBlocks;
        emit LeaseUpdated(
            _leaseId, lease.providerAddress, lease.tenantAddress, _acceptedPrice, lease.startBlock, lease.startTime
        );
    }

    function getLease(uint256 _leaseId) external view returns (Lease memory) {
        return _existing(_leaseId);
    }

    /// @return providerAddress, tenantAddress and state of the lease.
    function getLeaseDetails(uint256 _leaseId) external view returns (address, address, State) {
        Lease storage lease = _existing(_leaseId);
        return (lease.providerAddress, lease.tenantAddress, lease.state);
    }

    /// @return active and all lease ids of the provider, oldest first.
    function getProviderLeases(address _providerAddress) external view returns (uint256[] memory, uint256[] memory) {
        return _split(providerLeases[_providerAddress]);
    }

    /// @return active and all lease ids of the tenant, oldest first.
    function getTenantLeases(address _tenantAddress) external view returns (uint256[] memory, uint256[] memory) {
        return _split(tenantLeases[_tenantAddress]);
    }

    function _existing(uint256 leaseId) private view returns (Lease storage lease) {
        lease = leases[leaseId];
        if (lease.tenantAddress == address(0)) revert LeaseNotFound();
    }

    function _active(uint256 leaseId) private view returns (Lease storage lease) {
        lease = _existing(leaseId);
        if (lease.state != State.ACTIVE) revert LeaseAlreadyTerminated();
    }

    function _settle(uint256 leaseId, Lease storage lease) private returns (uint256 paid) {
        LeaseEscrow storage escrow = leaseEscrow[leaseId];
        uint256 endBlock = uint256(lease.startBlock) + escrow.numOfBlocks;
        uint256 upTo = block.number < endBlock ? block.number : endBlock;
        if (upTo <= escrow.settledBlock) {
            return 0;
        }
        paid = (upTo - escrow.settledBlock) * lease.acceptedPrice;
        escrow.settledBlock = uint64(upTo);
        escrow.lockedRemaining -= paid;
        if (paid > 0) {
            uint256 fee = escrowProtocol.computeFee(paid);
            escrowProtocol.transferLocked(
                lease.tenantAddress, lease.providerAddress, escrow.token, paid - fee, fee, false
            );
        }
        emit LeaseSettled(leaseId, lease.providerAddress, paid, upTo);
    }

    function _releaseEscrow(uint256 leaseId, Lease storage lease) private {
        LeaseEscrow storage escrow = leaseEscrow[leaseId];
        uint256 refund = escrow.lockedRemaining;
        escrow.lockedRemaining = 0;
        if (refund > 0) {
            escrowUser.unlockTokens(lease.tenantAddress, escrow.token, refund, false);
        }
    }

    function _split(uint256[] storage ids) private view returns (uint256[] memory active, uint256[] memory all) {
        all = ids;
        uint256 count = 0;
        for (uint256 i = 0; i < all.length; i++) {
            if (leases[all[i]].state == State.ACTIVE) {
                count++;
            }
        }
        active = new uint256[](count);
        uint256 next = 0;
        for (uint256 i = 0; i < all.length; i++) {
            if (leases[all[i]].state == State.ACTIVE) {
                active[next++] = all[i];
            }
        }
    }

    function _emitCreated(Lease storage lease) private {
        emit LeaseCreated(
            lease.leaseId,
            lease.fizzId,
            lease.requestId,
            lease.acceptedPrice,
            lease.providerAddress,
            lease.tenantAddress,
            lease.startBlock,
            lease.startTime,
            lease.endTime,
            lease.state
        );
    }
}
