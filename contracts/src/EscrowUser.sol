// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessManaged} from "./AccessManaged.sol";
import {IERC20} from "./IERC20.sol";
import {IEscrowUser} from "./IEscrowUser.sol";
import {ITokenRegistry} from "./ITokenRegistry.sol";

/// @title EscrowUser
/// @notice Holds every escrowed token. A tenant's balance per token is split into unlocked
/// (free to withdraw or to back a new order) and locked (backing open orders and active
/// leases). OrderRequest and ComputeLease move funds between the two; EscrowProtocol spends
/// locked funds into provider earnings and pays earnings out.
/// Operator balances (Spheron's delegated deposits) are not part of the devnet.
contract EscrowUser is IEscrowUser, AccessManaged {
    uint8 internal constant MOVEMENT_DEPOSIT = 0;
    uint8 internal constant MOVEMENT_WITHDRAW = 1;

    ITokenRegistry public immutable tokenRegistry;
    address public orderRequest;
    address public computeLease;
    address public escrowProtocol;

    mapping(address => mapping(address => UserTokenData)) public userBalance;

    error AccessControlBadConfirmation();
    error AddressEmptyCode(address target);
    error AddressInsufficientBalance(address account);
    error DifferentOwnerExists();
    error ECDSAInvalidSignature();
    error ECDSAInvalidSignatureLength(uint256 length);
    error ECDSAInvalidSignatureS(bytes32 s);
    error EmptyOperatorArray();
    error FailedInnerCall();
    error InsufficientBalance(uint256 available, uint256 required);
    error InvalidAmount();
    error InvalidNonce();
    error InvalidOperator();
    error InvalidSignature();
    error MinimumDepositNotMet();
    error ReentrancyGuardReentrantCall();
    error SafeERC20FailedOperation(address token);
    error SignatureExpired();
    error TokenNotAccepted();
    error TransferFailed();
    error UnauthorizedAccess();

    event TokenMovement(
        address indexed from, address indexed to, address indexed token, uint256 amount, uint8 movementType
    );
    event UserTokenLocked(address indexed user, address indexed token, uint256 deposit);
    event UserTokenUnlocked(address indexed user, address indexed token, uint256 deposit);
    event ProtocolContractsUpdated(address orderRequest, address computeLease, address escrowProtocol);

    constructor(address _tokenRegistryAddress, address _access) AccessManaged(_access) {
        if (_tokenRegistryAddress == address(0)) revert InvalidAddress();
        tokenRegistry = ITokenRegistry(_tokenRegistryAddress);
    }

    modifier onlyMarket() {
        if (msg.sender != orderRequest && msg.sender != computeLease) revert UnauthorizedAccess();
        _;
    }

    modifier onlyEscrowProtocol() {
        if (msg.sender != escrowProtocol) revert UnauthorizedAccess();
        _;
    }

    modifier noOperator(bool isOperator) {
        if (isOperator) revert InvalidOperator();
        _;
    }

    /// @notice Wire the contracts allowed to move escrowed funds.
    function setProtocolContracts(address _orderRequest, address _computeLease, address _escrowProtocol)
        external
        onlyAdmin
    {
        if (_orderRequest == address(0) || _computeLease == address(0) || _escrowProtocol == address(0)) {
            revert InvalidAddress();
        }
        orderRequest = _orderRequest;
        computeLease = _computeLease;
        escrowProtocol = _escrowProtocol;
        emit ProtocolContractsUpdated(_orderRequest, _computeLease, _escrowProtocol);
    }

    /// @notice Deposit `_amount` of an accepted ERC-20 (approve this contract first).
    /// @dev Payable only to keep Spheron's signature; native currency is refused.
    function deposit(address _token, uint256 _amount) external payable {
        if (msg.value != 0) revert InvalidAmount();
        if (!tokenRegistry.isAcceptedToken(_token)) revert TokenNotAccepted();
        if (_amount == 0) revert InvalidAmount();
        if (_amount < tokenRegistry.getTokenDetails(_token).minimumDeposit) revert MinimumDepositNotMet();
        UserTokenData storage balance = userBalance[msg.sender][_token];
        if (_amount > type(uint128).max - balance.unlockedBalance) revert InvalidAmount();
        balance.unlockedBalance += uint128(_amount);
        if (!IERC20(_token).transferFrom(msg.sender, address(this), _amount)) revert SafeERC20FailedOperation(_token);
        emit TokenMovement(msg.sender, address(this), _token, _amount, MOVEMENT_DEPOSIT);
    }

    /// @notice Withdraw unlocked funds to the caller. `_operator` must be the zero address.
    function withdraw(address _token, uint256 _amount, address _operator) external {
        if (_operator != address(0)) revert InvalidOperator();
        if (_amount == 0) revert InvalidAmount();
        UserTokenData storage balance = userBalance[msg.sender][_token];
        if (balance.unlockedBalance < _amount) revert InsufficientBalance(balance.unlockedBalance, _amount);
        balance.unlockedBalance -= uint128(_amount);
        if (!IERC20(_token).transfer(msg.sender, _amount)) revert SafeERC20FailedOperation(_token);
        emit TokenMovement(address(this), msg.sender, _token, _amount, MOVEMENT_WITHDRAW);
    }

    function getUserData(address _user, address _token, bool _isOperator)
        external
        view
        noOperator(_isOperator)
        returns (UserTokenData memory)
    {
        return userBalance[_user][_token];
    }

    function lockTokens(address _user, address _token, uint256 amount, bool _isOperator)
        external
        onlyMarket
        noOperator(_isOperator)
    {
        UserTokenData storage balance = userBalance[_user][_token];
        if (balance.unlockedBalance < amount) revert InsufficientBalance(balance.unlockedBalance, amount);
        balance.unlockedBalance -= uint128(amount);
        balance.lockedBalance += uint128(amount);
        emit UserTokenLocked(_user, _token, amount);
    }

    function unlockTokens(address _user, address _token, uint256 amount, bool _isOperator)
        external
        onlyMarket
        noOperator(_isOperator)
    {
        UserTokenData storage balance = userBalance[_user][_token];
        if (balance.lockedBalance < amount) revert InsufficientBalance(balance.lockedBalance, amount);
        balance.lockedBalance -= uint128(amount);
        balance.unlockedBalance += uint128(amount);
        emit UserTokenUnlocked(_user, _token, amount);
    }

    /// @notice Spend locked funds; EscrowProtocol credits them to a provider in the same call.
    function reduceLockedTokens(address _user, address _token, uint256 amount, bool _isOperator)
        external
        onlyEscrowProtocol
        noOperator(_isOperator)
    {
        UserTokenData storage balance = userBalance[_user][_token];
        if (balance.lockedBalance < amount) revert InsufficientBalance(balance.lockedBalance, amount);
        balance.lockedBalance -= uint128(amount);
    }

    /// @notice Pay out provider earnings or protocol fees that EscrowProtocol has accounted for.
    function transferEarnedTokens(address _token, address _rewardWallet, uint256 _amount) external onlyEscrowProtocol {
        if (_rewardWallet == address(0)) revert InvalidAddress();
        if (!IERC20(_token).transfer(_rewardWallet, _amount)) revert SafeERC20FailedOperation(_token);
    }
}
