// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessManaged} from "./AccessManaged.sol";
import {ITokenRegistry} from "./ITokenRegistry.sol";

/// @title TokenRegistry
/// @notice Registry admins list the ERC-20 tokens that escrow, orders and providers may use.
contract TokenRegistry is ITokenRegistry, AccessManaged {
    mapping(address => Token) public acceptedTokens;
    mapping(address => bool) public isAcceptedToken;
    mapping(string => address) public symbolToAddress;
    address[] public tokens;

    error InvalidOwnerAddress();
    error InvalidTokenAddress();
    error TokenAlreadyRegistered();
    error TokenNotRegistered();
    // Spheron's ProviderAttributeRegistry errors, for the same checks here.
    error ArrayMismatch();
    error EmptyArray();
    /// @dev Devnet-only: an empty token symbol.
    error InvalidTokenSymbol();

    event TokenAdded(
        address indexed tokenAddress, uint128 indexed decimals, string symbol, uint256 minimumDeposit, bool isDefault
    );
    event TokenRemoved(address indexed tokenAddress);
    event DefaultTokenUpdated(address indexed tokenAddress, bool isDefault);

    constructor(address _access) AccessManaged(_access) {}

    function addToken(
        string[] calldata _symbols,
        address[] calldata _tokens,
        uint128[] calldata _decimals,
        uint256[] calldata _minimumDeposits,
        bool[] calldata _isDefault
    ) external onlyRegistryAdmin {
        uint256 count = _tokens.length;
        if (count == 0) revert EmptyArray();
        if (
            _symbols.length != count || _decimals.length != count || _minimumDeposits.length != count
                || _isDefault.length != count
        ) revert ArrayMismatch();
        for (uint256 i = 0; i < count; i++) {
            _addToken(_symbols[i], _tokens[i], _decimals[i], _minimumDeposits[i], _isDefault[i]);
        }
    }

    function removeTokens(address[] calldata _token) external onlyRegistryAdmin {
        if (_token.length == 0) revert EmptyArray();
        for (uint256 i = 0; i < _token.length; i++) {
            address token = _token[i];
            if (!isAcceptedToken[token]) revert TokenNotRegistered();
            delete symbolToAddress[acceptedTokens[token].symbol];
            delete acceptedTokens[token];
            isAcceptedToken[token] = false;
            _removeFromList(token);
            emit TokenRemoved(token);
        }
    }

    function setDefaultToken(address _token) external onlyRegistryAdmin {
        if (!isAcceptedToken[_token]) revert TokenNotRegistered();
        acceptedTokens[_token].isDefault = true;
        emit DefaultTokenUpdated(_token, true);
    }

    function removeDefaultToken(address _token) external onlyRegistryAdmin {
        if (!isAcceptedToken[_token]) revert TokenNotRegistered();
        acceptedTokens[_token].isDefault = false;
        emit DefaultTokenUpdated(_token, false);
    }

    function getAllTokens() external view returns (Token[] memory all) {
        all = new Token[](tokens.length);
        for (uint256 i = 0; i < tokens.length; i++) {
            all[i] = acceptedTokens[tokens[i]];
        }
    }

    function getTokenAddress(string calldata symbol) external view returns (address) {
        address token = symbolToAddress[symbol];
        if (token == address(0)) revert TokenNotRegistered();
        return token;
    }

    function getTokenDetails(address _token) external view returns (Token memory) {
        if (!isAcceptedToken[_token]) revert TokenNotRegistered();
        return acceptedTokens[_token];
    }

    function isDefaultToken(address _token) external view returns (bool) {
        return acceptedTokens[_token].isDefault;
    }

    function _addToken(
        string calldata symbol,
        address token,
        uint128 decimals,
        uint256 minimumDeposit,
        bool isDefault
    ) private {
        if (token == address(0)) revert InvalidTokenAddress();
        if (isAcceptedToken[token]) revert TokenAlreadyRegistered();
        if (bytes(symbol).length == 0) revert InvalidTokenSymbol();
        if (symbolToAddress[symbol] != address(0)) revert TokenAlreadyRegistered();
        acceptedTokens[token] = Token(symbol, decimals, token, minimumDeposit, isDefault);
        isAcceptedToken[token] = true;
        symbolToAddress[symbol] = token;
        tokens.push(token);
        emit TokenAdded(token, decimals, symbol, minimumDeposit, isDefault);
    }

    function _removeFromList(address token) private {
        uint256 last = tokens.length - 1;
        for (uint256 i = 0; i <= last; i++) {
            if (tokens[i] == token) {
                tokens[i] = tokens[last];
                tokens.pop();
                return;
            }
        }
    }
}
