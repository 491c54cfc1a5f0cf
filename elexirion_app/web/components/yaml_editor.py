"""The YAML editor: our own wrapper of CodeMirror 6 (``@uiw/react-codemirror``).

The React side is ``yaml_editor.jsx`` next to this module, shipped with ``rx.asset(shared=True)``;
its npm packages are pinned in ``lib_dependencies`` and installed by bun when the frontend is
built (nothing is loaded from a CDN). ``@codemirror/state``/``view``/``language`` are pinned too
so the bundle holds exactly one copy of each (two copies break CodeMirror's extension checks).

Controlled by revision: the editor shows ``value`` on mount and replaces its text only when
``revision`` changes, so the server's echo of what the user typed never moves the cursor.
The wrapper element is ``#yaml-editor`` unless an ``id`` is given; it contains ``.cm-content``.
"""

from __future__ import annotations

from typing import Annotated, Any

import reflex as rx
from reflex_base.event import EventHandler, EventType, passthrough_event_spec
from reflex_base.vars.base import Var

NPM_PACKAGES = (
    "@uiw/react-codemirror@4.25.12",
    "@codemirror/lang-yaml@6.1.3",
    "@codemirror/lint@6.9.8",
    "@codemirror/state@6.7.6",
    "@codemirror/view@6.43.15",
    "@codemirror/language@6.13.1",
    "@codemirror/autocomplete@6.20.4",
    "@lezer/common@1.5.5",
    "codemirror-json-schema@0.8.1",
    # The version codemirror-json-schema 0.8.1 resolves to (one copy): the schema is compiled
    # once with it (yaml_schema.js).
    "json-schema-library@9.3.5",
)

_JSX = rx.asset("yaml_editor.jsx", shared=True)
# Imported by yaml_editor.jsx from the same folder: completion and hover on a window of the
# document, with the schema compiled once.
_SCHEMA_JS = rx.asset("yaml_schema.js", shared=True)


class YamlEditor(rx.NoSSRComponent):
    """``YamlEditor`` of yaml_editor.jsx (client-side only: CodeMirror needs the DOM)."""

    library = _JSX.importable_path
    tag = "YamlEditor"
    lib_dependencies: list[str] = list(NPM_PACKAGES)

    value: Var[str]
    revision: Var[int]
    diagnostics: Var[list[dict[str, Any]]]
    schema: Var[dict[str, Any] | None]
    debounce_ms: Var[int]
    read_only: Var[bool]

    on_change: Annotated[EventHandler, passthrough_event_spec(str)]


def yaml_editor(
    *,
    value: Var[str] | str,
    revision: Var[int] | int,
    diagnostics: Var[list[dict[str, Any]]] | list[dict[str, Any]],
    schema: Var[dict[str, Any] | None] | dict[str, Any] | None = None,
    on_change: EventType[str] | None = None,
    **props: Any,
) -> rx.Component:
    """The YAML editor; it fills its container (give the container a height).

    - ``value``/``revision``: bump ``revision`` in the same event that sets ``value`` from the
      server (a graph edit, loading a pipeline, a rollback); the text is then replaced (one
      minimal change: the cursor stays put outside the changed region and any keystrokes not
      yet sent are dropped in favour of the server's text). Setting ``value`` without a new
      revision does nothing in the browser.
    - ``diagnostics``: ``{line, severity, message}`` with a 1-based line and severity ``error``
      or ``warning`` (``info`` also accepted), shown as underlined lines and gutter markers;
      replaced whenever the prop changes.
    - ``schema``: a JSON Schema dict for completion and hover (codemirror-json-schema, loaded
      on first use), or None.
    - ``on_change(text)``: the full text, ~250 ms after the last keystroke (``debounce_ms``),
      at once when the editor loses focus; never for a revision replacement.
    """
    extra: dict[str, Any] = {"on_change": on_change} if on_change is not None else {}
    props.setdefault("id", "yaml-editor")
    return YamlEditor.create(
        value=value,
        revision=revision,
        diagnostics=diagnostics,
        schema=schema,
        **extra,
        **props,
    )
