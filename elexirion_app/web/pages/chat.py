"""/chat"""

from __future__ import annotations

import reflex as rx

from elexirion_app.web.components.chat import (
    budget_banner,
    composer,
    load_earlier,
    message_bubble,
    offline_banner,
    sidebar,
    streaming_bubble,
)
from elexirion_app.web.components.common import error_callout
from elexirion_app.web.layout import private_page
from elexirion_app.web.state.chat import ChatState


@private_page
def chat_page() -> rx.Component:
    return rx.hstack(
        sidebar(),
        rx.vstack(
            offline_banner(),
            budget_banner(),
            rx.auto_scroll(
                rx.vstack(
                    rx.cond(
                        (ChatState.messages.length() == 0)
                        & (ChatState.tail.length() == 0)
                        & ~ChatState.streaming,
                        rx.center(
                            rx.text("Start a conversation.", color_scheme="gray"),
                            padding="3em",
                            width="100%",
                        ),
                    ),
                    load_earlier(),
                    rx.foreach(ChatState.messages, message_bubble),
                    rx.foreach(ChatState.tail, message_bubble),
                    streaming_bubble(),
                    width="100%",
                    spacing="3",
                    id="chat-messages",
                ),
                flex="1",
                width="100%",
                min_height="0",
            ),
            error_callout(ChatState.error, "chat-error"),
            composer(),
            flex="1",
            height="100%",
            padding="1em",
            spacing="3",
            max_width="960px",
            margin_x="auto",
        ),
        height="100%",
        width="100%",
        spacing="0",
    )
