"""graph_of: one node per step, groups and parents, models, order/data/loop edges, no crash."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from elexirion_app.editor.document import EditorDocument
from elexirion_app.editor.graph import Edge, graph_of
from tests.unit.editor.helpers import count_steps, pipeline_files

DOC = """
workflow:
  name: demo
  defaults:
    claude_model: sonnet
    gemini_model: gemini-2.5-flash
  steps:
    - name: analyze
      type: claude
      claude_options: {model: opus}
      prompt: [{type: static, content: "look"}]
    - name: summary
      type: gemini
      prompt:
        - type: previous_response
          step: analyze
        - type: static
          content: "{{steps.analyze.text}} and {{analyze.result}} and {{inputs.x}}"
    - name: loop
      type: for_loop
      iterator: item
      data_source: previous_response:summary
      steps:
        - name: inner
          type: claude
          prompt: [{type: static, content: "{{loop.item}} {{previous_response:summary}}"}]
        - name: check
          type: set_variable
          condition: "inner.score > 3"
          variables: {ok: true}
    - name: par
      type: parallel_claude
      parallel_tasks:
        - id: t1
          prompt: [{type: previous_response, step: analyze}]
        - id: t2
          claude_options: {model: haiku}
          prompt: [{type: static, content: x}]
    - name: nested
      type: pipeline
      pipeline:
        name: child
        defaults: {claude_model: haiku}
        steps:
          - name: analyze
            type: claude
            prompt: [{type: static, content: x}]
          - name: use
            type: claude
            prompt: [{type: previous_response, step: analyze}]
"""


def _nodes(data: dict[str, Any]) -> dict[str, Any]:
    return {n.id: n for n in graph_of(data).nodes}


def test_nodes_ids_parents_groups_models_and_icons() -> None:
    nodes = _nodes(yaml.safe_load(DOC))
    assert list(nodes) == [
        "analyze",
        "summary",
        "loop",
        "loop/inner",
        "loop/check",
        "par",
        "par/t1",
        "par/t2",
        "nested",
        "nested/analyze",
        "nested/use",
    ]
    assert {i for i, n in nodes.items() if n.group} == {"loop", "par", "nested"}
    assert nodes["loop/inner"].parent == "loop" and nodes["loop/check"].index == 1
    assert nodes["par/t1"].type == "parallel_task" and nodes["par/t1"].step == "t1"
    models = {i: n.model for i, n in nodes.items()}
    assert models["analyze"] == "opus"  # claude_options.model beats the defaults
    assert models["summary"] == "gemini-2.5-flash"
    assert models["loop/inner"] == "sonnet" and models["loop"] == ""
    assert models["par/t2"] == "haiku" and models["par/t1"] == "sonnet"
    assert models["nested/use"] == "haiku"  # the nested pipeline's own defaults
    assert nodes["loop"].icon == "repeat" and nodes["analyze"].icon == "bot"


def test_order_loop_and_data_edges_deduplicated() -> None:
    edges = {(e.source, e.target, e.kind) for e in graph_of(yaml.safe_load(DOC)).edges}
    assert {
        ("analyze", "summary", "order"),
        ("summary", "loop", "order"),
        ("loop/inner", "loop/check", "order"),
        ("loop/check", "loop", "loop"),
        ("analyze", "summary", "data"),
        ("summary", "loop", "data"),
        ("summary", "loop/inner", "data"),
        ("loop/inner", "loop/check", "data"),
        ("analyze", "par/t1", "data"),
        ("nested/analyze", "nested/use", "data"),
    } <= edges
    assert ("par/t1", "par/t2", "order") not in edges  # tasks run together
    # the nested pipeline's "analyze" is its own: the outer one is not read there
    assert ("analyze", "nested/use", "data") not in edges
    ids = [e.id for e in graph_of(yaml.safe_load(DOC)).edges]
    assert len(ids) == len(set(ids))
    summary_reads = [e for e in graph_of(yaml.safe_load(DOC)).edges if e.target == "summary"]
    assert [e.kind for e in summary_reads if e.source == "analyze"] == ["order", "data"]


def test_to_props_is_json_safe() -> None:
    nodes, edges = graph_of(yaml.safe_load(DOC)).to_props()
    assert json.loads(json.dumps([nodes, edges])) == [nodes, edges]
    assert set(nodes[0]) == {
        "id",
        "step",
        "type",
        "label",
        "model",
        "parent",
        "index",
        "group",
        "icon",
    }
    assert set(edges[0]) == {"id", "source", "target", "kind"}


def _check_graph(data: Any) -> list[str]:
    graph = graph_of(data)
    ids = [n.id for n in graph.nodes]
    problems = []
    if len(ids) != len(set(ids)):
        problems.append("duplicate node ids")
    known = set(ids)
    for edge in graph.edges:
        if edge.source not in known or edge.target not in known or edge.source == edge.target:
            problems.append(f"dangling edge {edge.id}")
        if edge.kind not in ("order", "data", "loop"):
            problems.append(f"edge kind {edge.kind}")
    for node in graph.nodes:
        if node.parent and node.parent not in known:
            problems.append(f"node {node.id} has an unknown parent")
    return problems


def test_every_pipeline_file_gives_one_node_per_step_and_no_dangling_edge() -> None:
    failures: dict[str, Any] = {}
    for path in pipeline_files():
        data = EditorDocument.parse(path.read_text(encoding="utf-8")).data
        graph = graph_of(data)
        problems = _check_graph(data)
        if len(graph.nodes) != count_steps(data):
            problems.append(f"{len(graph.nodes)} nodes for {count_steps(data)} steps")
        if len(graph.nodes) > 1 and not any(e.kind == "order" for e in graph.edges):
            problems.append("no order edges")
        if problems:
            failures[path.name] = problems
    assert failures == {}


def test_half_typed_documents_are_placed_as_far_as_they_go() -> None:
    data = yaml.safe_load(
        """
workflow:
  name: x
  steps:
    - name:
      type: claude
    - just a string
    - name: {weird: 1}
      type: 5
    - name: loop
      type: for_loop
      steps: not a list
    - name: loop
      type: while_loop
      steps:
        - name: a
          prompt: [{type: previous_response, step: [1]}, {type: static, content: "{{ bad"}]
          condition: "(("
"""
    )
    nodes = _nodes(data)
    assert list(nodes) == ["#0", "#2", "loop", "loop~2", "loop~2/a"]
    assert nodes["#0"].label == "(unnamed claude)" and nodes["#2"].type == ""
    assert _check_graph(data) == []
    for broken in ({}, {"workflow": None}, {"workflow": {"steps": 3}}, {"steps": [{"name": 1}]}):
        assert _check_graph(broken) == []
    assert [n.id for n in graph_of({"steps": [{"name": 1}]}).nodes] == ["1"]


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12))
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                ["name", "type", "steps", "prompt", "step", "pipeline", "parallel_tasks", "id"]
            ),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=30,
)
_types = st.sampled_from(["claude", "for_loop", "while_loop", "parallel_claude", "pipeline", "x"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"name": _scalars, "type": _types},
            optional={
                "steps": _values,
                "prompt": _values,
                "pipeline": _values,
                "parallel_tasks": _values,
            },
        ),
        max_size=6,
    )
)
def test_graph_of_never_raises_and_never_dangles(steps: list[Any]) -> None:
    assert _check_graph({"workflow": {"name": "x", "steps": steps}}) == []


def test_edge_is_a_frozen_dataclass() -> None:
    edge = Edge("order:a->b", "a", "b", "order")
    assert edge == Edge("order:a->b", "a", "b", "order")
