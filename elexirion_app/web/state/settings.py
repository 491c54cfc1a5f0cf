"""/settings: the user's API keys (create — shown once —, list, revoke), their linked OIDC
sign-ins and the rate limits that apply to them.

Every handler is a public endpoint: the user comes from the session cookie of the event
(``current_user_id``), a key id from the page is only a hint that ``api_keys.revoke_key``
checks against the owner, and database work runs in a thread. The plain key of a new key
lives in ``new_key`` only until its dialog closes (and is cleared by ``load``): it is never
stored anywhere else.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import reflex as rx

from elexirion_app.config import get_settings
from elexirion_app.core.errors import ElexirionError
from elexirion_app.db.engine import in_session
from elexirion_app.services.accounts import api_keys, profile
from elexirion_app.services.accounts.oidc import MESSAGES as OIDC_MESSAGES
from elexirion_app.web import routes
from elexirion_app.web.identity import current_user_id

log = logging.getLogger(__name__)
T = TypeVar("T")
SCOPE_LABELS = {"chat_user": "Chat messages", "api_user": "API calls"}


def stamp(value: datetime | None) -> str:
    """A UTC time as the pages show it ("" for none)."""
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


@dataclasses.dataclass
class KeyRow:
    id: int = 0
    name: str = ""
    display: str = ""
    created: str = ""
    last_used: str = ""
    live: bool = True
    revoked: str = ""


@dataclasses.dataclass
class IdentityRow:
    provider: str = ""
    issuer: str = ""
    email: str = ""
    linked: str = ""
    last_login: str = ""


@dataclasses.dataclass
class LimitRow:
    label: str = ""
    rule: str = ""
    source: str = ""


def _key_row(v: api_keys.ApiKeyView) -> KeyRow:
    return KeyRow(
        id=v.id,
        name=v.name,
        display=v.display,
        created=stamp(v.created_at),
        last_used=stamp(v.last_used_at) or "never",
        live=v.live,
        revoked=stamp(v.revoked_at),
    )


class SettingsState(rx.State):
    keys: list[KeyRow] = []
    identities: list[IdentityRow] = []
    connected_providers: list[str] = []  # names of the configured providers linked to me
    limits: list[LimitRow] = []
    # The plain key of the key just created: shown once in a dialog, cleared when it closes.
    new_key: str = ""
    new_key_name: str = ""
    message: str = ""
    error: str = ""

    async def _work(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """``fn(session, *args)`` in a database thread; a refusal becomes ``self.error``."""

        try:
            return await in_session(fn, *args, **kwargs)
        except ElexirionError as exc:
            self.error = exc.user_message
            return None

    async def _refresh(self, user_id: int) -> None:
        found = await self._work(profile.overview, user_id)
        if found is None:
            self.keys, self.identities, self.limits = [], [], []
            return
        self.keys = [_key_row(v) for v in found.keys]
        self.identities = [
            IdentityRow(i.provider, i.issuer, i.email, stamp(i.created_at), stamp(i.last_login_at))
            for i in found.identities
        ]
        self.connected_providers = sorted({i.provider for i in found.identities})
        self.limits = [
            LimitRow(
                SCOPE_LABELS.get(lim.scope, lim.scope),
                lim.rule.replace(";", ", "),
                "set for you by an admin" if lim.own else "the server's default",
            )
            for lim in found.limits
        ]

    def _address(self) -> str:
        return str(self.router.session.client_ip or "")

    @rx.event
    async def load(self) -> Any:
        self.new_key, self.new_key_name, self.message, self.error = "", "", "", ""
        user_id = await current_user_id(self)
        if user_id is None:
            self.keys, self.identities, self.limits = [], [], []
            return rx.redirect(routes.LOGIN)
        await self._refresh(user_id)
        self._show_connect_outcome()
        return None

    def _show_connect_outcome(self) -> None:
        """The result of a provider connect, from the callback's redirect (?connected=, ?error=):
        only known names and codes are shown, never the query's text."""
        query = self.router.url.query_parameters
        names = {p.name: p.display_name for p in get_settings().oidc_providers}
        done = query.get("connected", "")
        if done in names and done in self.connected_providers:
            self.message = f"Connected {names[done]}: you can sign in with it from now on."
        code = query.get("error", "")
        if code in OIDC_MESSAGES:
            self.error = OIDC_MESSAGES[code]

    @rx.event
    async def create_key(self, form_data: Any) -> Any:
        self.new_key, self.new_key_name, self.message, self.error = "", "", "", ""
        user_id = await current_user_id(self)
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        name = form_data.get("name") if isinstance(form_data, dict) else None
        created = await self._work(api_keys.create_key, user_id, name, address=self._address())
        if created is not None:
            view, plain = created
            self.new_key, self.new_key_name = plain, view.name
        await self._refresh(user_id)
        return None

    @rx.event
    def key_dialog_changed(self, is_open: Any) -> None:
        """The new-key dialog opened or closed: once closed, the plain key is gone."""
        if is_open is not True:
            self.new_key, self.new_key_name = "", ""

    @rx.event
    async def revoke_key(self, key_id: Any) -> Any:
        self.message, self.error = "", ""
        user_id = await current_user_id(self)
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        await self._work(api_keys.revoke_key, user_id, key_id, address=self._address())
        if not self.error:
            self.message = "The key is revoked: the next request that uses it is refused."
        await self._refresh(user_id)
        return None
