"""Reading an edited text back: its node tree and its data, reusing the data of every step
whose text did not change.

CONTRACT:
- ``read_back(text, old, old_data) -> (data, node)`` — what ``yamltext.compose(text)`` gives,
  but each top-level step whose source text (same characters, same column) is found in the old
  text gets the old step's data object instead of a new construction. The text of a block node
  and its column decide its value (tags resolve the same way; documents with anchors/aliases
  or merge keys are constructed in full), so the data is equal to ``yaml.safe_load(text)``.
  Constructing a 200-step document costs more than composing it; an edit touches one or two
  steps. Raises what PyYAML raises for text it cannot read.
"""

from __future__ import annotations

from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from elexirion_app.editor.yamltext import Source, compose, make_loader, no_gc

_STR = "tag:yaml.org,2002:str"


def _steps_node(root: Node | None) -> SequenceNode | None:
    """The ``workflow.steps`` block sequence of a plain document, if it has one."""
    if not isinstance(root, MappingNode):
        return None
    node: Node = root
    for key in ("workflow", "steps"):
        if not isinstance(node, MappingNode):
            return None
        found = [
            v
            for k, v in node.value
            if isinstance(k, ScalarNode) and k.tag == _STR and k.value == key
        ]
        if len(found) != 1:
            return None
        node = found[0]
    return node if isinstance(node, SequenceNode) and not node.flow_style else None


def _key(text: str, node: Node) -> tuple[str, int]:
    return text[node.start_mark.index : node.end_mark.index], int(node.start_mark.column)


def _old_steps(old: Source, old_data: Any) -> dict[tuple[str, int], Any]:
    seq = _steps_node(old.root)
    try:
        items = old_data["workflow"]["steps"]
    except (KeyError, TypeError):
        return {}
    if seq is None or not isinstance(items, list) or len(items) != len(seq.value):
        return {}
    return {_key(old.text, n): item for n, item in zip(seq.value, items, strict=True)}


def read_back(text: str, old: Source, old_data: Any) -> tuple[Any, Node | None]:
    if old.shared_nodes or ("&" in text or "<<" in text):
        return compose(text)
    known = _old_steps(old, old_data)
    loader = make_loader(text)
    try:
        with no_gc():
            root = loader.get_single_node()
            seq = _steps_node(root)
            same_head = (
                root is not None
                and old.root is not None
                and (text[: root.start_mark.index] == old.text[: old.root.start_mark.index])
            )  # directives (%TAG ...) decide how tags resolve
            if seq is None or not known or not same_head:
                return (loader.construct_document(root) if root is not None else None), root
            items = seq.value
            seq.value = []
            try:
                data = loader.construct_document(root)
            finally:
                seq.value = items
            steps = data["workflow"]["steps"]
            for item in items:
                reused = known.get(_key(text, item), _MISSING)
                if reused is _MISSING:
                    reused = loader.construct_document(item)
                steps.append(reused)
            return data, root
    finally:
        loader.dispose()


_MISSING = object()
