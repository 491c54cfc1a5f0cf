"""The step walk grows linearly with steps named alike (attacker finding 5): counted in
executed lines of ``editor/tree.py``, not in time."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from elexirion_app.editor.tree import walk
from elexirion_app.pipelines.loader import load_text


def _lines_run(fn: Callable[[], object], filename: str) -> int:
    count = 0

    def trace(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        if frame.f_code.co_filename.endswith(filename):
            if event == "line":
                count += 1
            return trace
        return None

    sys.settrace(trace)
    try:
        fn()
    finally:
        sys.settrace(None)
    return count


def _alike(n: int) -> dict[str, Any]:
    text = "workflow:\n  name: w\n  steps:\n" + "    - {name: s}\n" * n
    return {"workflow": load_text(text).workflow}


def test_the_step_walk_is_linear_in_steps_named_alike() -> None:
    small, large = (_lines_run(lambda d=_alike(n): walk(d), "editor/tree.py") for n in (300, 1200))
    assert large < 6 * small, f"4x the steps ran {large / small:.1f}x the lines"


def test_steps_named_alike_get_the_first_free_suffix() -> None:
    text = (
        "workflow:\n  name: w\n  steps:\n"
        "    - {name: s}\n    - {name: s~3}\n    - {name: s}\n    - {name: s}\n    - {name: s}\n"
    )
    ids = [ref.id for ref in walk({"workflow": load_text(text).workflow})]
    assert ids == ["s", "s~3", "s~2", "s~4", "s~5"]
