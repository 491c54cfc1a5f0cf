from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from sqlmodel import select

from elexirion_app.core.errors import Conflict, InputError, NotFound
from elexirion_app.db.engine import session_scope
from elexirion_app.db.models import PipelineVersion, Run
from elexirion_app.services.accounts import auth
from elexirion_app.services.runs import pipeline_store as store

GOOD = """\
# my pipeline
workflow:
  name: demo
  steps:
    - name: hello
      type: claude
      prompt:
        - type: static
          content: "Say hi"
"""
BROKEN = GOOD.replace("type: claude", "type: not_a_type")


def _users() -> tuple[int, int]:
    with session_scope() as s:
        a = auth.register(s, "a@example.com", "password-1").id
        b = auth.register(s, "b@example.com", "password-2").id
    return a, b


def test_every_save_is_a_version_and_the_current_one_is_the_users_file(db_url: str) -> None:
    a, _ = _users()
    with session_scope() as s:
        name = store.create_pipeline(s, a, "My Demo!", GOOD, source="blank")
        v2 = store.save_version(s, a, name, GOOD.replace("Say hi", "Say bye"), label="bye")
    assert name == "my_demo"
    assert v2.number == 2 and v2.label == "bye" and v2.errors == 0
    with session_scope() as s:
        detail = store.open_pipeline(s, a, name)
    assert [v.number for v in detail.versions] == [2, 1]
    assert detail.current_version == 2 and "Say bye" in detail.saved_yaml
    assert detail.title == "demo"
    file = store.user_dir(a) / "my_demo.yaml"
    assert file.read_text() == detail.saved_yaml


def test_a_draft_with_errors_can_be_saved_but_not_run(db_url: str) -> None:
    a, _ = _users()
    with session_scope() as s:
        name = store.create_pipeline(s, a, "x", GOOD, source="blank")
        bad = store.save_version(s, a, name, BROKEN)
        assert bad.errors >= 1
        with pytest.raises(Conflict, match="errors"):
            store.runnable(s, a, name)
        store.save_version(s, a, name, GOOD)
        path, pid, number = store.runnable(s, a, name)
    assert number == 3 and path.read_text() == GOOD and pid > 0


def test_rollback_is_a_new_version_equal_to_the_old_one(db_url: str) -> None:
    a, _ = _users()
    with session_scope() as s:
        name = store.create_pipeline(s, a, "x", GOOD, source="blank")
        store.save_version(s, a, name, GOOD + "# two\n")
        back = store.rollback(s, a, name, 1)
        assert back.number == 3 and "version 1" in back.message
        assert store.version_yaml(s, a, name, 3) == GOOD
        with pytest.raises(NotFound):
            store.rollback(s, a, name, 99)
        with pytest.raises(NotFound):
            store.rollback(s, a, name, "1")


def test_another_users_pipeline_is_not_found_for_every_operation(db_url: str) -> None:
    a, b = _users()
    with session_scope() as s:
        name = store.create_pipeline(s, a, "secret", GOOD, source="blank")
    ops = [
        lambda s: store.open_pipeline(s, b, name),
        lambda s: store.save_version(s, b, name, GOOD),
        lambda s: store.save_draft(s, b, name, GOOD),
        lambda s: store.rollback(s, b, name, 1),
        lambda s: store.version_yaml(s, b, name, 1),
        lambda s: store.duplicate(s, b, name),
        lambda s: store.delete_pipeline(s, b, name),
        lambda s: store.set_position(s, b, name, "hello", 1, 2),
        lambda s: store.runnable(s, b, name),
    ]
    for op in ops:
        with pytest.raises(NotFound), session_scope() as s:
            op(s)
    with session_scope() as s:
        assert [r.name for r in store.list_library(s, b) if not r.shipped] == []
        assert store.open_pipeline(s, a, name).current_version == 1


@pytest.mark.parametrize("name", ["../x", "x/y", "", None, 3, "UPPER", "a" * 300, "x\x00"])
def test_forged_names_are_not_found(db_url: str, name: object) -> None:
    a, _ = _users()
    with pytest.raises(NotFound), session_scope() as s:
        store.open_pipeline(s, a, name)


def test_names_are_free_slugs_and_shipped_ones_are_copied(db_url: str) -> None:
    a, _ = _users()
    with session_scope() as s:
        first = store.new_blank(s, a)
        second = store.new_blank(s, a)
        copy = store.copy_shipped(s, a, "code_analysis")
        again = store.copy_shipped(s, a, "code_analysis")
        with pytest.raises(NotFound):
            store.copy_shipped(s, a, "../../etc/passwd")
        rows = store.list_library(s, a)
    assert (first, second) == ("untitled", "untitled_2")
    assert (copy, again) == ("code_analysis_copy", "code_analysis_copy_2")
    shipped = {r.name for r in rows if r.shipped}
    assert {"code_analysis", "genesis", "examples/hello"} <= shipped
    assert yaml.safe_load(store.open_shipped("code_analysis").yaml)["workflow"]["steps"]
    with session_scope() as s:
        assert [r.name for r in store.list_library(s, a, "copy_2")] == [again]


def test_concurrent_saves_get_distinct_numbers(db_url: str) -> None:
    a, _ = _users()
    with session_scope() as s:
        name = store.create_pipeline(s, a, "x", GOOD, source="blank")

    def save(i: int) -> int:
        with session_scope() as s:
            return store.save_version(s, a, name, GOOD + f"# {i}\n").number

    with ThreadPoolExecutor(4) as pool:
        numbers = list(pool.map(save, range(8)))
    assert sorted(numbers) == list(range(2, 10))


def test_delete_keeps_runs_but_unlinks_them(db_url: str) -> None:
    a, _ = _users()
    with session_scope() as s:
        name = store.create_pipeline(s, a, "x", GOOD, source="blank")
        _, pid, number = store.runnable(s, a, name)
        s.add(Run(id="r1", user_id=a, pipeline_id=pid, pipeline_version=number))
    with session_scope() as s:
        store.delete_pipeline(s, a, name)
    with session_scope() as s:
        run = s.get(Run, "r1")
        assert run is not None and run.pipeline_id is None and run.pipeline_version == 1
        assert s.exec(select(PipelineVersion)).all() == []
    assert not (store.user_dir(a) / "x.yaml").exists()


def test_size_and_shape_limits(db_url: str) -> None:
    a, _ = _users()
    with session_scope() as s:
        name = store.create_pipeline(s, a, "x", GOOD, source="blank")
        with pytest.raises(InputError):
            store.save_draft(s, a, name, "x" * (store.MAX_YAML_BYTES + 1))
        with pytest.raises(InputError):
            store.save_version(s, a, name, 42)  # type: ignore[arg-type]
        with pytest.raises(InputError):
            store.set_position(s, a, name, "hello", "1", 2)
        with pytest.raises(InputError):
            store.set_position(s, a, name, "hello", float("inf"), 2)
        store.set_position(s, a, name, "hello", 10.04, -3)
        assert store.open_pipeline(s, a, name).layout == {"hello": [10.0, -3.0]}


def test_malformed_yaml_is_saved_with_its_problem_and_line(db_url: str) -> None:
    a, _ = _users()
    with session_scope() as s:
        name = store.create_pipeline(s, a, "x", GOOD, source="blank")
        v = store.save_version(s, a, name, "workflow:\n  name: [unclosed\n")
    assert v.errors == 1
    problems = store.problems_of("workflow:\n  name: [unclosed\n", Path("."))
    assert problems[0].line is not None


def test_import_wraps_a_bare_genesis_file_with_a_warning(db_url: str) -> None:
    a, _ = _users()
    bare = b"# from pipeline_ex genesis\nname: bare\nsteps:\n  - name: s\n    type: claude\n"
    with session_scope() as s:
        name, warning, errors = store.import_file(s, a, "../../Bare File.yaml", bare)
        text = store.open_pipeline(s, a, name).saved_yaml
        with pytest.raises(InputError):
            store.import_file(s, a, "x.yaml", b"\xff\xfe")
        # Broken YAML is kept as sent, and the caller is told how many errors it has.
        broken, _, broken_errors = store.import_file(s, a, "worse.yaml", b"not: [valid\n")
        assert store.open_pipeline(s, a, broken).saved_yaml == "not: [valid\n"
    assert broken_errors >= 1
    assert name == "bare_file" and warning and errors == 1  # its step has no prompt
    assert yaml.safe_load(text)["workflow"]["name"] == "bare"
    assert "# from pipeline_ex genesis" in text


def test_files_written_before_the_library_are_synced_once(db_url: str) -> None:
    a, _ = _users()
    (store.user_dir(a) / "old_draft.yaml").write_text(GOOD)
    (store.user_dir(a) / "Bad Name.yaml").write_text(GOOD)
    with session_scope() as s:
        assert store.sync_files(s, a) == ["old_draft"]
        assert store.sync_files(s, a) == []
        assert store.open_pipeline(s, a, "old_draft").source == "genesis"


def _audit(action: str) -> list[tuple[int | None, str, dict]]:
    from elexirion_app.db.models import AuditEvent

    with session_scope() as s:
        rows = s.exec(select(AuditEvent).where(AuditEvent.action == action)).all()
        return [(r.actor_id, r.target, dict(r.detail), r.address) for r in rows]  # type: ignore[misc]


def test_saving_the_current_text_again_makes_no_version(db_url: str) -> None:
    a, _ = _users()
    with session_scope() as s:
        name = store.create_pipeline(s, a, "x", GOOD, source="blank")
        with pytest.raises(Conflict, match="No changes since version 1"):
            store.save_version(s, a, name, GOOD)
        with pytest.raises(Conflict, match="No changes"):
            store.rollback(s, a, name, 1)
        assert store.open_pipeline(s, a, name).current_version == 1


def test_a_burst_of_saves_is_refused_past_the_per_minute_cap(db_url: str) -> None:
    a, _ = _users()
    with session_scope() as s:
        name = store.create_pipeline(s, a, "x", GOOD, source="blank")
    refused = 0
    for i in range(store.MAX_VERSIONS_PER_MINUTE + 5):
        with session_scope() as s:
            try:
                store.save_version(s, a, name, GOOD + f"# {i}\n")
            except Conflict as exc:
                assert "wait a minute" in exc.user_message
                refused += 1
    with session_scope() as s:
        kept = store.open_pipeline(s, a, name).current_version
    assert kept == store.MAX_VERSIONS_PER_MINUTE and refused == 6


def test_saves_rollbacks_and_deletes_are_audited_with_the_address(db_url: str) -> None:
    a, _ = _users()
    with session_scope() as s:
        name = store.create_pipeline(s, a, "x", GOOD, source="blank")
        store.save_version(s, a, name, GOOD + "# 2\n", address="10.0.0.9")
        store.rollback(s, a, name, 1, address="10.0.0.9")
    with pytest.raises(NotFound), session_scope() as s:
        store.save_version(s, a, "nope", GOOD)  # nothing audited for a refused save
    with session_scope() as s:
        store.delete_pipeline(s, a, name, address="10.0.0.8")
    assert _audit("pipeline_saved") == [
        (a, "x", {"version": 2}, "10.0.0.9"),
        (a, "x", {"version": 3, "rollback_to": 1}, "10.0.0.9"),
    ]
    assert _audit("pipeline_deleted") == [(a, "x", {"versions": 3}, "10.0.0.8")]


def test_positions_are_kept_only_for_the_graphs_steps(db_url: str) -> None:
    a, _ = _users()
    with session_scope() as s:
        name = store.create_pipeline(s, a, "x", GOOD, source="blank")
        store.set_position(s, a, name, "gone", 1, 2)
        with pytest.raises(InputError, match="no such step"):
            store.set_position(s, a, name, "ghost", 1, 2, known=["hello"])
        store.set_position(s, a, name, "hello", 5, 6, known=["hello"])
        assert store.open_pipeline(s, a, name).layout == {"hello": [5.0, 6.0]}
        with pytest.raises(InputError):
            store.set_position(s, a, name, "hello", True, 6, known=["hello"])


def test_shipped_files_are_parsed_once_until_they_change(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path)
    shipped = tmp_path / "demo.yaml"
    shipped.write_text(GOOD)
    parsed: list[str] = []
    real = store._facts
    monkeypatch.setattr(store, "_facts", lambda text: parsed.append(text) or real(text))
    a, _ = _users()
    for query in ("", "d", "de", "dem"):
        with session_scope() as s:
            rows = store.list_library(s, a, query)
        assert [r.title for r in rows if r.shipped] == ["demo"]
    assert store.open_shipped("demo").title == "demo"
    assert len(parsed) == 1
    shipped.write_text(GOOD.replace("name: demo", "name: changed"))
    os.utime(shipped, ns=(1, 1))
    assert store.open_shipped("demo").title == "changed" and len(parsed) == 2
