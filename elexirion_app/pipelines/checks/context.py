"""What every check shares: the validation context, step records, paths, hints, the enum check.

CONTRACT:
- ``Ctx`` is the working state of one validation: the document, the problems found so far, and
  what is visible where a step sits (earlier/later steps, variables, loop iterators, inputs).
  ``Ctx.child(...)`` copies it for a loop body; ``Ctx.fresh()`` starts an inline pipeline's.
- Check modules never import the orchestrator (``pipelines/validate.py``): recursion into loop
  bodies, inline pipelines and pipeline files goes through ``Ctx.walk`` (a ``Walk`` of three
  callbacks the orchestrator supplies).
- ``format_path``, ``nearest``, ``check_enum``, ``templated`` and ``kind_of`` are the small
  helpers every check uses.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from elexirion_app.core.errors import Problem
from elexirion_app.pipelines.loader import PipelineDocument


@dataclass(frozen=True)
class Walk:
    """The orchestrator's entry points, handed to the checks that recurse."""

    steps: Callable[[Ctx, list[Any], tuple[Any, ...]], None]
    """Validate a list of steps in ``ctx`` (loop bodies)."""
    workflow: Callable[[Ctx, Mapping[str, Any], tuple[Any, ...]], None]
    """Validate a workflow map in a fresh context (inline pipelines)."""
    document: Callable[[PipelineDocument, bool, tuple[str, ...]], list[Problem]]
    """Validate a loaded document (pipeline files): ``(doc, strict, chain) -> problems``."""


@dataclass
class StepInfo:
    name: str
    type: str
    path: tuple[Any, ...]
    step: Mapping[str, Any]


class Later(Mapping[str, StepInfo]):
    """The steps that run after position ``after`` of one step list, over ``outer`` (the
    names still to come around that list): an O(1) view per step instead of a dict copied
    for every step (40,000 steps took 53 s). ``names`` maps each name of the list to its
    position and record; it is built once per list and never changed, so views are shared
    freely (loop bodies keep their parent's)."""

    __slots__ = ("_after", "_names", "_outer")

    def __init__(
        self,
        names: Mapping[str, tuple[int, StepInfo]],
        after: int,
        outer: Mapping[str, StepInfo],
    ) -> None:
        self._names, self._after, self._outer = names, after, outer

    def __getitem__(self, name: str) -> StepInfo:
        here = self._names.get(name)
        if here is not None and here[0] > self._after:
            return here[1]
        return self._outer[name]

    def __contains__(self, name: object) -> bool:
        here = self._names.get(name) if isinstance(name, str) else None
        return (here is not None and here[0] > self._after) or name in self._outer

    def __iter__(self) -> Iterator[str]:
        mine = {n for n, (i, _) in self._names.items() if i > self._after}
        yield from mine
        yield from (n for n in self._outer if n not in mine)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass
class Ctx:
    """What is visible where a step sits (copied for loop bodies and inline pipelines)."""

    doc: PipelineDocument
    strict: bool
    chain: tuple[str, ...]
    problems: list[Problem]
    walk: Walk
    earlier: dict[str, StepInfo] = field(default_factory=dict)
    later: Mapping[str, StepInfo] = field(default_factory=dict)
    variables: set[str] = field(default_factory=set)
    global_vars: set[str] = field(default_factory=set)
    iterators: tuple[str, ...] = ()
    in_loop: bool = False
    loop_keys: set[str] = field(default_factory=set)
    output_fields: dict[str, str] = field(default_factory=dict)
    functions: set[str] = field(default_factory=set)
    inputs: set[str] | None = None  # declared run inputs (None: no ``inputs:`` section)

    def child(self, **changes: Any) -> Ctx:
        data = dict(self.__dict__)
        for key in ("earlier", "output_fields"):  # ``later`` is a read-only view: shared
            data[key] = dict(data[key])
        data["variables"] = set(data["variables"])
        data["loop_keys"] = set(data["loop_keys"])
        data.update(changes)
        return Ctx(**data)

    def fresh(self) -> Ctx:
        """A context for an inline pipeline: same document and problems, nothing visible."""
        return Ctx(
            doc=self.doc,
            strict=self.strict,
            chain=self.chain,
            problems=self.problems,
            walk=self.walk,
        )

    def add(
        self, path: tuple[Any, ...], message: str, hint: str = "", severity: str = "error"
    ) -> None:
        self.problems.append(
            Problem(
                message=message,
                path=format_path(path),
                file=self.doc.file,
                line=self.doc.line_of(path),
                hint=hint,
                severity=severity,
            )
        )

    def warn(self, path: tuple[Any, ...], message: str, hint: str = "") -> None:
        self.add(path, message, hint, "warning")


def format_path(path: tuple[Any, ...]) -> str:
    """``("steps", 2, "prompt", 0, "step")`` → ``steps[2].prompt[0].step``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def nearest(name: str, candidates: Any) -> str:
    """A hint naming the closest existing name, if any."""
    names = [str(c) for c in candidates]
    close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.5)
    if close:
        return f"did you mean '{close[0]}'?"
    if names and len(names) <= 12:
        return "known: " + ", ".join(sorted(names))
    return ""


def check_enum(
    ctx: Ctx,
    holder: Mapping[str, Any],
    key: str,
    allowed: tuple[str, ...],
    path: tuple[Any, ...],
    *,
    severity: str = "error",
) -> None:
    """An error when ``holder[key]`` is set, not a template, and not one of ``allowed``."""
    value = holder.get(key)
    if value is None or (isinstance(value, str) and "{{" in value):
        return
    if value not in allowed:
        ctx.add(
            (*path, key),
            f"{key} must be one of {', '.join(allowed)}, not {value!r}",
            nearest(str(value), allowed),
            severity,
        )


def templated(value: Any) -> bool:
    """A value given as a ``{{ }}`` template (its type is only known at run time)."""
    return isinstance(value, str) and "{{" in value


def kind_of(value: Any) -> str:
    """``a map``, ``a list``, ``text``, ``a boolean``, ``a number``, ``null`` (for messages)."""
    if value is None:
        return "null"
    if isinstance(value, (dict, list, str, bool, int, float)):
        return {dict: "a map", list: "a list", str: "text", bool: "a boolean"}.get(
            type(value), "a number"
        )
    return type(value).__name__
