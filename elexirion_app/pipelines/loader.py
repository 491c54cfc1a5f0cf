"""Safe YAML loading with line numbers.

CONTRACT:
- ``load_text(text, filename="<string>") -> PipelineDocument`` and ``load_file(path)`` —
  ``yaml.safe_load`` semantics only (no Python tags), size/alias/depth capped; raise
  ``PipelineValidationError`` (with ``Problem``s carrying file and line) for unreadable YAML or
  a missing ``workflow:`` root.
- ``PipelineDocument.workflow`` is the plain dict under ``workflow:`` (defaults NOT yet
  applied); ``line_of(path)`` gives the source line of a field path like
  ``("steps", 2, "prompt", 0, "content")`` (nearest known parent when unknown).

How: a ``yaml.SafeLoader`` subclass composes the node graph with a depth cap and an alias
count cap; before anything is constructed we walk the graph (iteratively) to refuse
non-standard tags (``!!python/...``), duplicate keys, recursive aliases and alias expansion
beyond ``MAX_EXPANDED_NODES``, and to record the line of every mapping key and sequence item.
Only then does the safe constructor build plain Python data.

Fast path (the editor loads the whole text after every keystroke): text without any anchor
(``&``, so without aliases) is composed by libyaml's C composer (~5x faster; libyaml refuses
nesting beyond 1,000 levels) and its graph used only when the capped composer would accept it;
any error or doubt goes the way above, which stays the one judge of refusals and messages.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from elexirion_app.core.errors import PipelineValidationError, Problem

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_DEPTH = 100
MAX_ALIASES = 1_000
MAX_EXPANDED_NODES = 200_000
SAFE_TAG_PREFIX = "tag:yaml.org,2002:"
SAFE_TAGS = frozenset(
    SAFE_TAG_PREFIX + t
    for t in (
        "str",
        "int",
        "float",
        "bool",
        "null",
        "map",
        "seq",
        "timestamp",
        "binary",
        "omap",
        "pairs",
        "set",
        "merge",
        "value",
    )
)


@dataclass
class PipelineDocument:
    workflow: dict[str, Any]
    file: str = "<string>"
    base_dir: Path = field(default_factory=Path.cwd)
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict)
    # ``file`` resolved (symlinks followed), when whoever loaded it resolved it anyway: the
    # executor takes it instead of resolving again on the event loop (a filesystem call per
    # path component, each a release of the GIL that a busy worker's loop waits to get back).
    real_file: str | None = None

    def line_of(self, path: tuple[Any, ...]) -> int | None:
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]


class _LoadProblem(Exception):
    """Raised inside the loader; becomes one ``Problem``."""

    def __init__(self, message: str, line: int | None = None, hint: str = "") -> None:
        self.line = line
        self.hint = hint
        super().__init__(message)


class _CapsMixin:
    """Composer hooks refusing deep nesting and too many aliases (with the line)."""

    _depth = 0
    _aliases = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):  # type: ignore[attr-defined]
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark  # type: ignore[attr-defined]
                raise _LoadProblem(
                    f"more than {MAX_ALIASES} YAML aliases (*name)",
                    mark.line + 1,
                    "aliases multiply the document; write the values out",
                )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[attr-defined]
                raise _LoadProblem(f"YAML nested deeper than {MAX_DEPTH} levels", mark.line + 1)
            return super().compose_node(parent, index)  # type: ignore[misc,no-any-return]
        finally:
            self._depth -= 1


class _PyCappedLoader(_CapsMixin, yaml.SafeLoader):
    """Pure-Python scanner/parser + our composer hooks."""


if yaml.__with_libyaml__:
    from yaml._yaml import CParser
    from yaml.composer import Composer
    from yaml.resolver import Resolver

    class _FastCappedLoader(_CapsMixin, Composer, CParser, Resolver):  # type: ignore[misc]
        """libyaml's scanner/parser (events, fast, non-recursive) + the Python composer."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            Resolver.__init__(self)

    _CappedLoader: Any = _FastCappedLoader
else:  # pragma: no cover - libyaml is normally available
    _CappedLoader = _PyCappedLoader


# --- graph checks -----------------------------------------------------------------------


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _check_tag(node: Node) -> None:
    tag = node.tag or ""
    if tag in SAFE_TAGS:
        return
    if tag.startswith(SAFE_TAG_PREFIX + "python/"):
        raise _LoadProblem(
            f"Python YAML tag {tag.replace(SAFE_TAG_PREFIX, '!!')!r} is not allowed",
            _line(node),
            "pipelines are data: remove the tag",
        )
    raise _LoadProblem(
        f"YAML tag {tag!r} is not supported", _line(node), "use plain YAML values without tags"
    )


def _expanded_size(root: Node) -> int:
    """How many nodes the document has once aliases are expanded (refuses cycles)."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            in_progress.discard(key)
            sizes[key] = min(1 + sum(sizes[id(c)] for c in _children(node)), 10**12)
            if sizes[key] > MAX_EXPANDED_NODES:
                raise _LoadProblem(
                    f"the document expands to more than {MAX_EXPANDED_NODES} values "
                    "(YAML alias bomb?)",
                    _line(node),
                    "do not repeat large anchors with aliases",
                )
            continue
        if key in sizes:
            continue
        if key in in_progress:
            raise _LoadProblem("recursive YAML alias (a value contains itself)", _line(node))
        in_progress.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in in_progress:
                raise _LoadProblem("recursive YAML alias (a value contains itself)", _line(child))
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _key_of(node: Node, constructor: yaml.SafeLoader) -> Any:
    """The Python value of a scalar mapping key (non-scalar keys are refused)."""
    if not isinstance(node, ScalarNode):
        raise _LoadProblem("mapping keys must be plain values, not lists or maps", _line(node))
    if node.tag == SAFE_TAG_PREFIX + "str":
        return node.value
    try:
        return constructor.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        raise _LoadProblem(f"invalid mapping key {node.value!r}", _line(node)) from exc


def _walk(root: Node) -> dict[tuple[Any, ...], int]:
    """Check tags and duplicate keys; map every key/item path to its 1-based line."""
    lines: dict[tuple[Any, ...], int] = {(): _line(root)}
    constructor = yaml.SafeLoader("")
    seen: set[int] = set()
    stack: list[tuple[Node, tuple[Any, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        _check_tag(node)
        if id(node) in seen:  # an alias: already checked, lines recorded at the anchor
            continue
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                lines.setdefault((*path, i), _line(item))
                stack.append((item, (*path, i)))
        elif isinstance(node, MappingNode):
            _walk_mapping(node, path, lines, stack, constructor)
    constructor.dispose()
    return lines


def _walk_mapping(
    node: MappingNode,
    path: tuple[Any, ...],
    lines: dict[tuple[Any, ...], int],
    stack: list[tuple[Node, tuple[Any, ...]]],
    constructor: yaml.SafeLoader,
) -> None:
    first_line: dict[Any, int] = {}
    for key_node, value_node in node.value:
        _check_tag(key_node)
        if key_node.tag == SAFE_TAG_PREFIX + "merge":
            stack.append((value_node, path))
            continue
        key = _key_of(key_node, constructor)
        try:
            hash(key)
        except TypeError as exc:
            raise _LoadProblem("mapping keys must be plain values", _line(key_node)) from exc
        if key in first_line:
            raise _LoadProblem(
                f"duplicate key {key!r} (first defined on line {first_line[key]})",
                _line(key_node),
                "YAML keeps only the last one: remove or rename one of them",
            )
        first_line[key] = _line(key_node)
        lines.setdefault((*path, key), _line(key_node))
        stack.append((value_node, (*path, key)))


# --- public API -------------------------------------------------------------------------


def _fail(filename: str, message: str, line: int | None = None, hint: str = "") -> NoReturn:
    raise PipelineValidationError([Problem(message=message, file=filename, line=line, hint=hint)])


def _compose(text: str, filename: str) -> Node | None:
    loader = _CappedLoader(text)
    try:
        return loader.get_single_node()  # type: ignore[no-any-return]
    except _LoadProblem as exc:
        _fail(filename, str(exc), exc.line, exc.hint)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        detail = " ".join(p for p in (exc.context, exc.problem) if p)
        _fail(filename, f"invalid YAML: {detail}", line, "check indentation and quoting")
    except yaml.YAMLError as exc:
        _fail(filename, f"invalid YAML: {exc}")
    except RecursionError:  # pragma: no cover - MAX_DEPTH keeps us far below the limit
        _fail(filename, f"YAML nested deeper than {MAX_DEPTH} levels")
    finally:
        loader.dispose()


def _construct(root: Node, filename: str) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        _fail(filename, f"invalid YAML value: {exc.problem}", mark.line + 1 if mark else None)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        _fail(filename, f"invalid YAML value: {exc}")
    finally:
        loader.dispose()


def _compose_plain(text: str) -> Node | None:
    """libyaml's node graph of text without anchors, if the capped composer would accept it
    (nesting, size); None otherwise and on any error (``_compose`` then says why)."""
    if not yaml.__with_libyaml__ or "&" in text:
        return None
    loader = yaml.CSafeLoader(text)
    try:
        root = loader.get_single_node()
    except (yaml.YAMLError, ValueError, TypeError, RecursionError):
        return None
    finally:
        loader.dispose()
    return root if root is not None and _within_caps(root) else None


def _within_caps(root: Node) -> bool:
    """Nesting and size as the capped composer counts them (keys are nodes one level down)."""
    count = 0
    stack: list[tuple[Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH or count > MAX_EXPANDED_NODES:
            return False
        if isinstance(node, SequenceNode):
            stack.extend((item, depth + 1) for item in node.value)
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
    return True


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic collections while a parse allocates its ~10 live objects per line (in a
    server's heap they cost as much as the parse); re-enabled only by who paused it."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def parse_yaml(text: str, filename: str = "<string>") -> tuple[Any, dict[tuple[Any, ...], int]]:
    """Safely parse YAML text into data plus a path → line map (``PipelineValidationError``)."""
    if len(text) > MAX_FILE_BYTES:
        _fail(filename, f"file larger than {MAX_FILE_BYTES // (1024 * 1024)} MB", None)
    with _collector_paused():
        return _parse(text, filename)


def _parse(text: str, filename: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    root = _compose_plain(text)
    plain = root is not None  # no alias: nothing to expand
    if root is None:
        root = _compose(text, filename)
    if root is None:
        _fail(filename, "the file is empty", 1, "a pipeline starts with 'workflow:'")
    try:
        if not plain:
            _expanded_size(root)
        lines = _walk(root)
    except _LoadProblem as exc:
        _fail(filename, str(exc), exc.line, exc.hint)
    return _construct(root, filename), lines


def load_text(
    text: str, filename: str = "<string>", base_dir: Path | None = None
) -> PipelineDocument:
    """Load a pipeline from YAML text (see the module docstring)."""
    data, lines = parse_yaml(text, filename)
    workflow = _workflow_root(data, filename, lines)
    sub_lines = {path[1:]: line for path, line in lines.items() if path[:1] == ("workflow",)}
    sub_lines[()] = lines.get(("workflow",), 1)
    return PipelineDocument(
        workflow=workflow,
        file=filename,
        base_dir=base_dir if base_dir is not None else Path.cwd(),
        lines=sub_lines,
    )


def _workflow_root(data: Any, filename: str, lines: dict[tuple[Any, ...], int]) -> dict[str, Any]:
    hint = "put everything under a top-level 'workflow:' key (name, steps, ...)"
    if data is None:
        _fail(filename, "the file is empty", 1, "a pipeline starts with 'workflow:'")
    if not isinstance(data, dict):
        _fail(filename, f"the top level is a {_kind(data)}, not a map with 'workflow:'", 1, hint)
    if "workflow" not in data:
        looks_like = {"name", "steps"} & set(map(str, data))
        extra = f" (found {', '.join(sorted(looks_like))} at the top level)" if looks_like else ""
        _fail(filename, f"missing the 'workflow:' root{extra}", 1, hint)
    workflow = data["workflow"]
    if not isinstance(workflow, dict):
        _fail(
            filename,
            f"'workflow:' must be a map, not a {_kind(workflow)}",
            lines.get(("workflow",)),
            hint,
        )
    return workflow  # type: ignore[no-any-return]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def read_text(path: Path) -> str:
    """Read a pipeline file: size-capped, UTF-8 (``PipelineValidationError`` otherwise)."""
    filename = str(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        _fail(filename, "file not found")
    except IsADirectoryError:
        _fail(filename, "is a directory, not a pipeline file")
    except OSError as exc:
        _fail(filename, f"cannot read the file: {exc.strerror or exc}")
    if len(raw) > MAX_FILE_BYTES:
        _fail(
            filename,
            f"file larger than {MAX_FILE_BYTES // (1024 * 1024)} MB",
            None,
            "pipeline files are small; keep data in separate files",
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        _fail(filename, f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", line, "save as UTF-8")
    if "\x00" in text:
        _fail(
            filename, "binary file (contains NUL bytes)", text[: text.index("\x00")].count("\n") + 1
        )
    return text


def load_file(path: Path) -> PipelineDocument:
    """Load a pipeline file; ``base_dir`` is the file's folder (for nested pipeline files)."""
    path = Path(path)
    text = read_text(path)
    real = path.resolve()
    return replace(load_text(text, str(path), base_dir=real.parent), real_file=str(real))
