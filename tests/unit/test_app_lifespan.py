"""The served app runs its background work: the startup sweep and the ledger's shard
compaction (every worker; ``services.billing.compaction`` explains why that is safe)."""

from __future__ import annotations


def test_the_app_registers_its_lifespan_tasks() -> None:
    from elexirion_app import elexirion_app as served
    from elexirion_app.services import startup
    from elexirion_app.services.billing import compaction

    tasks = list(served.app._lifespan_tasks)
    assert startup.on_startup in tasks
    assert compaction.compact_forever in tasks
