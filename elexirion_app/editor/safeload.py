"""Opening a pipeline fast without weakening the loader: a path that may only accept.

CONTRACT:
- ``load(text) -> data`` — ``yaml.safe_load`` semantics under the loader's caps. Text without
  any anchor (``&``: so no alias, no alias bomb) is composed by libyaml's C composer (which
  caps nesting itself) and accepted only when every check of ``pipelines/loader.py`` would
  pass: nesting within ``MAX_DEPTH``, at most ``MAX_EXPANDED_NODES`` values, only ``SAFE_TAGS``,
  plain text keys without duplicates, no merge keys. Anything else — and every error — goes
  through ``loader.parse_yaml``, which stays the one judge of what is refused and how it is
  said (``PipelineValidationError`` with file and line).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from elexirion_app.editor.yamltext import make_loader, no_gc
from elexirion_app.pipelines.loader import (
    MAX_DEPTH,
    MAX_EXPANDED_NODES,
    MAX_FILE_BYTES,
    SAFE_TAGS,
    parse_yaml,
)

_STR = "tag:yaml.org,2002:str"


def load(text: str, filename: str = "<editor>") -> Any:
    with no_gc():
        data = _fast(text)
        if data is not _DECLINED:
            return data
        return parse_yaml(text, filename)[0]


_DECLINED = object()


def _fast(text: str) -> Any:
    if "&" in text or len(text) > MAX_FILE_BYTES:
        return _DECLINED
    loader = make_loader(text)
    try:
        try:
            root = loader.get_single_node()
        except (yaml.YAMLError, ValueError, TypeError, RecursionError):
            return _DECLINED
        if root is None or not _acceptable(root):
            return _DECLINED
        try:
            return loader.construct_document(root)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError):
            return _DECLINED
    finally:
        loader.dispose()


def _acceptable(root: Node) -> bool:
    """Would the loader's checks pass (depth, size, tags, keys)? False when unsure."""
    count = 0
    stack: list[tuple[Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth >= MAX_DEPTH or count > MAX_EXPANDED_NODES or node.tag not in SAFE_TAGS:
            return False
        if isinstance(node, SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, MappingNode):
            keys: set[str] = set()
            for key, value in node.value:
                if not isinstance(key, ScalarNode) or key.tag != _STR or key.value in keys:
                    return False
                keys.add(key.value)
                count += 1
                stack.append((value, depth + 1))
    return True
