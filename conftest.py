"""Root conftest: makes `tests` and `e2e` importable as packages from the repository root."""
