"""The management API (SPEC §4): thin routes over the services."""
