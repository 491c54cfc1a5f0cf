"""Chat components: message bubbles, the conversation sidebar, the composer."""

from __future__ import annotations

import reflex as rx

from elexirion_app.web.state.chat import ChatState


def _markdown(text: rx.Var[str]) -> rx.Component:
    # use_raw=False: raw HTML in user or model text is shown as text, never rendered.
    return rx.markdown(text, use_raw=False, class_name="chat-markdown")


def message_bubble(msg: rx.Var[dict[str, str]]) -> rx.Component:
    is_user = msg["role"] == "user"
    return rx.box(
        rx.cond(
            is_user, rx.text(msg["content"], white_space="pre-wrap"), _markdown(msg["content"])
        ),
        data_role=msg["role"],
        data_status=msg["status"],
        class_name="chat-message",
        align_self=rx.cond(is_user, "flex-end", "flex-start"),
        background=rx.cond(is_user, "var(--accent-a3)", "var(--gray-a2)"),
        border_radius="12px",
        padding_x="1em",
        padding_y="0.6em",
        max_width="80%",
    )


def streaming_bubble() -> rx.Component:
    return rx.cond(
        ChatState.streaming,
        rx.box(
            rx.cond(
                ChatState.streaming_text == "",
                rx.hstack(
                    rx.spinner(size="1"), rx.text("thinking…", size="2", color_scheme="gray")
                ),
                _markdown(ChatState.streaming_text),
            ),
            data_role="assistant",
            data_status="streaming",
            id="streaming-reply",
            class_name="chat-message",
            align_self="flex-start",
            background="var(--gray-a2)",
            border_radius="12px",
            padding_x="1em",
            padding_y="0.6em",
            max_width="80%",
        ),
    )


def sidebar() -> rx.Component:
    return rx.vstack(
        rx.button(
            rx.icon("plus", size=16),
            "New chat",
            id="new-chat",
            on_click=ChatState.new_conversation,
            width="100%",
            variant="soft",
        ),
        rx.foreach(
            ChatState.conversations,
            lambda c: rx.button(
                c["title"],
                on_click=ChatState.select_conversation(c["id"]),
                variant=rx.cond(ChatState.conversation_id.to_string() == c["id"], "solid", "ghost"),
                width="100%",
                justify_content="flex-start",
                overflow="hidden",
                text_overflow="ellipsis",
                white_space="nowrap",
                class_name="conversation-item",
            ),
        ),
        width="260px",
        min_width="260px",
        padding="1em",
        border_right="1px solid var(--gray-a5)",
        height="100%",
        overflow_y="auto",
        spacing="2",
        id="conversation-list",
    )


def composer() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.text_area(
                name="message",
                id="chat-input",
                placeholder="Ask anything… (Enter to send, Shift+Enter for a new line)",
                enter_key_submit=True,
                rows="2",
                width="100%",
                auto_focus=True,
            ),
            rx.button(
                rx.icon("send", size=16),
                "Send",
                id="chat-send",
                type="submit",
                loading=ChatState.streaming,
                size="3",
            ),
            width="100%",
            align="end",
        ),
        on_submit=ChatState.send,
        reset_on_submit=True,
        width="100%",
    )


def offline_banner() -> rx.Component:
    return rx.cond(
        ChatState.offline,
        rx.callout(
            "Offline demo model: no API key is set on this server, so replies are generated "
            "locally and deterministically — not by Claude or Gemini.",
            icon="info",
            size="1",
            id="offline-banner",
        ),
    )
