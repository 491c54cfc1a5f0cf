"""Who sent this event: the session cookie of the connection that carries it.

The Reflex tab token names a state, not a person. ``IdentityMiddleware`` runs before every
event (hydrate included): it reads the session cookie from the headers of the websocket
handshake that carries the event (kept server-side by Reflex, never sent to the browser),
checks it in the database, and records the result on ``AuthState``. When the person behind a
tab token changes — a stolen token, a revoked or expired session, another login in the same
tab — the whole state tree is reset *before* the event runs, so nothing of the previous
user's is shown or acted on. Handlers then ask ``current_user_id(self)``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import reflex as rx
from reflex.middleware import Middleware

from elexirion_app.core.errors import AuthError
from elexirion_app.db.engine import in_session
from elexirion_app.services.accounts import auth, tab_bindings
from elexirion_app.web.state.auth import AuthState

if TYPE_CHECKING:
    from reflex.app import App
    from reflex.state import BaseState, StateUpdate
    from reflex_base.event import Event

log = logging.getLogger(__name__)


def cookie_header(state: BaseState) -> str:
    headers = state.router.headers
    raw = getattr(headers, "raw_headers", None) or {}
    return str(raw.get("cookie") or getattr(headers, "cookie", "") or "")


async def resolve(cookie: str) -> tuple[auth.UserInfo | None, str]:
    """The user and session hash of a ``Cookie`` header (database checked off the loop)."""
    token = auth.token_from_cookie_header(cookie)
    user = await in_session(auth.user_for_token, token) if token else None
    return user, (auth.hash_token(token) if token and user else "")


async def _reset_tree(root: BaseState) -> None:
    """Reset every substate of the tab, loaded or not. The Redis state manager loads only
    the substates an event needs: a plain ``reset()`` would leave the others — another
    user's conversation — in Redis, to be sent on the next hydrate."""
    pending = list(type(root).get_substates())
    while pending:
        cls = pending.pop()
        await root.get_state(cls)
        pending.extend(cls.get_substates())
    root.reset()


class IdentityMiddleware(Middleware):
    """Bind each event to the user of its own connection's session cookie."""

    async def preprocess(self, app: App, state: BaseState, event: Event) -> StateUpdate | None:
        root = state._get_root_state()
        user, session_hash = await resolve(cookie_header(root))
        auth_state = await root.get_state(AuthState)
        new_id = user.id if user is not None else 0
        if auth_state._bound_user_id != new_id:
            if auth_state._bound_user_id:
                log.info("tab rebound from user %s to %s", auth_state._bound_user_id, new_id)
            await _reset_tree(root)  # every substate: nothing of the previous user survives
            auth_state = await root.get_state(AuthState)
        auth_state._bound_user_id = new_id
        auth_state._bound_session = session_hash
        if user is not None:
            auth_state.user_email, auth_state.is_admin = user.email, user.is_admin
        else:
            auth_state.user_email, auth_state.is_admin = "", False
        # Only an event from a websocket carries the tab token in its own router data.
        token = (event.router_data or {}).get("token") or ""
        if token:
            await tab_bindings.bind(str(token), session_hash or None)
        return None


async def current_user_id(state: rx.State) -> int | None:
    """The id of the user who sent the current event, or None (resolved by the middleware)."""
    auth_state = await state.get_state(AuthState)
    return auth_state._bound_user_id or None


async def require_user_id(state: rx.State) -> int:
    user_id = await current_user_id(state)
    if user_id is None:
        raise AuthError()
    return user_id


def install(app: Any) -> None:
    """Register the middleware first, so it runs before any other."""
    app.add_middleware(IdentityMiddleware(), index=0)
