"""AudienceStream tests: visit lengths scaled down (SLUICE_VISIT_TIMEOUT_SCALE) for speed."""

from __future__ import annotations

import pytest

from sluice.settings import Settings

# 30 minutes become 18 s and one minute 0.6 s.
SCALE = 0.01


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="test-secret-key",
        allow_private_destinations=True,
        commit_window_ms=1.0,
        visit_timeout_scale=SCALE,
    )
