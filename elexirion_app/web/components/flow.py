"""The pipeline graph: our own wrapper of React Flow (``@xyflow/react`` 12) with dagre layout.

The React side is ``pipeline_graph.jsx`` next to this module, shipped with
``rx.asset(shared=True)`` (Reflex copies it into ``.web/public/external/...`` and the build
imports it from there); its npm packages are pinned in ``lib_dependencies`` and installed by
bun when the frontend is built. Layout (top to bottom, groups as sub-flows sized to fit their
children) runs in the browser, again only when the structure changes (not on a rename or a new
label); nodes and edges that did not change stay the same objects, so an update re-renders only
what changed. Dragging is local React state and reports once, at drag stop.

Stable hooks for browser tests: every node's content element carries ``data-step`` (the step
name), ``data-node-id`` (the node id) and ``data-status`` (``idle`` unless given).
"""

from __future__ import annotations

from typing import Annotated, Any

import reflex as rx
from reflex_base.event import EventHandler, EventType, passthrough_event_spec
from reflex_base.vars.base import Var
from reflex_components_lucide.icon import LUCIDE_LIBRARY

XYFLOW = "@xyflow/react@12.12.1"
DAGRE = "@dagrejs/dagre@3.1.3"
# The version Reflex's own rx.icon pins, so the app bundles one lucide-react.
LUCIDE = LUCIDE_LIBRARY

_JSX = rx.asset("pipeline_graph.jsx", shared=True)
# Imported by pipeline_graph.jsx from the same folder.
_PARTS = (
    rx.asset("pipeline_layout.js", shared=True),
    rx.asset("pipeline_parts.jsx", shared=True),
)

STATUSES = ("idle", "queued", "running", "succeeded", "failed", "skipped")
EDGE_KINDS = ("order", "data", "loop")


class PipelineGraph(rx.NoSSRComponent):
    """``PipelineGraph`` of pipeline_graph.jsx (client-side only: it measures the DOM)."""

    library = _JSX.importable_path
    tag = "PipelineGraph"
    lib_dependencies: list[str] = [XYFLOW, DAGRE, LUCIDE]

    nodes: Var[list[dict[str, Any]]]
    edges: Var[list[dict[str, Any]]]
    statuses: Var[dict[str, str]]
    problems: Var[dict[str, str]]
    selected: Var[str]
    show_minimap: Var[bool]

    # ``Annotated[EventHandler, spec]`` is what ``EventHandler[spec]`` builds, spelled so mypy
    # accepts it.
    on_select: Annotated[EventHandler, passthrough_event_spec(str)]
    on_drag_stop: Annotated[EventHandler, passthrough_event_spec(str, float, float, int)]
    on_connect: Annotated[EventHandler, passthrough_event_spec(str, str)]
    on_delete: Annotated[EventHandler, passthrough_event_spec(str)]


def pipeline_graph(
    *,
    nodes: Var[list[dict[str, Any]]] | list[dict[str, Any]],
    edges: Var[list[dict[str, Any]]] | list[dict[str, Any]],
    statuses: Var[dict[str, str]] | dict[str, str],
    problems: Var[dict[str, str]] | dict[str, str],
    selected: Var[str] | str,
    on_select: EventType[str] | None = None,
    on_drag_stop: EventType[str, float, float, int] | None = None,
    on_connect: EventType[str, str] | None = None,
    on_delete: EventType[str] | None = None,
    **props: Any,
) -> rx.Component:
    """The graph of a pipeline; it fills its container (give the container a height).

    - ``nodes``: ``{id, step, type, label, model, parent, index, group, icon, x?, y?}``; ``id``
      is the step path (``loop/inner``), ``parent`` the id of the group node containing it (or
      ``""``), ``index`` its order among its siblings, ``group`` true for a container (for and
      while loops, parallel tasks, nested pipelines), ``icon`` a step type name (``claude``,
      ``for_loop`` …) or an emoji. ``x``/``y`` (relative to the parent, as ``on_drag_stop``
      reports them) pin a node; the others are laid out by dagre.
    - ``edges``: ``{id, source, target, kind}``, kind ``order`` (solid), ``data`` (dashed;
      animated while there are at most 24 of them, else only those of the selected node) or
      ``loop`` (purple, dotted).
    - ``statuses``: node id → ``idle|queued|running|succeeded|failed|skipped``; ``problems``:
      node id → message (the node is outlined red, the message is its tooltip); ``selected``:
      the selected node id. These three never cause a relayout.
    - ``on_select(node_id)`` on click; ``on_drag_stop(node_id, x, y, index)`` once per drag, with
      ``index`` the node's new place among its siblings by vertical order;
      ``on_connect(source_id, target_id)`` when the user draws an edge (nothing is added until
      the server sends new ``edges``); ``on_delete(node_id)`` on Delete/Backspace while the
      graph has focus (nothing is removed until the server sends new ``nodes``).
    """
    events = {
        name: handler
        for name, handler in (
            ("on_select", on_select),
            ("on_drag_stop", on_drag_stop),
            ("on_connect", on_connect),
            ("on_delete", on_delete),
        )
        if handler is not None
    }
    return PipelineGraph.create(
        nodes=nodes,
        edges=edges,
        statuses=statuses,
        problems=problems,
        selected=selected,
        **events,
        **props,
    )
