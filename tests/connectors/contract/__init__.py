"""Contract tests: each connector against a strict local stand-in for its vendor API."""
