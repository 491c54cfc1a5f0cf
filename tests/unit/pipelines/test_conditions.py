"""Step conditions: forms, operators, functions, safety, step references."""

from __future__ import annotations

import contextlib
import operator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elexirion_app.core.errors import ConditionError
from elexirion_app.pipelines.conditions import evaluate, parse, paths, step_references
from elexirion_app.pipelines.scope import Scope


def make_scope(**changes: Any) -> Scope:
    base = Scope(
        inputs={"mode": "fast", "limit": 10},
        global_vars={"threshold": 7},
        steps={
            "implement_fixes": {"text": "done", "success": True},
            "quality_assessment": {"text": "{}", "overall_score": 8.5},
            "analyze": {"result": {"needs_fix": True, "issues": ["a", "b", "c"]}},
            "review": {"text": "Looks GOOD overall", "score": "9", "tags": []},
        },
        variables={"current_iteration": 1, "max_iterations": 5, "name": "  Ada  "},
        loop={"item": {"size": 3}, "index": 2, "total": 4},
    )
    return base.child(**changes)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # forms used by the conformance files
        ("implement_fixes.success", True),
        ("quality_assessment.overall_score >= 8", True),
        ("{{state.current_iteration < state.max_iterations}}", True),
        ("analyze.needs_fix == true", True),
        # paths
        ("steps.analyze.needs_fix", True),
        ("steps.review.score > 8", True),
        ("missing_step.success", False),
        ("review.tags", False),
        ("inputs.mode == 'fast'", True),
        ("global_vars.threshold < 8", True),
        ("state.current_iteration != 1", False),
        ("loop.item.size == 3", True),
        ("loop.index + 1 == 3", True),
        ("item.size > 2", True),
        ("current_iteration", True),
        # operators
        ("review.text contains 'GOOD'", True),
        ("analyze.issues contains 'b'", True),
        ("review.text matches '^Looks\\\\s+GOOD'", True),
        ("quality_assessment.overall_score between 8 and 9", True),
        ("quality_assessment.overall_score between 9 and 10", False),
        ("analyze.issues.length == 3", True),
        ("10 % 4 == 2 and 2 * 3 - 1 == 5 and 9 / 3 == 3", True),
        ("not implement_fixes.success or review.score == 9", True),
        ("implement_fixes.success && !(review.score < 5)", True),
        ("null == missing.field", True),
        ("'text' > 3", False),
        # functions
        ("length(analyze.issues) == 3", True),
        ("startsWith(review.text, 'Looks') and endsWith(review.text, 'overall')", True),
        ("toLowerCase(review.text) contains 'good'", True),
        ("toUpperCase('a') == 'A' and trim(name) == 'Ada'", True),
        ("any([false, 1]) and not all([true, null])", True),
        ("count(analyze.issues) == 3 and sum([1, 2, 3]) == 6", True),
        ("average([2, 4]) == 3 and min(4, 2) == 2 and max([1, 7]) == 7", True),
        ("isEmpty(review.tags) and not isEmpty(review.text)", True),
        ("now() > 0 and days(1) == hours(24) and minutes(1) == seconds(60)", True),
        ("abs(-2) == 2 and round(2.4) == 2 and floor(2.9) == 2 and ceil(2.1) == 3", True),
        ("sqrt(16) == 4 and pow(2, 10) == 1024", True),
        ("between(5, 1, 10) and contains('abc', 'b') and matches('abc', 'b+')", True),
        ("review.text.startsWith('Looks')", True),
        # literals and truthiness
        ("0", True),
        ("''", False),
        ("[]", False),
        ("null", False),
        ("false", False),
        ("'false'", True),
    ],
)
def test_condition_strings(condition: str, expected: bool) -> None:
    assert evaluate(condition, make_scope()) is expected


def test_structured_forms() -> None:
    scope = make_scope()
    assert evaluate({"and": ["implement_fixes.success", "review.score > 5"]}, scope) is True
    assert evaluate({"or": ["missing.x", "review.score > 5"]}, scope) is True
    assert evaluate({"not": "implement_fixes.success"}, scope) is False
    assert evaluate(["implement_fixes.success", {"not": "missing.x"}], scope) is True
    assert evaluate(["implement_fixes.success", "missing.x"], scope) is False
    assert evaluate({"and": [{"or": ["missing", {"not": "missing"}]}]}, scope) is True


def test_already_rendered_values() -> None:
    assert evaluate(True, make_scope()) is True
    assert evaluate(False, make_scope()) is False
    assert evaluate(None, make_scope()) is False
    assert evaluate("8 >= 7", make_scope()) is True


def test_parsed_condition_is_reusable_and_immutable() -> None:
    parsed = parse("review.score > 5")
    assert evaluate(parsed, make_scope()) is True
    assert evaluate(parsed, make_scope(steps={})) is False
    with pytest.raises(AttributeError):
        parsed.source = "x"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("condition", "fragment"),
    [
        ("a ==", "position 4"),
        ("a >> b", "position 3"),
        ("x between 1", "'and'"),
        ("foo(1)", "unknown function 'foo'"),
        ("'unterminated", "unterminated"),
        ("", "empty"),
        ("{{a", "unbalanced"),
        ({"xor": ["a"]}, "unknown condition key"),
        ({"and": "a"}, "non-empty list"),
        ({"and": ["a"], "or": ["b"]}, "exactly one key"),
        (3.5j, "text, a map or a list"),
    ],
)
def test_parse_errors_are_clear(condition: Any, fragment: str) -> None:
    with pytest.raises(ConditionError, match=None) as info:
        parse(condition)
    assert fragment in str(info.value)


def test_deep_nesting_is_refused_not_recursion_error() -> None:
    with pytest.raises(ConditionError, match="nested"):
        parse("(" * 500 + "a" + ")" * 500)
    deep: Any = "a"
    for _ in range(200):
        deep = {"not": deep}
    with pytest.raises(ConditionError, match="nested"):
        parse(deep)


def test_regex_is_bounded() -> None:
    scope = make_scope(variables={"big": "a" * 200_000, "s": "aaaa"})
    with pytest.raises(ConditionError, match="pattern longer"):
        evaluate("s matches '" + "a" * 300 + "'", scope)
    with pytest.raises(ConditionError, match="text longer"):
        evaluate("big matches 'a'", scope)
    with pytest.raises(ConditionError, match="invalid regex"):
        evaluate("s matches '(['", scope)


def test_catastrophic_regex_times_out() -> None:
    scope = make_scope(variables={"s": "a" * 60 + "!"})
    with pytest.raises(ConditionError, match="too long"):
        evaluate("s matches '^(a|aa)+$'", scope)


def test_evaluation_errors() -> None:
    with pytest.raises(ConditionError, match="division by zero"):
        evaluate("1 / 0", make_scope())
    with pytest.raises(ConditionError, match="exponent"):
        evaluate("pow(10, 100000) > 1", make_scope())
    with pytest.raises(ConditionError):
        evaluate("'a' * 3", make_scope())


def test_step_references() -> None:
    refs = step_references(
        {"and": ["a.success", "steps.b.score > 1", "inputs.x", "state.y", "loop.i", "c"]}
    )
    assert refs == {"a", "b", "c"}
    assert paths("x.y[0] > 1") == [("x", "y", 0)]


# --- properties -------------------------------------------------------------------------

numbers = st.integers(-(10**6), 10**6) | st.floats(-1e6, 1e6, allow_nan=False)
OPS = {"==": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt}
OPS |= {">=": operator.ge, "<=": operator.le}


@given(numbers, st.sampled_from(sorted(OPS)), numbers)
def test_property_number_comparisons_match_python(a: float, op: str, b: float) -> None:
    scope = make_scope(variables={"a": a, "b": b})
    assert evaluate(f"a {op} b", scope) is OPS[op](a, b)


@given(st.integers(-1000, 1000), st.integers(-1000, 1000))
def test_property_arithmetic_matches_python(a: int, b: int) -> None:
    scope = make_scope(variables={"a": a, "b": b})
    assert evaluate(f"a + b == {a + b}", scope)
    assert evaluate(f"a - b == {a - b}", scope)
    assert evaluate(f"a * b == {a * b}", scope)


TOKENS = [*"ab.()+-*/%'\"0123 =!<>[],?:{}&|", " and ", " or ", " not ", " contains "]
TOKENS += [" matches ", " between ", "length", "true", "null", "steps", "loop"]


@settings(max_examples=300)
@given(st.lists(st.sampled_from(TOKENS), max_size=25).map("".join))
def test_property_random_strings_only_raise_condition_error(text: str) -> None:
    with contextlib.suppress(ConditionError):
        evaluate(text, make_scope(variables={"a": 1, "b": "x"}))


@settings(max_examples=200)
@given(st.text(max_size=60))
def test_property_unicode_only_raises_condition_error(text: str) -> None:
    with contextlib.suppress(ConditionError):
        evaluate(text, make_scope())


def test_llm_json_answer_fields() -> None:
    answer = {"text": '```json\n{"needs_fix": true, "score": 4}\n```', "success": True}
    scope = make_scope(steps={"analyze": answer})
    assert evaluate("analyze.needs_fix == true and analyze.score < 5", scope) is True
    assert evaluate("analyze.missing", scope) is False
