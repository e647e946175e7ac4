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

    event TokenMovement(
        address indexed from, address indexed to, address indexed token, uint256 amount, uint8 movementType
    );
    event UserTokenLocked(address indexed user, address indexed token, uint256 deposit);
    event UserTokenUnlocked(address indexed user, address indexed token, uint256 deposit);
    event ProtocolContractsUpdated(address orderRequest, address computeLease, address escrowProtocol);

    constructor(address _tokenRegistryAddress, address _access) AccessManaged(_access) {
        require(_tokenRegistryAddress != address(0), "Token registry is the zero address");
        tokenRegistry = ITokenRegistry(_tokenRegistryAddress);
    }

    modifier onlyMarket() {
        require(msg.sender == orderRequest || msg.sender == computeLease, "Caller is not a marketplace contract");
        _;
    }

    modifier onlyEscrowProtocol() {
        require(msg.sender == escrowProtocol, "Caller is not the escrow protocol");
        _;
    }

    modifier noOperator(bool isOperator) {
        require(!isOperator, "Operator balances are not supported");
        _;
    }

    /// @notice Wire the contracts allowed to move escrowed funds.
    function setProtocolContracts(address _orderRequest, address _computeLease, address _escrowProtocol)
        external
        onlyAdmin
    {
        require(
            _orderRequest != address(0) && _computeLease != address(0) && _escrowProtocol != address(0),
            "Contract address is zero"
        );
        orderRequest = _orderRequest;
        computeLease = _computeLease;
        escrowProtocol = _escrowProtocol;
        emit ProtocolContractsUpdated(_orderRequest, _computeLease, _escrowProtocol);
    }

    /// @notice Deposit `_amount` of an accepted ERC-20 (approve this contract first).
    /// @dev Payable only to keep Spheron's signature; native currency is refused.
    function deposit(address _token, uint256 _amount) external payable {
        require(msg.value == 0, "Native currency deposits are not supported");
        require(tokenRegistry.isAcceptedToken(_token), "Token not accepted");
        require(_amount > 0, "Amount must be greater than zero");
        require(_amount >= tokenRegistry.getTokenDetails(_token).minimumDeposit, "Deposit is below the token minimum");
        UserTokenData storage balance = userBalance[msg.sender][_token];
        require(_amount <= type(uint128).max - balance.unlockedBalance, "Deposit too large");
        balance.unlockedBalance += uint128(_amount);
        require(IERC20(_token).transferFrom(msg.sender, address(this), _amount), "Token transfer failed");
        emit TokenMovement(msg.sender, address(this), _token, _amount, MOVEMENT_DEPOSIT);
    }

    /// @notice Withdraw unlocked funds to the caller. `_operator` must be the zero address.
    function withdraw(address _token, uint256 _amount, address _operator) external {
        require(_operator == address(0), "Operator balances are not supported");
        require(_amount > 0, "Amount must be greater than zero");
        UserTokenData storage balance = userBalance[msg.sender][_token];
        require(balance.unlockedBalance >= _amount, "Insufficient unlocked balance");
        balance.unlockedBalance -= uint128(_amount);
        require(IERC20(_token).transfer(msg.sender, _amount), "Token transfer failed");
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
        require(balance.unlockedBalance >= amount, "Insufficient escrow balance");
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
        require(balance.lockedBalance >= amount, "Insufficient locked balance");
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
        require(balance.lockedBalance >= amount, "Insufficient locked balance");
        balance.lockedBalance -= uint128(amount);
    }

    /// @notice Pay out provider earnings or protocol fees that EscrowProtocol has accounted for.
    function transferEarnedTokens(address _token, address _rewardWallet, uint256 _amount) external onlyEscrowProtocol {
        require(_rewardWallet != address(0), "Recipient is the zero address");
        require(IERC20(_token).transfer(_rewardWallet, _amount), "Token transfer failed");
    }
}
