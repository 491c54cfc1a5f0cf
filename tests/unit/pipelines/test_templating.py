"""``{{ }}`` templates: resolution order, types, verbatim references, safety."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elexirion_app.core.errors import TemplateError
from elexirion_app.pipelines.scope import Scope
from elexirion_app.pipelines.templating import (
    Reference,
    check_syntax,
    evaluate_expression,
    references,
    render,
)


def make_scope(**changes: Any) -> Scope:
    base = Scope(
        inputs={"topic": "cats", "item_count": 4, "multiplier": 3, "cfg": {"depth": 2}},
        global_vars={"team": "core", "limits": [1, 2]},
        steps={
            "analyze": {"text": "looks fine", "success": True, "score": 7},
            "echo": {"result": {"x": 1, "msg": "hello"}},
            "plan": {"content": {"steps": ["a", "b"]}},
        },
        variables={"counter": 2, "initial_file": "a.tex", "latest": "b.tex", "flag": False},
        loop={
            "file": "main.py",
            "index": 0,
            "total": 3,
            "first": True,
            "last": False,
            "level": 1,
            "parent": {"dir": "src", "index": 4, "level": 0},
        },
        builtins={
            "timestamp": "20260101T000000",
            "date": "2026-01-01",
            "execution_id": "run-1",
            "workflow": {"name": "demo"},
        },
    )
    return base.child(**changes)


def test_text_without_templates_is_identity() -> None:
    assert render("plain {text} } {", make_scope()) == "plain {text} } {"


def test_whole_string_keeps_type() -> None:
    scope = make_scope()
    assert render("{{inputs.item_count}}", scope) == 4
    assert render("{{ global_vars.limits }}", scope) == [1, 2]
    assert render("{{steps.plan.content}}", scope) == {"steps": ["a", "b"]}
    assert render("{{state.flag}}", scope) is False


def test_values_inside_text_are_stringified() -> None:
    scope = make_scope(variables={"flag": True, "nothing": None, "d": {"a": 1}, "f": 0.5})
    out = render("{{flag}}|{{nothing}}|{{d}}|{{f}}|{{global_vars.limits}}", scope)
    assert out == 'true||{"a": 1}|0.5|[1, 2]'


def test_resolution_roots() -> None:
    scope = make_scope()
    assert render("{{inputs.cfg.depth}}", scope) == 2
    assert render("{{global_vars.team}}", scope) == "core"
    assert render("{{steps.analyze.text}}", scope) == "looks fine"
    assert render("{{state.counter}}", scope) == 2
    assert render("{{timestamp}} {{date}} {{execution_id}} {{workflow.name}}", scope) == (
        "20260101T000000 2026-01-01 run-1 demo"
    )


def test_step_field_falls_back_to_result_key() -> None:
    scope = make_scope()
    assert render("{{steps.echo.msg}}", scope) == "hello"
    assert render("{{steps.echo.result.x}}", scope) == 1


def test_unresolved_scoped_references_stay_verbatim() -> None:
    scope = make_scope()
    text = "a {{steps.missing.text}} b {{inputs.nope}} c {{global_vars.x.y}} d"
    assert render(text, scope) == text
    assert render("{{steps.analyze.nope}}", scope) == "{{steps.analyze.nope}}"


def test_unknown_bare_names_render_empty() -> None:
    assert render("[{{who_knows}}]", make_scope()) == "[]"
    assert render("{{who_knows}}", make_scope()) == ""
    assert render("[{{state.nope}}]", make_scope()) == "[]"


def test_bare_names_variables_then_inputs_then_loop() -> None:
    scope = make_scope(variables={"topic": "dogs"})
    assert render("{{topic}}", scope) == "dogs"
    assert render("{{topic}}", make_scope()) == "cats"
    assert render("{{file}}", make_scope()) == "main.py"


def test_loop_values_work() -> None:
    scope = make_scope()
    out = render(
        "{{loop.file}} {{loop.index}} {{loop.total}} {{loop.first}} {{loop.last}} "
        "{{loop.level}} {{loop.parent.dir}} {{dir}}",
        scope,
    )
    assert out == "main.py 0 3 true false 1 src src"
    assert render("{{loop.index + 1}}", scope) == 1


def test_loop_reserved_keys_are_not_bare_names() -> None:
    scope = make_scope(loop={"index": 5, "item": "x"})
    assert render("[{{index}}]", scope) == "[]"
    assert render("{{item}}", scope) == "x"


def test_functions_and_arithmetic() -> None:
    scope = make_scope()
    assert render("{{multiply(inputs.item_count, inputs.multiplier)}}", scope) == 12
    assert render("{{add(1, 2)}} {{subtract(5, 7)}} {{divide(9, 3)}}", scope) == "3 -2 3"
    assert render("{{max(1, 9, 4)}} {{min(3, 2)}} {{round(2.6)}}", scope) == "9 2 3"
    assert render("{{floor(2.7)}} {{ceil(2.1)}}", scope) == "2 3"
    assert render("{{state.counter + 1}}", scope) == 3
    assert render("{{state.counter * 2.5}}", scope) == 5.0
    assert render("{{7 / 2}} {{8 / 2}} {{7 % 4}}", scope) == "3.5 4 3"


def test_ternary_and_comparison() -> None:
    text = "{{state.counter == 0 ? state.initial_file : state.latest}}"
    assert render(text, make_scope()) == "b.tex"
    assert render(text, make_scope(variables={"counter": 0, "initial_file": "a"})) == "a"
    assert render("{{state.counter < 5}}", make_scope()) is True


def test_previous_response_colon_form() -> None:
    scope = make_scope()
    assert render("{{previous_response:analyze}}", scope)["score"] == 7
    assert render("{{previous_response:plan.content}}", scope) == {"steps": ["a", "b"]}
    assert render("{{previous_response:plan:content.steps}}", scope) == ["a", "b"]


def test_render_recurses_into_containers_not_keys() -> None:
    value = {"{{topic}}": ["{{topic}}", {"n": "{{inputs.item_count}}"}], "k": 3}
    assert render(value, make_scope()) == {"{{topic}}": ["cats", {"n": 4}], "k": 3}


def test_substituted_values_are_not_rendered_again() -> None:
    scope = make_scope(inputs={"evil": "{{inputs.secret}}", "secret": "s3cr3t"})
    assert render("x {{inputs.evil}}", scope) == "x {{inputs.secret}}"


@pytest.mark.parametrize(
    "text",
    ["{{ }}", "{{a ==}}", "open {{ never closed", "{{foo(1)}}", "{{a $ b}}", "{{'x}}"],
)
def test_syntax_errors_raise_template_error(text: str) -> None:
    with pytest.raises(TemplateError):
        check_syntax(text)
    with pytest.raises(TemplateError):
        render(text, make_scope())


def test_syntax_error_names_position() -> None:
    with pytest.raises(TemplateError, match="position"):
        check_syntax("{{a + }}")


def test_huge_numbers_are_refused_not_crashing() -> None:
    for text in ("{{" + "9" * 5000 + "}}", "{{pow(10, 999) * pow(10, 999)}}"):
        with pytest.raises(TemplateError):
            render(text, make_scope())


def test_division_by_zero_is_template_error() -> None:
    with pytest.raises(TemplateError, match="division by zero"):
        render("{{divide(1, 0)}}", make_scope())


def test_no_python_eval() -> None:
    with pytest.raises(TemplateError):
        render("{{__import__('os').system('true')}}", make_scope())
    with pytest.raises(TemplateError):
        render("{{().__class__}}x", make_scope())
    # dunder names are just unknown names: nothing of Python is reachable
    assert render("[{{__class__.__mro__}}]", make_scope()) == "[]"


def test_references() -> None:
    refs = references(
        "{{steps.a.text}} {{inputs.x}} {{global_vars.g}} {{state.s}} {{loop.file}} "
        "{{timestamp}} {{workflow.name}} {{code_file}} {{multiply(inputs.n, 2)}}"
    )
    roots = [(r.root, r.path) for r in refs]
    assert ("steps", ("a", "text")) in roots
    assert ("inputs", ("x",)) in roots
    assert ("global_vars", ("g",)) in roots
    assert ("state", ("s",)) in roots
    assert ("loop", ("file",)) in roots
    assert ("builtin", ("timestamp",)) in roots
    assert ("builtin", ("workflow", "name")) in roots
    assert ("bare", ("code_file",)) in roots
    assert ("function", ("multiply",)) in roots
    assert ("inputs", ("n",)) in roots
    assert Reference("steps", ("b",), "{{previous_response:b}}") in references(
        "{{previous_response:b}}"
    )


def test_evaluate_expression() -> None:
    assert evaluate_expression("state.counter + 1", make_scope()) == 3
    assert evaluate_expression("nothing_here", make_scope()) is None


# --- properties -------------------------------------------------------------------------

plain_text = st.text(max_size=200).filter(lambda s: "{{" not in s)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=10,
)


@given(plain_text)
def test_property_text_without_braces_is_identity(text: str) -> None:
    assert render(text, make_scope()) == text


@given(json_values)
def test_property_whole_string_preserves_type(value: Any) -> None:
    scope = make_scope(inputs={"v": value})
    assert render("{{inputs.v}}", scope) == value


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(list("{}ab.()+-*/ '\"0123456789?:=!<>_,[]")), max_size=60))
def test_property_arbitrary_text_only_raises_template_error(text: str) -> None:
    with contextlib.suppress(TemplateError):
        render(text, make_scope())


@settings(max_examples=200)
@given(st.text(max_size=80))
def test_property_unicode_text_only_raises_template_error(text: str) -> None:
    with contextlib.suppress(TemplateError):
        render("{{" + text + "}}", make_scope())


def test_llm_json_answer_fields() -> None:
    scope = make_scope(steps={"review": {"text": '{"score": 8, "tags": ["a"]}', "success": True}})
    assert render("{{steps.review.score}}", scope) == 8
    assert render("{{steps.review.tags[0]}}!", scope) == "a!"
    assert render("{{steps.review.nope}}", scope) == "{{steps.review.nope}}"
