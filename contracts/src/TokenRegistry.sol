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
        require(count > 0, "No tokens given");
        require(
            _symbols.length == count && _decimals.length == count && _minimumDeposits.length == count
                && _isDefault.length == count,
            "Array length mismatch"
        );
        for (uint256 i = 0; i < count; i++) {
            _addToken(_symbols[i], _tokens[i], _decimals[i], _minimumDeposits[i], _isDefault[i]);
        }
    }

    function removeTokens(address[] calldata _token) external onlyRegistryAdmin {
        require(_token.length > 0, "No tokens given");
        for (uint256 i = 0; i < _token.length; i++) {
            address token = _token[i];
            require(isAcceptedToken[token], "Token not registered");
            delete symbolToAddress[acceptedTokens[token].symbol];
            delete acceptedTokens[token];
            isAcceptedToken[token] = false;
            _removeFromList(token);
            emit TokenRemoved(token);
        }
    }

    function setDefaultToken(address _token) external onlyRegistryAdmin {
        require(isAcceptedToken[_token], "Token not registered");
        acceptedTokens[_token].isDefault = true;
        emit DefaultTokenUpdated(_token, true);
    }

    function removeDefaultToken(address _token) external onlyRegistryAdmin {
        require(isAcceptedToken[_token], "Token not registered");
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
        require(token != address(0), "Token not registered");
        return token;
    }

    function getTokenDetails(address _token) external view returns (Token memory) {
        require(isAcceptedToken[_token], "Token not registered");
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
        require(token != address(0), "Token is the zero address");
        require(!isAcceptedToken[token], "Token already registered");
        require(bytes(symbol).length > 0, "Token symbol is empty");
        require(symbolToAddress[symbol] == address(0), "Token symbol already registered");
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
