"""Counter increments survive a failed transaction: whoever retries writes them again.

Under several processes on PostgreSQL a transaction can fail after its counters were
written (a deadlock on another statement); the delivery engine then retries the same
outcomes, and their counts must still be there.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, func, select

from sluice.reporting.counters import CounterDelta
from sluice.storage.tables import counters


def test_counts_written_in_a_rolled_back_transaction_are_written_again(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    counters.create(engine)
    delta = CounterDelta()
    for _ in range(3):
        delta.add("action", "connector", "profile", 120.0, "success")
    conn = engine.connect()
    transaction = conn.begin()
    delta.write(conn)
    transaction.rollback()  # the transaction failed after the counters were written
    conn.close()
    with engine.begin() as conn:
        delta.write(conn)
    with engine.connect() as conn:
        assert conn.execute(select(func.sum(counters.c.success))).scalar() == 3
    engine.dispose()
