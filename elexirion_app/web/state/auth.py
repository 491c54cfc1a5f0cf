"""Login state: the session token lives in a cookie; the user is re-checked in the database
by every handler that touches data (``require_user``)."""

from __future__ import annotations

import logging
from typing import Any

import reflex as rx

from elexirion_app.config import get_settings
from elexirion_app.core.errors import AuthError, ElexirionError
from elexirion_app.db.engine import session_scope
from elexirion_app.services import auth
from elexirion_app.web import routes

log = logging.getLogger(__name__)

SESSION_COOKIE = "elx_session"


def _field(form: Any, key: str) -> str:
    value = form.get(key, "") if isinstance(form, dict) else ""
    return value if isinstance(value, str) else ""


class AuthState(rx.State):
    session_token: str = rx.Cookie(
        "", name=SESSION_COOKIE, same_site="strict", max_age=14 * 24 * 3600
    )
    user_email: str = ""
    is_admin: bool = False
    auth_error: str = ""
    busy: bool = False
    _user_id: int | None = None

    def current_user(self) -> auth.UserInfo | None:
        """The logged-in user, checked against the database (not cached client data)."""
        if not self.session_token:
            return None
        with session_scope() as session:
            return auth.user_for_token(session, self.session_token)

    def require_user(self) -> auth.UserInfo:
        user = self.current_user()
        if user is None:
            self._user_id = None
            raise AuthError()
        self._user_id = user.id
        return user

    @rx.var
    def logged_in(self) -> bool:
        return bool(self.user_email)

    @rx.event
    def check_login(self) -> Any:
        """on_load of every private page: load the user or go to the login page."""
        user = self.current_user()
        if user is None:
            self.user_email, self.is_admin, self._user_id = "", False, None
            return rx.redirect(routes.LOGIN)
        self.user_email, self.is_admin, self._user_id = user.email, user.is_admin, user.id
        return None

    @rx.event
    def redirect_if_logged_in(self) -> Any:
        self.auth_error = ""
        if self.current_user() is not None:
            return rx.redirect(routes.CHAT)
        return None

    def _start_session(self, user: auth.UserInfo) -> Any:
        with session_scope() as session:
            token = auth.create_session(session, user.id, days=get_settings().session_days)
        self.session_token = token
        self.user_email, self.is_admin, self._user_id = user.email, user.is_admin, user.id
        self.auth_error = ""
        return rx.redirect(routes.CHAT)

    @rx.event
    def login(self, form_data: dict[str, Any]) -> Any:
        self.auth_error = ""
        try:
            with session_scope() as session:
                user = auth.authenticate(
                    session, _field(form_data, "email"), _field(form_data, "password")
                )
        except ElexirionError as exc:
            self.auth_error = exc.user_message
            return None
        return self._start_session(user)

    @rx.event
    def register(self, form_data: dict[str, Any]) -> Any:
        self.auth_error = ""
        password = _field(form_data, "password")
        confirm = form_data.get("confirm") if isinstance(form_data, dict) else None
        if isinstance(confirm, str) and confirm != password:
            self.auth_error = "The two passwords differ."
            return None
        try:
            with session_scope() as session:
                user = auth.register(session, _field(form_data, "email"), password)
        except ElexirionError as exc:
            self.auth_error = exc.user_message
            return None
        return self._start_session(user)

    @rx.event
    def logout(self) -> Any:
        token = self.session_token
        if token:
            with session_scope() as session:
                auth.revoke_session(session, token)
        self.session_token = ""
        self.user_email, self.is_admin, self._user_id = "", False, None
        return rx.redirect(routes.LOGIN)
