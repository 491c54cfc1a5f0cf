"""Chat components: message bubbles, the conversation sidebar, the composer."""

from __future__ import annotations

import reflex as rx

from elexirion_app.web import routes
from elexirion_app.web.components.status import status_badge
from elexirion_app.web.state.chat import COMPOSER_ID, ChatMsg, ChatState, ProgressRow


def _codeblock(value: object, **props: object) -> rx.Component:
    return rx.code_block(value, can_copy=True, margin_y="1em", wrap_long_lines=True, **props)


def markdown(text: rx.Var[str]) -> rx.Component:
    # use_raw=False: raw HTML in user or model text is shown as text, never rendered.
    return rx.markdown(
        text, use_raw=False, component_map={"pre": _codeblock}, class_name="chat-markdown"
    )


def _icon_button(icon: str, label: str, **props: object) -> rx.Component:
    return rx.tooltip(
        rx.icon_button(
            rx.icon(icon, size=14), variant="ghost", size="1", aria_label=label, **props
        ),
        content=label,
    )


def sibling_switcher(msg: ChatMsg) -> rx.Component:
    return rx.cond(
        msg.sibling_count > 1,
        rx.hstack(
            _icon_button(
                "chevron-left",
                "Previous version",
                on_click=ChatState.switch_sibling(msg.id, -1),
                class_name="sibling-prev",
            ),
            rx.text(
                msg.sibling_index.to_string() + " / " + msg.sibling_count.to_string(),
                size="1",
                class_name="sibling-position",
            ),
            _icon_button(
                "chevron-right",
                "Next version",
                on_click=ChatState.switch_sibling(msg.id, 1),
                class_name="sibling-next",
            ),
            spacing="1",
            align="center",
        ),
    )


def _actions(msg: ChatMsg) -> rx.Component:
    is_user = msg.role == "user"
    return rx.hstack(
        sibling_switcher(msg),
        _icon_button("copy", "Copy", on_click=rx.set_clipboard(msg.content), class_name="msg-copy"),
        rx.cond(
            is_user,
            _icon_button(
                "pencil",
                "Edit and resend",
                on_click=ChatState.start_edit(msg.id),
                class_name="msg-edit",
                disabled=ChatState.streaming,
            ),
            _icon_button(
                "refresh-cw",
                "Regenerate",
                on_click=ChatState.regenerate(msg.id),
                class_name="msg-regenerate",
                disabled=ChatState.streaming,
            ),
        ),
        rx.cond(msg.status == "stopped", rx.badge("stopped", color_scheme="orange", size="1")),
        rx.cond(msg.status == "error", rx.badge("error", color_scheme="red", size="1")),
        rx.cond(~is_user & (msg.model != ""), rx.text(msg.model, size="1", color_scheme="gray")),
        spacing="2",
        align="center",
        justify=rx.cond(is_user, "end", "start"),
        class_name="msg-actions",
    )


def _edit_form(msg: ChatMsg) -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.text_area(
                name="text",
                default_value=msg.content,
                id="edit-input",
                rows="6",
                width="100%",
                auto_focus=True,
            ),
            rx.hstack(
                rx.button("Cancel", type="button", variant="soft", on_click=ChatState.cancel_edit),
                rx.button("Save & send", type="submit", id="edit-submit"),
                justify="end",
                width="100%",
            ),
            width="100%",
        ),
        on_submit=ChatState.save_edit,
        # Its own width: inside the right-aligned bubble column "100%" was the width of the
        # shortest content, ~190 px for a long message.
        width="min(640px, 75vw)",
    )


def decision_card(note: rx.Var[str]) -> rx.Component:
    """The router's decision (pipeline, why, inputs, confidence) above a reply."""
    return rx.cond(
        note != "",
        rx.callout(
            markdown(note),
            icon="route",
            size="1",
            color_scheme="violet",
            class_name="route-decision",
            width="100%",
        ),
    )


def _progress_row(step: ProgressRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(step.name),
        rx.table.cell(status_badge(step.status)),
        rx.table.cell(step.model),
        rx.table.cell(step.tokens),
        rx.table.cell(step.cost),
        rx.table.cell(rx.text(step.preview, size="1", color_scheme="gray", trim="both")),
        class_name="progress-step",
        data_step=step.name,
        data_status=step.status,
    )


def run_progress() -> rx.Component:
    """Live steps of the pipeline the current turn runs."""
    return rx.cond(
        ChatState.progress_head != "",
        rx.vstack(
            rx.hstack(
                rx.spinner(size="1", loading=ChatState.streaming),
                rx.text(ChatState.progress_head, size="2", weight="medium"),
            ),
            rx.table.root(
                rx.table.body(rx.foreach(ChatState.progress_steps, _progress_row)),
                size="1",
                width="100%",
            ),
            id="run-progress",
            width="100%",
        ),
    )


def message_bubble(msg: ChatMsg) -> rx.Component:
    is_user = msg.role == "user"
    bubble = rx.box(
        rx.cond(~is_user, decision_card(msg.note)),
        rx.cond(is_user, rx.text(msg.content, white_space="pre-wrap"), markdown(msg.content)),
        rx.cond(
            msg.run_id != "",
            rx.link(
                "Open the run →",
                href=routes.RUN_VIEW + "?id=" + msg.run_id,
                class_name="run-link",
                size="2",
            ),
        ),
        rx.cond(
            msg.pipeline != "",
            rx.link(
                "Open in editor →",
                href=routes.PIPELINE_EDIT + "?name=" + msg.pipeline,
                class_name="pipeline-link",
                size="2",
            ),
        ),
        data_role=msg.role,
        data_status=msg.status,
        data_message_id=msg.id,
        class_name="chat-message",
        background=rx.cond(is_user, "var(--accent-a3)", "var(--gray-a2)"),
        border_radius="12px",
        padding_x="1em",
        padding_y="0.6em",
        max_width="100%",
        overflow_x="auto",
    )
    return rx.vstack(
        rx.cond(is_user & (ChatState.editing_id == msg.id), _edit_form(msg), bubble),
        _actions(msg),
        align_items=rx.cond(is_user, "flex-end", "flex-start"),
        align_self=rx.cond(is_user, "flex-end", "flex-start"),
        max_width="85%",
        spacing="1",
    )


def streaming_bubble() -> rx.Component:
    return rx.cond(
        ChatState.streaming,
        rx.box(
            decision_card(ChatState.streaming_note),
            run_progress(),
            rx.cond(
                (ChatState.streaming_text == "") & (ChatState.progress_head == ""),
                rx.hstack(
                    rx.spinner(size="1"), rx.text("thinking…", size="2", color_scheme="gray")
                ),
                markdown(ChatState.streaming_text),
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
            max_width="85%",
        ),
    )


def _conversation_item(c: rx.Var[dict[str, str]]) -> rx.Component:
    active = ChatState.conversation_id.to_string() == c["id"]
    return rx.cond(
        ChatState.renaming_id.to_string() == c["id"],
        rx.form(
            rx.input(
                name="title", default_value=c["title"], auto_focus=True, size="2", id="rename-input"
            ),
            on_submit=ChatState.rename,
            width="100%",
        ),
        rx.hstack(
            rx.button(
                c["title"],
                on_click=ChatState.select_conversation(c["id"]),
                variant=rx.cond(active, "solid", "ghost"),
                flex="1",
                min_width="0",
                justify_content="flex-start",
                overflow="hidden",
                text_overflow="ellipsis",
                white_space="nowrap",
                class_name="conversation-item",
            ),
            _icon_button(
                "pencil",
                "Rename",
                on_click=ChatState.start_rename(c["id"]),
                class_name="conversation-rename",
            ),
            _icon_button(
                "trash-2",
                "Delete",
                on_click=ChatState.delete_conversation(c["id"]),
                class_name="conversation-delete",
                color_scheme="red",
            ),
            width="100%",
            spacing="1",
            align="center",
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
        rx.foreach(ChatState.conversations, _conversation_item),
        width="280px",
        min_width="280px",
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
                id=COMPOSER_ID,
                placeholder="Ask anything… (Enter to send, Shift+Enter for a new line)",
                enter_key_submit=True,
                rows="2",
                width="100%",
                auto_focus=True,
            ),
            rx.cond(
                ChatState.streaming,
                rx.button(
                    rx.icon("square", size=16),
                    "Stop",
                    id="chat-stop",
                    type="button",
                    on_click=ChatState.stop,
                    color_scheme="red",
                    size="3",
                ),
                rx.button(
                    rx.icon("send", size=16), "Send", id="chat-send", type="submit", size="3"
                ),
            ),
            width="100%",
            align="end",
        ),
        on_submit=ChatState.send,  # it clears the box once the message is taken
        width="100%",
    )


def load_earlier() -> rx.Component:
    return rx.cond(
        ChatState.has_more,
        rx.center(
            rx.button(
                "Load earlier messages",
                variant="soft",
                size="1",
                id="load-earlier",
                on_click=ChatState.load_earlier,
            ),
            width="100%",
        ),
    )


def budget_banner() -> rx.Component:
    """A cap at its warn ratio (amber) or used up (red), with the numbers."""
    return rx.cond(
        ChatState.budget_note != "",
        rx.callout(
            ChatState.budget_note,
            icon="triangle_alert",
            size="1",
            color_scheme=rx.cond(ChatState.budget_level == "exceeded", "red", "amber"),
            id="budget-banner",
        ),
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
        rx.text(
            "Answers by ", ChatState.model_label, size="1", color_scheme="gray", id="model-label"
        ),
    )
