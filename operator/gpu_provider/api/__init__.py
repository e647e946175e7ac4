"""The wire contract: pydantic models of the CRDs and the validators they share."""
