"""Values that do not fit the spec's types are warned about at the deepest key, once."""

from __future__ import annotations

from elexirion_app.core.errors import Problem
from elexirion_app.pipelines.loader import load_text
from elexirion_app.pipelines.validate import validate_document


def check(steps: str, top: str = "") -> list[Problem]:
    text = f"workflow:\n  name: x\n{top}  steps:\n{steps}"
    return validate_document(load_text(text, "p.yaml"))


def rows(problems: list[Problem]) -> list[tuple[str, int | None, str, str]]:
    return [(p.severity, p.line, p.path, p.message) for p in problems]


CLAUDE = "    - name: a\n      type: claude\n      prompt: [{type: static, content: hi}]\n"


def test_a_mistyped_option_is_a_warning_at_its_own_key_and_line() -> None:
    problems = check(
        CLAUDE + "      claude_options:\n        max_turns: 2\n        system_prompt: {a: 1}\n"
    )
    assert rows(problems) == [
        (
            "warning",
            9,
            "steps[0].claude_options.system_prompt",
            "system_prompt should be text, not a map",
        )
    ]
    assert "docs/pipeline-format.md" in problems[0].hint


def test_list_items_and_nested_maps_are_followed() -> None:
    problems = check(
        CLAUDE
        + "      claude_options:\n"
        + "        allowed_tools: [Read, 3]\n"
        + "        retry_config: {max_retries: many}\n"
    )
    assert rows(problems) == [
        (
            "warning",
            8,
            "steps[0].claude_options.allowed_tools[1]",
            "allowed_tools[1] should be text, not a number",
        ),
        (
            "warning",
            9,
            "steps[0].claude_options.retry_config.max_retries",
            "max_retries should be a whole number or a {{ }} template, not text",
        ),
    ]


def test_prompt_parts_are_checked_by_their_type() -> None:
    problems = check(
        "    - {name: a, type: claude, prompt: [{type: static, content: hi}]}\n"
        "    - name: b\n      type: claude\n"
        "      prompt: [{type: previous_response, step: a, extract: [x], strict: maybe}]\n"
    )
    assert rows(problems) == [
        ("warning", 7, "steps[1].prompt[0].extract", "extract should be text, not a list"),
        (
            "warning",
            7,
            "steps[1].prompt[0].strict",
            "strict should be true/false or a {{ }} template, not text",
        ),
    ]


def test_an_enum_no_other_check_knows_is_named_with_its_values() -> None:
    problems = check(CLAUDE, top="  defaults: {claude_output_format: yaml}\n")
    assert rows(problems) == [
        (
            "warning",
            3,
            "defaults.claude_output_format",
            "claude_output_format should be one of text, json, stream_json, not 'yaml'",
        )
    ]


def test_what_the_spec_accepts_is_not_warned_about() -> None:
    problems = check(
        CLAUDE
        + "      claude_options:\n"
        + "        max_tokens: '{{inputs.n}}'\n"
        + "        temperature: '0.5'\n"
        + "        thinking: true\n"
        + "    - name: g\n      type: gemini\n"
        + "      token_budget: {max_output_tokens: 100, temperature: 1}\n"
        + "      prompt: [{type: static, content: 3}]\n",
        top="  inputs: [{name: n, default: 5}]\n",
    )
    assert rows(problems) == []


def test_a_value_another_check_reports_is_not_reported_twice() -> None:
    problems = check(
        CLAUDE
        + "      claude_options: {max_turns: lots, allowed_tools: Read}\n"
        + "    - {name: v, type: set_variable, variables: oops}\n"
    )
    assert [(p.path, p.severity) for p in problems] == [
        ("steps[0].claude_options.max_turns", "error"),
        ("steps[0].claude_options.allowed_tools", "error"),
        ("steps[1]", "error"),
    ]


def test_the_right_kind_with_a_broken_limit_is_left_to_the_other_checks() -> None:
    problems = check(CLAUDE + "      claude_options: {max_turns: 0}\n")
    assert rows(problems) == [
        (
            "error",
            7,
            "steps[0].claude_options.max_turns",
            "max_turns must be a positive whole number",
        )
    ]


def test_loop_bodies_and_inline_pipelines_are_checked_once() -> None:
    problems = check(
        "    - name: each\n      type: for_loop\n      iterator: i\n      data_source: [1]\n"
        "      parallel: sometimes\n"
        "      steps:\n"
        "        - {name: in, type: claude, prompt: [{type: static, content: hi}],"
        " claude_options: {verbose: loud}}\n"
        "    - name: sub\n      type: pipeline\n"
        "      pipeline:\n        name: kid\n        checkpoint_enabled: nope\n"
        "        steps: [{name: k, type: test_echo, value: 1}]\n"
    )
    warned = [(p.path, p.message) for p in problems if "should be" in p.message]
    assert warned == [
        (
            "steps[0].steps[0].claude_options.verbose",
            "verbose should be true/false or a {{ }} template, not text",
        ),
        ("steps[0].parallel", "parallel should be true/false or a {{ }} template, not text"),
        (
            "steps[1].pipeline.checkpoint_enabled",
            "checkpoint_enabled should be true/false or a {{ }} template, not text",
        ),
    ]
