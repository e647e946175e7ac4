"""`.local/devnet.json`: everything a tool needs to use a running devnet, in one file.

`gpu-provider devnet up` (or `up.deploy_to`) writes it; the matchmaker, the tenant client, the
demo and the e2e harness read it. Keys are camelCase so `jq` one-liners read naturally:

    jq -r .rpcUrl .local/devnet.json
    jq -r .contracts.OrderRequest .local/devnet.json
    jq -r .accounts.tenant.address .local/devnet.json

The file holds anvil's well-known test mnemonic (the keys are public knowledge and hold nothing
outside this devnet), never any other secret.
"""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Final

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel
from web3 import Web3

from gpu_provider.chain.artifacts import CONTRACT_NAMES
from gpu_provider.chain.contracts import SETTINGS_FIELD
from gpu_provider.config import ChainSettings, ContractAddresses
from gpu_provider.devnet.accounts import Role, derive_account
from gpu_provider.devnet.errors import DevnetError
from gpu_provider.devnet.paths import DEFAULT_STATE_FILE
from gpu_provider.market.pricing import DEFAULT_BLOCKS_PER_HOUR, SECONDS_PER_HOUR, TokenTerms

__all__ = [
    "DEFAULT_STATE_FILE",
    "PAYMENT_TOKEN_KEY",
    "DevnetAccount",
    "DevnetState",
    "TokenInfo",
    "load_state",
    "save_state",
]

PAYMENT_TOKEN_KEY: Final = "testToken"  # noqa: S105 - a JSON key, not a secret
"""`contracts.testToken`: the ERC-20 orders are paid in (the devnet's TestToken)."""
_CONTRACT_KEYS: Final = frozenset((*CONTRACT_NAMES, PAYMENT_TOKEN_KEY))


def _checksummed(value: str) -> ChecksumAddress:
    try:
        return Web3.to_checksum_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an address") from None


Address = Annotated[ChecksumAddress, AfterValidator(_checksummed)]


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )


class DevnetAccount(_Model):
    index: int = Field(ge=0, description="Index under the mnemonic: m/44'/60'/0'/0/<index>.")
    address: Address


class TokenInfo(_Model):
    symbol: str
    decimals: int = Field(ge=0, le=36)


class DevnetState(_Model):
    """The devnet: where the chain is, who plays which role, where every contract lives."""

    chain_id: int = Field(ge=1)
    rpc_url: str = Field(min_length=1)
    block_time: float = Field(ge=0, description="Seconds per block; 0 = a block per transaction.")
    mnemonic: str = Field(min_length=1)
    accounts: dict[Role, DevnetAccount]
    contracts: dict[str, Address]
    token: TokenInfo
    deploy_block: int = Field(ge=0, description="First block with a deployment: scan from here.")
    bid_window_blocks: int = Field(ge=1)

    @field_validator("contracts")
    @classmethod
    def _every_contract(cls, contracts: dict[str, ChecksumAddress]) -> dict[str, ChecksumAddress]:
        missing = sorted(_CONTRACT_KEYS - contracts.keys())
        unknown = sorted(contracts.keys() - _CONTRACT_KEYS)
        if missing:
            raise ValueError(f"contracts has no address for {', '.join(missing)}")
        if unknown:
            raise ValueError(f"contracts has unknown names {', '.join(unknown)}")
        return contracts

    def address(self, contract: str) -> ChecksumAddress:
        """The address of a contract by its artifact name ("OrderRequest") or "testToken"."""
        if contract not in self.contracts:
            raise KeyError(f"unknown contract {contract!r}; known: {', '.join(self.contracts)}")
        return self.contracts[contract]

    @property
    def payment_token(self) -> ChecksumAddress:
        return self.contracts[PAYMENT_TOKEN_KEY]

    def account_address(self, role: Role) -> ChecksumAddress:
        return self._account(role).address

    def signer(self, role: Role) -> LocalAccount:
        """The role's key, derived from the mnemonic (and checked against the recorded address)."""
        entry = self._account(role)
        account = derive_account(self.mnemonic, entry.index)
        if account.address != entry.address:
            raise DevnetError(
                f"devnet.json says the {role} is {entry.address}, but account #{entry.index} "
                f"of its mnemonic is {account.address}: the file was edited or is corrupt"
            )
        return account

    def _account(self, role: Role) -> DevnetAccount:
        if role not in self.accounts:
            raise DevnetError(f"devnet.json names no {role} account")
        return self.accounts[role]

    @property
    def blocks_per_hour(self) -> int:
        """Blocks per hour at this devnet's block time (the SDK's 1800 for automining)."""
        if self.block_time == 0:
            return DEFAULT_BLOCKS_PER_HOUR
        return max(1, round(Fraction(SECONDS_PER_HOUR) / Fraction(str(self.block_time))))

    def token_terms(self) -> TokenTerms:
        """USD -> token conversion for the payment token (a USD stablecoin) on this chain."""
        return TokenTerms(decimals=self.token.decimals, blocks_per_hour=self.blocks_per_hour)

    def chain_settings(self, *, confirmations: int = 1) -> ChainSettings:
        """The operator's chain settings for this devnet (what a Helm value file would say)."""
        return ChainSettings(
            network="devnet",
            chain_id=self.chain_id,
            rpc_urls=[self.rpc_url],
            contracts=ContractAddresses(
                **{field: self.contracts[name] for name, field in SETTINGS_FIELD.items()}
            ),
            confirmations=confirmations,
            blocks_per_hour=self.blocks_per_hour,
            poll_interval_seconds=max(self.block_time / 2, 0.2),
        )

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2) + "\n"


def load_state(path: Path = DEFAULT_STATE_FILE) -> DevnetState:
    """Read a devnet description; DevnetError (saying what to run) when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DevnetError(f"no devnet at {path}: run `gpu-provider devnet up` first") from None
    except OSError as error:
        raise DevnetError(f"cannot read {path}: {error.strerror}") from None
    try:
        document = json.loads(text)
    except ValueError:
        raise DevnetError(f"{path} is not JSON: run `gpu-provider devnet up` again") from None
    if isinstance(document, dict) and not document.get("contracts"):
        raise DevnetError(
            f"{path} describes a chain with no contracts deployed: run `gpu-provider devnet up`"
        )
    try:
        return DevnetState.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise DevnetError(
            f"{path} is not a devnet description ({where}: {first['msg']}): "
            "run `gpu-provider devnet up` again"
        ) from None


def save_state(state: DevnetState, path: Path = DEFAULT_STATE_FILE) -> None:
    """Write the description atomically (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(state.to_json(), encoding="utf-8")
    partial.replace(path)
