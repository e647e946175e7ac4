"""Local chain tooling: anvil, contract deployment, matchmaker and tenant clients."""
