"""The local stack for e2e tests and the demo: a real control plane (kwokctl) and anvil."""
