// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessManaged} from "./AccessManaged.sol";
import {IEscrowProtocol} from "./IEscrowProtocol.sol";
import {IEscrowUser} from "./IEscrowUser.sol";
import {IProviderRegistry} from "./IProviderRegistry.sol";

/// @title EscrowProtocol
/// @notice Provider earnings. ComputeLease settles a lease block by block: the tenant's
/// locked escrow is spent (EscrowUser.reduceLockedTokens) and credited here to the provider,
/// less the protocol fee, which accrues to the treasury. Providers withdraw their balance to
/// their reward wallet; the tokens themselves never leave EscrowUser until then.
/// @dev Fee percentages are in basis points (1/100 of a percent). Only the protocol fee is
/// applied on the devnet; user and Fizz node fees must stay 0.
contract EscrowProtocol is IEscrowProtocol, AccessManaged {
    struct Earnings {
        uint128 earned;
        uint128 withdrawn;
        uint128 balance;
    }

    uint256 public constant MAX_PROTOCOL_FEE_PERCENTAGE = 1_000;
    uint256 public constant FEE_DENOMINATOR = 10_000;
    uint8 internal constant MOVEMENT_EARNINGS_WITHDRAWN = 2;

    IProviderRegistry public immutable providerRegistry;
    IEscrowUser public immutable escrow;
    address public treasury;
    address public computeLease;
    uint32 public protocolFeePercentage;
    uint32 public userFeePercentage;
    uint32 public fizzNodePercentage;

    mapping(address => mapping(address => Earnings)) public providerEarnings;
    mapping(address => uint256) public fees;

    error AccessControlBadConfirmation();
    error InsufficientBalance(uint256 available, uint256 required);
    error InvalidAmount();
    error ReentrancyGuardReentrantCall();
    error UnauthorizedAccess();
    // Spheron's names from EscrowUser and Bid, for the devnet's "not supported" checks.
    error InvalidOperator();
    error FizzNodeNotActive();

    event LockedTokenTransfered(address indexed from, address indexed to, address indexed token, uint256 deposit);
    event TokenMovement(
        address indexed from, address indexed to, address indexed token, uint256 amount, uint8 movementType
    );
    event TreasuryMovement(address indexed treasury, address indexed token, uint256 amount);
    event ComputeLeaseUpdated(address computeLease);
    event TreasuryUpdated(address treasury);
    event FeePercentagesUpdated(uint32 protocolFee, uint32 userFee, uint32 fizzNodeFee);

    constructor(
        address _providerRegistryAddress,
        address _escrow,
        address _treasury,
        address _access,
        uint32 _protocolFeePercentage
    ) AccessManaged(_access) {
        if (_providerRegistryAddress == address(0) || _escrow == address(0) || _treasury == address(0)) {
            revert InvalidAddress();
        }
        if (_protocolFeePercentage > MAX_PROTOCOL_FEE_PERCENTAGE) revert InvalidAmount();
        providerRegistry = IProviderRegistry(_providerRegistryAddress);
        escrow = IEscrowUser(_escrow);
        treasury = _treasury;
        protocolFeePercentage = _protocolFeePercentage;
    }

    function setComputeLease(address _computeLease) external onlyAdmin {
        if (_computeLease == address(0)) revert InvalidAddress();
        computeLease = _computeLease;
        emit ComputeLeaseUpdated(_computeLease);
    }

    function setTreasury(address _treasury) external onlyAdmin {
        if (_treasury == address(0)) revert InvalidAddress();
        treasury = _treasury;
        emit TreasuryUpdated(_treasury);
    }

    function setPercentages(uint32 _protocolFee, uint32 _userFee, uint32 _fizzNodeFee) external onlyAdmin {
        if (_protocolFee > MAX_PROTOCOL_FEE_PERCENTAGE || _userFee != 0 || _fizzNodeFee != 0) revert InvalidAmount();
        protocolFeePercentage = _protocolFee;
        emit FeePercentagesUpdated(_protocolFee, _userFee, _fizzNodeFee);
    }

    /// @return protocolFee and userFee, in basis points.
    function getProtocolFee() external view returns (uint32, uint32) {
        return (protocolFeePercentage, userFeePercentage);
    }

    /// @notice The protocol's cut of a settlement of `amount` (rounded down).
    function computeFee(uint256 amount) external view returns (uint256) {
        return amount * protocolFeePercentage / FEE_DENOMINATOR;
    }

    /// @notice Spend `amount + _fees` of `from`'s locked escrow: `amount` to provider `to`'s
    /// earnings, `_fees` to the treasury's balance.
    function transferLocked(address from, address to, address _token, uint256 amount, uint256 _fees, bool _isOperator)
        external
    {
        if (msg.sender != computeLease) revert UnauthorizedAccess();
        if (_isOperator) revert InvalidOperator();
        uint256 total = amount + _fees;
        escrow.reduceLockedTokens(from, _token, total, false);
        Earnings storage earnings = providerEarnings[to][_token];
        earnings.earned += uint128(amount);
        earnings.balance += uint128(amount);
        fees[_token] += _fees;
        emit LockedTokenTransfered(from, to, _token, amount);
    }

    /// @notice Pay `_amount` of `_provider`'s earnings to its reward wallet. Callable by the
    /// provider or its reward wallet. `_fizzId` must be 0 (no Fizz nodes on the devnet).
    function withdrawEarnings(address _provider, uint256 _fizzId, address _token, uint256 _amount) external {
        if (_fizzId != 0) revert FizzNodeNotActive();
        address rewardWallet = providerRegistry.getProviderRewardWallet(_provider);
        if (msg.sender != _provider && msg.sender != rewardWallet) revert UnauthorizedAccess();
        if (_amount == 0) revert InvalidAmount();
        Earnings storage earnings = providerEarnings[_provider][_token];
        if (earnings.balance < _amount) revert InsufficientBalance(earnings.balance, _amount);
        earnings.balance -= uint128(_amount);
        earnings.withdrawn += uint128(_amount);
        escrow.transferEarnedTokens(_token, rewardWallet, _amount);
        emit TokenMovement(_provider, rewardWallet, _token, _amount, MOVEMENT_EARNINGS_WITHDRAWN);
    }

    /// @notice Pay accrued protocol fees to the treasury.
    function withdrawFees(address _token, uint256 _amount) external onlyAdmin {
        if (_amount == 0) revert InvalidAmount();
        if (fees[_token] < _amount) revert InsufficientBalance(fees[_token], _amount);
        fees[_token] -= _amount;
        escrow.transferEarnedTokens(_token, treasury, _amount);
        emit TreasuryMovement(treasury, _token, _amount);
    }
}
