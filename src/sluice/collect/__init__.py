"""The collect API (SPEC §3): validate, store durably, acknowledge."""
