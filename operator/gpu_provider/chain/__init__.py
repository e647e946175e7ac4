"""The only code that talks to the chain.

- `rpc`: a JSON-RPC provider that fails over across several endpoints and checks the chain id;
- `events`: a confirmed, reorg-safe, exactly-once event stream with caller-held checkpoints;
- `tx`: one signer's transaction manager (nonces, EIP-1559 fees, replacement, intent journal);
- `intents`: where the transaction manager records what it is about to send;
- `wallet`: signing keys loaded from a Secret's bytes, never shown;
- `contracts`: AsyncContract bindings built from the devnet artifacts and configured addresses.

Nothing is imported here eagerly: `gpu_provider.chain.artifacts` may not exist yet.
"""
