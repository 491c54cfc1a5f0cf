"""Work done once when a server process starts."""

from __future__ import annotations

import logging

from elexirion_app.config import get_settings
from elexirion_app.db.engine import in_db_thread, session_scope
from elexirion_app.services import workspace
from elexirion_app.services.chat import chat

log = logging.getLogger(__name__)

# With several workers (Redis), another live worker may be answering a recent reply.
SHARED_SWEEP_AFTER_S = 3600.0


def sweep() -> int:
    """Replies left open by a dead process end as ``interrupted`` (all of them with one
    worker; those older than an hour when other workers may be answering theirs)."""
    older = SHARED_SWEEP_AFTER_S if get_settings().redis_url else None
    with session_scope() as session:
        return chat.sweep_orphaned_replies(session, older)


async def on_startup() -> None:
    count = await in_db_thread(sweep)
    log.info("startup sweep: %d orphaned replies marked interrupted", count)
    staged = await in_db_thread(workspace.sweep_staging)
    log.info("startup sweep: %d abandoned upload staging folders removed", staged)
