"""What `make stack` adds for the operator: its namespace, the devnet provider's wallet Secret
and `.local/operator.yaml` (the settings `make operator` runs with).

The wallet is the devnet's provider account (anvil's well-known mnemonic, so the key is public
knowledge and holds nothing outside this devnet); it is written only into the Secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import yaml

from e2e.harness.stack import KUBECONFIG, LOCAL, apply_objects
from gpu_provider.devnet.accounts import Role
from gpu_provider.devnet.state import DevnetState

OPERATOR_NAMESPACE: Final = "gpu-provider-system"
WALLET_SECRET: Final = "provider-wallet"
WALLET_KEY: Final = "private-key"
OPERATOR_SETTINGS: Final = LOCAL / "operator.yaml"


def operator_settings(state: DevnetState, **operator: Any) -> dict[str, Any]:
    """Settings for `gpu-provider run` against this devnet (a YAML settings file's content)."""
    chain = state.chain_settings(confirmations=0).model_dump(mode="json", exclude_none=True)
    return {
        "namespace": OPERATOR_NAMESPACE,
        "chain": chain,
        "operator": {"reconcile_interval_seconds": 10, "debounce_seconds": 1, **operator},
    }


def wallet_objects(state: DevnetState, namespace: str = OPERATOR_NAMESPACE) -> list[dict[str, Any]]:
    """The operator namespace and the provider's wallet Secret."""
    key = "0x" + bytes(state.signer(Role.PROVIDER).key).hex()
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": WALLET_SECRET, "namespace": namespace},
            "type": "Opaque",
            "stringData": {WALLET_KEY: key},
        },
    ]


def set_up_operator(
    state: DevnetState, kubeconfig: Path = KUBECONFIG, settings_file: Path = OPERATOR_SETTINGS
) -> None:
    apply_objects(wallet_objects(state), kubeconfig=kubeconfig)
    settings_file.write_text(yaml.safe_dump(operator_settings(state), sort_keys=False))
