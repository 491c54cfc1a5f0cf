"""A one-line notice at the top of every page: what the backend's last-resort error handler
says when a handler failed. (A ``rx.toast`` sent from the server is a script the page's
Content-Security-Policy rightly refuses to evaluate; this is plain state.)"""

from __future__ import annotations

from typing import Any

import reflex as rx

from elexirion_app.core.text import clean_title

MAX_NOTICE = 300


class NoticeState(rx.State):
    notice: str = ""

    @rx.event
    def show(self, message: Any) -> None:
        # Anyone may call this; it only ever shows plain text to the tab that sent it.
        self.notice = clean_title(message, MAX_NOTICE)

    @rx.event
    def dismiss(self) -> None:
        self.notice = ""
