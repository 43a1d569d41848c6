"""AudienceStream tests: visit lengths scaled down (SLUICE_VISIT_TIMEOUT_SCALE) for speed."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.settings import Settings

# 30 minutes become 18 s and one minute 0.6 s.
SCALE = 0.01


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'sluice.db'}",
        secret_key="test-secret-key",
        allow_private_destinations=True,
        commit_window_ms=1.0,
        visit_timeout_scale=SCALE,
    )
