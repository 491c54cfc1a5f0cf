"""Login state of a tab: who the current event's session cookie belongs to.

The session cookie is HttpOnly: only the server routes in ``api/auth_routes.py`` set and
clear it (log in, register, log out are HTML form posts there). ``web/identity.py`` resolves
it for every event and fills the backend vars below; nothing here is trusted from the client.
"""

from __future__ import annotations

import logging
from typing import Any

import reflex as rx

from elexirion_app.services.accounts.oidc import MESSAGES as OIDC_MESSAGES
from elexirion_app.web import routes

log = logging.getLogger(__name__)

# Messages the login/register pages show for the ``?error=`` codes the auth routes send back
# (codes only: no client-supplied text is ever rendered).
AUTH_MESSAGES = {
    "credentials": "Wrong email or password.",
    "email": "Enter a valid email address.",
    "password": "The password must have between 8 and 1024 characters.",
    "mismatch": "The two passwords differ.",
    "exists": "An account with this email already exists. Log in instead.",
    "origin": "That form came from another site and was refused.",
    "disabled": "This account is disabled.",
    "server": "Something went wrong. Please try again.",
    **OIDC_MESSAGES,
}


class AuthState(rx.State):
    user_email: str = ""
    is_admin: bool = False
    auth_error: str = ""
    # Set by the identity middleware before every event (never by the client).
    _bound_user_id: int = 0
    _bound_session: str = ""

    @rx.var
    def logged_in(self) -> bool:
        return bool(self.user_email)

    @rx.event
    def check_login(self) -> Any:
        """on_load of every private page: the login page unless a live session sent this."""
        if not self._bound_user_id:
            return rx.redirect(routes.LOGIN)
        return None

    @rx.event
    def load_auth_page(self) -> Any:
        """on_load of /login and /register: away if logged in, else show the route's message."""
        if self._bound_user_id:
            return rx.redirect(routes.CHAT)
        params = self.router.url.query_parameters
        code = str(params.get("error", ""))
        if code == "limited":
            retry = str(params.get("retry", ""))
            seconds = int(retry) if retry.isdigit() and len(retry) < 8 else 60
            self.auth_error = f"Too many attempts, try again in {seconds} s."
        else:
            self.auth_error = AUTH_MESSAGES.get(code, "")
        typed = str(params.get("email", ""))[: routes.MAX_ECHOED_EMAIL]
        if typed and code:  # a refused form: show the address that was typed again
            page = self.router.url.path.rstrip("/")
            prefix = "register" if page.endswith("register") else "login"
            return rx.set_value(f"{prefix}-email", typed)
        return None
