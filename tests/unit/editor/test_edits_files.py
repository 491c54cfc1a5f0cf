"""Graph edits on every conformance file and shipped pipeline: expected data, comments kept,
other lines untouched, validation unchanged by a rename."""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from elexirion_app.editor.diff import diff_stats
from elexirion_app.editor.document import EditorDocument
from elexirion_app.editor.graph import graph_of
from elexirion_app.pipelines.loader import load_text
from elexirion_app.pipelines.validate import validate_document
from tests.unit.editor.helpers import comment_lines, comments, pipeline_files, top_steps

CLAUDE_PART = {"type": "static", "content": "Describe what this step should do."}


def _files() -> list[tuple[Path, str, dict[str, Any]]]:
    out = []
    for path in pipeline_files():
        text = path.read_text(encoding="utf-8")
        out.append((path, text, yaml.safe_load(text)))
    return out


def _content_end(node: Any) -> int:
    """The last line of a node's own values (trailing comments not included)."""
    if isinstance(node, yaml.ScalarNode):
        return int(node.start_mark.line if node.style in ("|", ">") else node.end_mark.line)
    children = (
        node.value if isinstance(node, yaml.SequenceNode) else [v for p in node.value for v in p]
    )
    return max([int(node.start_mark.line), *(_content_end(c) for c in children)])


def _region_comments(text: str, index: int) -> Counter[str]:
    """The comments after the content of step ``index - 1`` and before step ``index + 1``
    (what may go with step ``index``)."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    wf = next(v for k, v in node.value if k.value == "workflow")
    seq = next(v for k, v in wf.value if k.value == "steps")
    lines = text.splitlines(keepends=True)
    first = _content_end(seq.value[index - 1]) + 1 if index else seq.start_mark.line - 3
    last = seq.value[index + 1].start_mark.line if index + 1 < len(seq.value) else len(lines)
    return Counter(c for n, c in comment_lines(text) if max(first, 0) <= n < last)


def _changed(old: str, new: str) -> Counter[str]:
    return (comments(old) - comments(new)) + (comments(new) - comments(old))


def _headers_only(old: str, new: str) -> bool:
    """Lines differ only by ``|`` becoming ``|-`` (a file that ends without a line break)."""
    gone = sorted(set(old.splitlines()) - set(new.splitlines()))
    came = sorted(set(new.splitlines()) - set(old.splitlines()))
    return (
        not old.endswith("\n")
        and len(gone) <= 1
        and all(
            c.replace("|-", "|").replace(">-", ">") == g for g, c in zip(gone, came, strict=False)
        )
    )


def test_insert_at_the_start_and_the_end_adds_lines_only() -> None:
    failures: dict[str, str] = {}
    for path, text, data in _files():
        for index in (0, len(top_steps(data))):
            doc = EditorDocument.parse(text)
            step_id = doc.insert_step("claude", index=index, name="added_step")
            expected = copy.deepcopy(data)
            new = {"name": "added_step", "type": "claude", "prompt": [CLAUDE_PART]}
            top_steps(expected).insert(index, new)
            if (
                step_id != "added_step"
                or doc.data != expected
                or yaml.safe_load(doc.text) != expected
            ):
                failures[f"{path.name}@{index}"] = "data"
            elif comments(doc.text) != comments(text):
                failures[f"{path.name}@{index}"] = "comments"
            elif diff_stats(text, doc.text)[1] != 0 and not _headers_only(text, doc.text):
                failures[f"{path.name}@{index}"] = f"lines removed: {diff_stats(text, doc.text)}"
    assert failures == {}


def test_deleting_any_step_keeps_every_comment_of_the_others() -> None:
    failures: dict[str, str] = {}
    for path, text, data in _files():
        steps = top_steps(data)
        if len(steps) < 2:
            continue
        ids = [n.id for n in graph_of(data).nodes if not n.parent]
        for index, step_id in enumerate(ids):
            new = EditorDocument.parse(text)
            new.delete_step(step_id)
            expected = copy.deepcopy(data)
            del top_steps(expected)[index]
            where = f"{path.name}:{step_id}"
            lost = comments(text) - comments(new.text)
            if yaml.safe_load(new.text) != expected:
                failures[where] = "data"
            elif lost - _region_comments(text, index):
                failures[where] = f"lost {lost}"
            elif comments(new.text) - comments(text):
                failures[where] = "comments added"
            elif diff_stats(text, new.text)[0] != 0:
                failures[where] = f"lines added: {diff_stats(text, new.text)}"
    assert failures == {}


def test_moving_steps_to_either_end_keeps_every_comment() -> None:
    failures: dict[str, str] = {}
    for path, text, data in _files():
        steps = top_steps(data)
        ids = [n.id for n in graph_of(data).nodes if not n.parent]
        for source, target in ((0, len(steps) - 1), (len(steps) - 1, 0), (len(steps) // 2, 0)):
            doc = EditorDocument.parse(text)
            doc.move_step(ids[source], target)
            expected = copy.deepcopy(data)
            top_steps(expected).insert(target, top_steps(expected).pop(source))
            where = f"{path.name}:{source}->{target}"
            if yaml.safe_load(doc.text) != expected:
                failures[where] = "data"
            elif comments(doc.text) != comments(text):
                failures[where] = f"comments {_changed(text, doc.text)}"
            elif sorted(doc.text.splitlines()) != sorted(text.splitlines()) and not _headers_only(
                text, doc.text
            ):
                failures[where] = "lines changed, not only moved"
    assert failures == {}


def test_setting_fields_on_every_step_changes_only_those_values() -> None:
    failures: dict[str, str] = {}
    for path, text, data in _files():
        for node in graph_of(data).nodes:
            if node.type == "parallel_task":
                continue
            doc = EditorDocument.parse(text)
            doc.set_field(node.id, ("output_to_file",), "out.txt")
            doc.set_field(node.id, ("description",), "first line\nsecond line\n")
            doc.set_field(node.id, ("claude_options", "max_turns"), 2)
            parsed = yaml.safe_load(doc.text)
            if parsed != doc.data:
                failures[f"{path.name}:{node.id}"] = "data differs from the text"
                continue
            step = _step(parsed, node.id)
            if step.get("output_to_file") != "out.txt" or step["claude_options"]["max_turns"] != 2:
                failures[f"{path.name}:{node.id}"] = "values not set"
            elif comments(doc.text) != comments(text):
                failures[f"{path.name}:{node.id}"] = (
                    f"comments {comments(text) ^ comments(doc.text)}"
                )
            elif _without(parsed, node.id) != _without(data, node.id):
                failures[f"{path.name}:{node.id}"] = "other steps changed"
    assert failures == {}


def _step(data: Any, step_id: str) -> dict[str, Any]:
    from elexirion_app.editor.tree import find

    return dict(find(data, step_id).step)


def _without(data: Any, step_id: str) -> Any:
    from elexirion_app.editor.tree import find

    clone = copy.deepcopy(data)
    ref = find(clone, step_id)
    holder: Any = clone
    for key in ref.path[:-1]:
        holder = holder[key]
    holder[ref.path[-1]] = None
    return clone


def _problems(text: str, old: str, new: str) -> Counter[tuple[str, str, str]]:
    doc = load_text(text, filename="x.yaml")
    return Counter(
        (p.severity, p.path, p.message.replace(new, old))
        for p in validate_document(doc)
        if p.file == "x.yaml"
    )


def test_renaming_any_top_level_step_keeps_validation_as_it_was() -> None:
    failures: dict[str, Any] = {}
    for path, text, data in _files():
        for node in graph_of(data).nodes:
            if node.parent or not node.step:
                continue
            new_name = f"{node.step}_renamed"
            doc = EditorDocument.parse(text)
            doc.rename_step(node.id, new_name)
            where = f"{path.name}:{node.id}"
            if comments(doc.text) != comments(text):
                failures[where] = "comments"
            elif len(doc.text.splitlines()) != len(text.splitlines()):
                failures[where] = "line count changed"
            elif _problems(doc.text, node.step, new_name) != _problems(text, node.step, new_name):
                before = _problems(text, node.step, new_name)
                after = _problems(doc.text, node.step, new_name)
                failures[where] = (before - after) + (after - before)
            elif node.step in {r.step for r in graph_of(doc.data).nodes}:
                failures[where] = "old name still there"
    assert failures == {}


def test_connecting_consecutive_steps_adds_one_part() -> None:
    failures: dict[str, str] = {}
    checked = 0
    for path, text, data in _files():
        nodes = [n for n in graph_of(data).nodes if not n.parent]
        for source, target in itertools.pairwise(nodes):
            step = _step(data, target.id)
            if not isinstance(step.get("prompt"), list) or not source.step:
                continue
            doc = EditorDocument.parse(text)
            doc.connect(source.id, target.id)
            checked += 1
            prompt = _step(doc.data, target.id)["prompt"]
            where = f"{path.name}:{source.id}->{target.id}"
            reads = [
                p
                for p in prompt
                if isinstance(p, dict)
                and p.get("type") == "previous_response"
                and str(p.get("step")) == source.step
            ]
            if not reads or yaml.safe_load(doc.text) != doc.data:
                failures[where] = "no part"
            elif comments(doc.text) != comments(text):
                failures[where] = "comments"
            elif diff_stats(text, doc.text)[1] != 0 and not _headers_only(text, doc.text):
                failures[where] = f"lines removed {diff_stats(text, doc.text)}"
    assert checked > 10
    assert failures == {}
