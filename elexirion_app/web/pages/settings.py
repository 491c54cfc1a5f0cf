"""/settings — the user's API keys, linked sign-ins and rate limits."""

from __future__ import annotations

import reflex as rx

from elexirion_app.config import get_settings
from elexirion_app.services.accounts import api_keys
from elexirion_app.web import routes
from elexirion_app.web.components.common import error_callout
from elexirion_app.web.layout import private_page
from elexirion_app.web.state.settings import IdentityRow, KeyRow, LimitRow, SettingsState


def _revoke(k: KeyRow) -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(
            rx.button(
                "Revoke", size="1", variant="soft", color_scheme="red", class_name="key-revoke"
            )
        ),
        rx.alert_dialog.content(
            rx.alert_dialog.title("Revoke " + k.name + "?"),
            rx.alert_dialog.description(
                "Scripts using this key are refused from their next request. This cannot be "
                "undone: create a new key instead."
            ),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft")),
                rx.alert_dialog.action(
                    rx.button(
                        "Revoke",
                        color_scheme="red",
                        class_name="key-revoke-confirm",
                        on_click=SettingsState.revoke_key(k.id),
                    )
                ),
                justify="end",
                spacing="2",
            ),
        ),
    )


_ONE_LINE = {
    "display": "block",
    "max_width": "18em",
    "overflow": "hidden",
    "text_overflow": "ellipsis",
    "white_space": "nowrap",
}


def _key(k: KeyRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            # A long name is cut with an ellipsis (whole in its tooltip): the columns after it,
            # and the Revoke button, stay on screen.
            rx.text(k.name, weight="medium", title=k.name, class_name="key-name", style=_ONE_LINE)
        ),
        rx.table.cell(rx.code(k.display, class_name="key-prefix")),
        rx.table.cell(k.created),
        rx.table.cell(k.last_used),
        rx.table.cell(
            rx.cond(
                k.live,
                rx.badge("live", color_scheme="green", variant="soft"),
                rx.badge("revoked " + k.revoked, color_scheme="gray", variant="soft"),
            ),
            class_name="key-status",
        ),
        rx.table.cell(rx.cond(k.live, _revoke(k))),
        class_name="key-row",
        data_key_name=k.name,
    )


def _new_key_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Your new API key: " + SettingsState.new_key_name),
            rx.dialog.description(
                "Copy it now: it is shown only this once. We keep only a fingerprint of it."
            ),
            rx.hstack(
                rx.code(
                    SettingsState.new_key, id="new-key", size="3", style={"word_break": "break_all"}
                ),
                rx.button(
                    rx.icon("copy", size=14),
                    "Copy",
                    id="new-key-copy",
                    variant="soft",
                    on_click=rx.set_clipboard(SettingsState.new_key),
                ),
                align="center",
                spacing="3",
                margin_y="1em",
            ),
            rx.text(
                "Send it as ",
                rx.code("Authorization: Bearer <key>"),
                " to the HTTP API.",
                size="2",
                color_scheme="gray",
            ),
            rx.flex(
                rx.dialog.close(rx.button("Done", id="new-key-done")),
                justify="end",
                margin_top="1em",
            ),
        ),
        open=SettingsState.new_key != "",
        on_open_change=SettingsState.key_dialog_changed,
    )


def _keys() -> rx.Component:
    return rx.vstack(
        rx.heading("API keys", size="4"),
        rx.text(
            "A key carries your rights only. Revoked keys stay listed for your records.",
            color_scheme="gray",
            size="2",
        ),
        rx.form(
            rx.hstack(
                rx.input(
                    name="name",
                    id="key-name",
                    placeholder="Name, e.g. CI deploy",
                    max_length=api_keys.MAX_NAME,
                    required=True,
                    width="20em",
                ),
                rx.button("Create key", id="key-create", type="submit"),
                spacing="2",
            ),
            on_submit=SettingsState.create_key,
            reset_on_submit=True,
        ),
        rx.cond(
            SettingsState.keys.length() > 0,
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[
                            rx.table.column_header_cell(h)
                            for h in ("Name", "Key", "Created", "Last used", "Status", "")
                        ]
                    )
                ),
                rx.table.body(rx.foreach(SettingsState.keys, _key)),
                width="100%",
                id="keys",
                style={"overflow_x": "auto"},  # a narrow window scrolls, nothing is cut off
            ),
            rx.text("No API keys yet.", color_scheme="gray", size="2", id="no-keys"),
        ),
        width="100%",
        spacing="3",
    )


def _identity(i: IdentityRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(i.provider, weight="medium")),
        rx.table.cell(i.email),
        rx.table.cell(rx.code(i.issuer)),
        rx.table.cell(i.linked),
        rx.table.cell(i.last_login),
    )


def _connect_links() -> rx.Component:
    """One link per configured provider to ``/auth/oidc/{p}/connect``, a full-page navigation
    that starts the provider's sign-in and links it to this account."""
    links = [
        rx.cond(
            SettingsState.connected_providers.contains(name),
            rx.button(f"{display} connected", variant="soft", disabled=True, id=f"connect-{name}"),
            rx.button(
                rx.el.a(
                    f"Connect {display}",
                    href=routes.oidc_connect(name),
                    id=f"connect-{name}",
                    reload_document=True,  # a server route: React Router would route it (a 404)
                ),
                as_child=True,
                variant="soft",
            ),
        )
        for name, display in ((p.name, p.display_name) for p in get_settings().oidc_providers)
    ]
    return rx.hstack(*links, spacing="2", wrap="wrap")


def _identities() -> rx.Component:
    return rx.vstack(
        rx.heading("Linked sign-ins", size="4"),
        rx.cond(
            SettingsState.identities.length() > 0,
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[
                            rx.table.column_header_cell(h)
                            for h in ("Provider", "Email", "Issuer", "Linked", "Last sign-in")
                        ]
                    )
                ),
                rx.table.body(rx.foreach(SettingsState.identities, _identity)),
                width="100%",
            ),
            rx.text(
                "None: you sign in with your password. Connect your organisation's identity "
                "provider below to sign in with it too."
                if get_settings().oidc_providers
                else "None: you sign in with your password (no identity provider is set up).",
                color_scheme="gray",
                size="2",
                id="no-identities",
            ),
        ),
        _connect_links(),
        width="100%",
        spacing="3",
        id="identities",
    )


def _limit(lim: LimitRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(lim.label),
        rx.table.cell(rx.code(lim.rule)),
        rx.table.cell(rx.text(lim.source, color_scheme="gray", size="2")),
    )


def _limits() -> rx.Component:
    return rx.vstack(
        rx.heading("Rate limits", size="4"),
        rx.table.root(
            rx.table.body(rx.foreach(SettingsState.limits, _limit)),
            width="100%",
            id="my-limits",
        ),
        width="100%",
        spacing="3",
    )


@private_page
def settings_page() -> rx.Component:
    return rx.vstack(
        rx.heading("Settings", size="6"),
        rx.cond(
            SettingsState.message != "",
            rx.callout(SettingsState.message, color_scheme="green", id="settings-message"),
        ),
        error_callout(SettingsState.error, "settings-error"),
        _keys(),
        rx.divider(),
        _identities(),
        rx.divider(),
        _limits(),
        _new_key_dialog(),
        padding="2em",
        width="100%",
        max_width="1100px",
        margin_x="auto",
        spacing="5",
    )
