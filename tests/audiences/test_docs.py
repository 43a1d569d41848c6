"""docs/audiences.md documents every type, operation, trigger, reserved name and setting."""

from __future__ import annotations

from pathlib import Path

from sluice.audiences.rules import OPERATIONS, RESERVED, SCOPES
from sluice.audiences.triggers import TRIGGERS

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "audiences.md"
SETTINGS = (
    "SLUICE_VISITOR_PROFILE_MAX_BYTES",
    "SLUICE_VISITOR_CACHE_MB",
    "SLUICE_VISIT_TIMEOUT_SCALE",
)


def test_everything_is_documented() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    names = [*OPERATIONS, *SCOPES, *TRIGGERS, *RESERVED, *SETTINGS]
    names += [op for ops in OPERATIONS.values() for op in ops]
    names += ["delay_hours", "frequency_cap", "cooldown_group", "priority", "over_size_limit"]
    missing = sorted({n for n in names if f"`{n}`" not in text})
    assert not missing, f"docs/audiences.md does not mention {missing}"
