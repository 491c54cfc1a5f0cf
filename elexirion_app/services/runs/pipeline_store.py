"""The pipeline library: each user's pipelines with their versions, and the shipped ones.

CONTRACT:
- Every function takes the caller's ``user_id`` and touches only that user's rows: another
  user's pipeline is ``NotFound`` (never "forbidden": its existence is not revealed).
- A pipeline is a ``PipelineDoc`` keyed by ``name`` (a slug, unique per user) with append-only
  ``PipelineVersion`` rows; every save is a version, a rollback is a new version equal to an
  old one. ``draft_yaml`` is the editor's autosaved working copy between saves.
- The current version is also written to ``user_dir(user_id)/<name>.yaml``: the file the chat's
  router lists and runs read (nested ``pipeline_file`` references resolve beside it).
- Shipped pipelines (``SHIPPED_DIR``) are read-only: they are copied before editing.
- Functions are synchronous (database and files): call them through ``in_db_thread``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from elexirion_app.config import PROJECT_ROOT, get_settings
from elexirion_app.core.errors import Conflict, InputError, NotFound, PipelineValidationError
from elexirion_app.core.errors import Problem as Problem
from elexirion_app.core.paths import pipeline_file, pipeline_slug
from elexirion_app.core.text import clean_title
from elexirion_app.db.models import PipelineDoc, PipelineVersion, Run, utcnow
from elexirion_app.pipelines.loader import PipelineDocument, load_text
from elexirion_app.pipelines.validate import validate_document
from elexirion_app.services.accounts import audit

SHIPPED_DIR = PROJECT_ROOT / "pipelines"
MAX_YAML_BYTES = 1_000_000
MAX_PIPELINES = 500
MAX_LABEL = 100
MAX_MESSAGE = 500
MAX_POSITIONS = 5000
# Saves and rollbacks of one pipeline in the last minute (each is a row of up to 1 MB and a
# file write): a burst past this is refused with a clear message.
MAX_VERSIONS_PER_MINUTE = 20
BLANK_YAML = """\
workflow:
  name: {name}
  description: ""
  steps:
    - name: first_step
      type: claude
      prompt:
        - type: static
          content: "Describe what this step should do."
"""


@dataclass(frozen=True)
class PipelineSummary:
    name: str
    title: str
    description: str
    steps: int
    errors: int
    current_version: int
    updated_at: str
    shipped: bool
    source: str


@dataclass(frozen=True)
class VersionView:
    number: int
    label: str
    message: str
    errors: int
    created_at: str


@dataclass(frozen=True)
class PipelineDetail:
    id: int | None  # None: a shipped pipeline (read-only)
    name: str
    title: str
    yaml: str  # what the editor opens: the draft, else the current version
    saved_yaml: str  # the current version ("" before the first save)
    current_version: int
    versions: tuple[VersionView, ...]
    layout: dict[str, Any]
    shipped: bool
    source: str


def user_dir(user_id: int) -> Path:
    path = get_settings().data_dir / "pipelines" / str(int(user_id))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _stamp(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def _check_size(text: str) -> None:
    if not isinstance(text, str):
        raise InputError("the pipeline must be YAML text")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise InputError(f"a pipeline is at most {MAX_YAML_BYTES // 1000} KB of YAML")


def problems_of(text: str, base_dir: Path) -> list[Problem]:
    """Every problem of ``text`` (unreadable YAML included), as the validator reports them."""
    return parsed_with_problems(text, base_dir)[1]


def parsed_with_problems(
    text: str, base_dir: Path
) -> tuple[PipelineDocument | None, list[Problem]]:
    """``problems_of`` that also hands back the parsed document (None: unreadable YAML), so a
    caller that goes on to run it does not parse the text again."""
    _check_size(text)
    try:
        doc = load_text(text, filename="<editor>")
    except PipelineValidationError as exc:
        return None, list(exc.problems)
    doc.base_dir = base_dir
    return doc, validate_document(doc)


@dataclass(frozen=True)
class Checked:
    """What a version records about its text: ``check_text`` (CPU work: the web layer runs
    it on the CPU pool and hands it to ``save_version``, so the database thread only writes)."""

    text: str
    errors: int
    title: str
    description: str
    steps: int


def check_text(text: str, base_dir: Path) -> Checked:
    problems = problems_of(text, base_dir)
    title, description, steps = _facts(text)
    errors = sum(1 for p in problems if p.severity == "error")
    return Checked(text, errors, title, description, steps)


def _facts(text: str) -> tuple[str, str, int]:
    """(workflow name, description, step count) of a text, tolerating any shape."""
    try:
        wf = load_text(text, filename="<editor>").workflow
    except PipelineValidationError:
        return "", "", 0
    steps = wf.get("steps")
    return (
        str(wf.get("name") or "")[:200],
        str(wf.get("description") or "")[:500],
        len(steps) if isinstance(steps, list) else 0,
    )


# -- lookups ---------------------------------------------------------------------------------


def _doc(session: Session, user_id: int, name: object) -> PipelineDoc:
    if not isinstance(name, str) or not name or name != pipeline_slug(name):
        raise NotFound("no such pipeline")
    doc = session.exec(
        select(PipelineDoc).where(PipelineDoc.user_id == user_id, PipelineDoc.name == name)
    ).first()
    if doc is None:
        raise NotFound("no such pipeline")
    return doc


def _versions(session: Session, doc_id: int) -> list[PipelineVersion]:
    return list(
        session.exec(
            select(PipelineVersion)
            .where(PipelineVersion.pipeline_id == doc_id)
            .order_by(col(PipelineVersion.number).desc())
        )
    )


def _version(session: Session, doc_id: int, number: object) -> PipelineVersion:
    if not isinstance(number, int) or isinstance(number, bool):
        raise NotFound("no such version")
    row = session.exec(
        select(PipelineVersion).where(
            PipelineVersion.pipeline_id == doc_id, PipelineVersion.number == number
        )
    ).first()
    if row is None:
        raise NotFound(f"no version {number}")
    return row


_SHIPPED_CACHE: dict[Path, tuple[tuple[int, int], str, tuple[str, str, int]]] = {}
_SHIPPED_LOCK = threading.Lock()


def _shipped_text(path: Path) -> tuple[str, tuple[str, str, int]]:
    """(text, facts) of a shipped file, parsed once per (path, mtime, size): the library's
    search re-lists on every keystroke."""
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _SHIPPED_LOCK:
        kept = _SHIPPED_CACHE.get(path)
    if kept is not None and kept[0] == stamp:
        return kept[1], kept[2]
    text = path.read_text(encoding="utf-8")
    facts = _facts(text)
    with _SHIPPED_LOCK:
        _SHIPPED_CACHE[path] = (stamp, text, facts)
    return text, facts


def shipped_pipelines() -> dict[str, Path]:
    """Shipped pipelines by key (``code_analysis``, ``examples/hello``)."""
    return {
        str(p.relative_to(SHIPPED_DIR).with_suffix("")): p
        for p in sorted(SHIPPED_DIR.rglob("*.yaml"))
        if p.is_file() and not p.is_symlink()
    }


def _shipped_path(key: object) -> Path:
    path = shipped_pipelines().get(key) if isinstance(key, str) else None
    if path is None:
        raise NotFound("no such shipped pipeline")
    return path


def list_library(session: Session, user_id: int, query: str = "") -> list[PipelineSummary]:
    """The user's pipelines (most recently changed first), then the shipped ones."""
    needle = query.strip().lower()[:100] if isinstance(query, str) else ""
    docs = session.exec(
        select(PipelineDoc)
        .where(PipelineDoc.user_id == user_id)
        .order_by(col(PipelineDoc.updated_at).desc())
    )
    own = [
        PipelineSummary(
            d.name,
            d.title,
            d.description,
            d.step_count,
            d.errors,
            d.current_version,
            _stamp(d.updated_at),
            False,
            d.source,
        )
        for d in docs
    ]
    shipped = []
    for key, path in shipped_pipelines().items():
        title, description, steps = _shipped_text(path)[1]
        shipped.append(PipelineSummary(key, title, description, steps, 0, 0, "", True, "shipped"))
    rows = own + shipped
    if needle:
        rows = [r for r in rows if needle in r.name.lower() or needle in r.title.lower()]
    return rows


def open_pipeline(session: Session, user_id: int, name: object) -> PipelineDetail:
    doc = _doc(session, user_id, name)
    assert doc.id is not None
    versions = _versions(session, doc.id)
    saved = versions[0].yaml if versions else ""
    return PipelineDetail(
        doc.id,
        doc.name,
        doc.title,
        doc.draft_yaml or saved,
        saved,
        doc.current_version,
        tuple(
            VersionView(v.number, v.label, v.message, v.errors, _stamp(v.created_at))
            for v in versions
        ),
        dict(doc.layout or {}),
        False,
        doc.source,
    )


def open_shipped(key: object) -> PipelineDetail:
    """A shipped pipeline, read-only (file work: call it in a worker thread)."""
    path = _shipped_path(key)
    text, (title, _description, _steps) = _shipped_text(path)
    return PipelineDetail(None, str(key), title, text, text, 0, (), {}, True, "shipped")


def version_yaml(session: Session, user_id: int, name: object, number: object) -> str:
    doc = _doc(session, user_id, name)
    assert doc.id is not None
    return _version(session, doc.id, number).yaml


# -- writes ----------------------------------------------------------------------------------


def _free_name(session: Session, user_id: int, wanted: object) -> str:
    base = pipeline_slug(wanted)[:56]
    taken = set(session.exec(select(PipelineDoc.name).where(PipelineDoc.user_id == user_id)).all())
    if len(taken) >= MAX_PIPELINES:
        raise InputError(f"a library holds at most {MAX_PIPELINES} pipelines; delete some first")
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def _write_file(user_id: int, name: str, text: str) -> None:
    pipeline_file(user_dir(user_id), name, read_only=(SHIPPED_DIR,)).write_text(
        text, encoding="utf-8"
    )


def create_pipeline(
    session: Session,
    user_id: int,
    wanted_name: object,
    text: str,
    *,
    source: str,
    message: str = "",
    checked: Checked | None = None,
) -> str:
    """A new pipeline with ``text`` as version 1; returns its (free) name."""
    _check_size(text)
    name = _free_name(session, user_id, wanted_name)
    doc = PipelineDoc(user_id=user_id, name=name, source=source[:100])
    session.add(doc)
    session.flush()
    _add_version(session, user_id, doc, text, label="", message=message, checked=checked)
    return name


def new_blank(session: Session, user_id: int, wanted_name: object = "untitled") -> str:
    name = _free_name(session, user_id, wanted_name or "untitled")
    return create_pipeline(
        session, user_id, name, BLANK_YAML.format(name=name), source="blank", message="Created"
    )


def copy_shipped(session: Session, user_id: int, key: object) -> str:
    path = _shipped_path(key)
    return create_pipeline(
        session,
        user_id,
        f"{path.stem}_copy",
        path.read_text(encoding="utf-8"),
        source=f"copy:{key}",
        message=f"Copied from the shipped {key}",
    )


def duplicate(session: Session, user_id: int, name: object) -> str:
    doc = _doc(session, user_id, name)
    text = doc.draft_yaml or open_pipeline(session, user_id, name).saved_yaml
    return create_pipeline(
        session, user_id, f"{doc.name}_copy", text, source=f"copy:{doc.name}", message="Copy"
    )


def import_file(
    session: Session, user_id: int, filename: object, data: bytes
) -> tuple[str, str, int]:
    """A ``.yaml`` upload as a new pipeline; returns (name, warning or "", errors in it). A
    file with errors is kept as it is (nothing is lost) as a version marked with them."""
    from elexirion_app.editor.document import wrap_bare

    if len(data) > MAX_YAML_BYTES:
        raise InputError(f"a pipeline is at most {MAX_YAML_BYTES // 1000} KB of YAML")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError("the file is not UTF-8 text") from exc
    text, warning = wrap_bare(text)
    stem = Path(str(filename or "imported")).name.rsplit(".", 1)[0] or "imported"
    checked = check_text(text, user_dir(user_id))
    name = create_pipeline(
        session,
        user_id,
        stem,
        text,
        source="import",
        message=f"Imported {stem[:80]}",
        checked=checked,
    )
    return name, warning or "", checked.errors


def register_generated(session: Session, user_id: int, path: Path, text: str) -> str:
    """A pipeline genesis wrote to ``path`` in the user's folder: its library entry (a new
    version if that name is already in the library)."""
    name = path.stem
    existing = session.exec(
        select(PipelineDoc).where(PipelineDoc.user_id == user_id, PipelineDoc.name == name)
    ).first()
    if existing is None:
        doc = PipelineDoc(user_id=user_id, name=name, source="genesis")
        session.add(doc)
        session.flush()
    else:
        doc = existing
    _add_version(session, user_id, doc, text, label="", message="Written by the chat")
    return name


def save_draft(session: Session, user_id: int, name: object, text: str) -> None:
    _check_size(text)
    doc = _doc(session, user_id, name)
    doc.draft_yaml = text
    doc.updated_at = utcnow()
    session.add(doc)


def save_version(
    session: Session,
    user_id: int,
    name: object,
    text: str,
    *,
    label: object = "",
    message: object = "",
    checked: Checked | None = None,
    address: str = "",
    unchanged_ok: bool = False,
) -> VersionView:
    """A new version of ``text``; ``Conflict`` when it equals the current version ("no
    changes"; with ``unchanged_ok`` the current version is returned instead) or the pipeline
    had ``MAX_VERSIONS_PER_MINUTE`` versions in the last minute."""
    _check_size(text)
    doc = _doc(session, user_id, name)
    current = _unchanged(session, doc, text)
    if current is not None:
        if unchanged_ok:
            return current
        raise Conflict(f"No changes since version {current.number}: nothing to save.")
    _may_add_version(session, doc)
    saved = _add_version(session, user_id, doc, text, label=label, message=message, checked=checked)
    _audit_saved(session, user_id, doc, saved, address)
    return saved


def rollback(
    session: Session, user_id: int, name: object, number: object, *, address: str = ""
) -> VersionView:
    doc = _doc(session, user_id, name)
    assert doc.id is not None
    old = _version(session, doc.id, number)
    current = _unchanged(session, doc, old.yaml)
    if current is not None:
        raise Conflict(f"No changes since version {current.number}: nothing to save.")
    _may_add_version(session, doc)
    back = _add_version(
        session, user_id, doc, old.yaml, label="", message=f"Rolled back to version {old.number}"
    )
    _audit_saved(session, user_id, doc, back, address, rollback_to=old.number)
    return back


def _unchanged(session: Session, doc: PipelineDoc, text: str) -> VersionView | None:
    """The current version when it holds ``text`` already."""
    assert doc.id is not None
    if doc.current_version < 1:
        return None
    row = _version(session, doc.id, doc.current_version)
    if row.yaml != text:
        return None
    return VersionView(row.number, row.label, row.message, row.errors, _stamp(row.created_at))


def _may_add_version(session: Session, doc: PipelineDoc) -> None:
    assert doc.id is not None
    since = utcnow() - timedelta(minutes=1)
    recent = session.exec(
        select(func.count())
        .select_from(PipelineVersion)
        .where(PipelineVersion.pipeline_id == doc.id, col(PipelineVersion.created_at) >= since)
    ).one()
    if recent >= MAX_VERSIONS_PER_MINUTE:
        raise Conflict(
            f"{MAX_VERSIONS_PER_MINUTE} versions of this pipeline were saved in the last "
            "minute: wait a minute before saving again."
        )


def _audit_saved(
    session: Session,
    user_id: int,
    doc: PipelineDoc,
    saved: VersionView,
    address: str,
    rollback_to: int | None = None,
) -> None:
    detail: dict[str, Any] = {"version": saved.number}
    if rollback_to is not None:
        detail["rollback_to"] = rollback_to
    audit.record(
        session,
        "pipeline_saved",
        actor_id=user_id,
        address=address,
        target=doc.name,
        detail=detail,
    )


def _clean(value: object, limit: int) -> str:
    return clean_title(value, limit)


def _add_version(
    session: Session,
    user_id: int,
    doc: PipelineDoc,
    text: str,
    *,
    label: object,
    message: object,
    checked: Checked | None = None,
) -> VersionView:
    assert doc.id is not None
    _check_size(text)
    if checked is None or checked.text != text:
        checked = check_text(text, user_dir(user_id))
    errors = checked.errors
    # One statement takes the next number, so two tabs saving at once get two versions.
    number = session.execute(
        update(PipelineDoc)
        .where(col(PipelineDoc.id) == doc.id)
        .values(current_version=col(PipelineDoc.current_version) + 1)
        .returning(col(PipelineDoc.current_version))
    ).scalar_one()
    title, description, steps = checked.title, checked.description, checked.steps
    now = utcnow()
    row = PipelineVersion(
        pipeline_id=doc.id,
        number=number,
        yaml=text,
        label=_clean(label, MAX_LABEL),
        message=_clean(message, MAX_MESSAGE),
        errors=errors,
        created_by=user_id,
        created_at=now,
    )
    session.add(row)
    session.refresh(doc)
    doc.title, doc.description, doc.step_count, doc.errors = title, description, steps, errors
    doc.draft_yaml, doc.updated_at = "", now
    session.add(doc)
    session.flush()
    _write_file(user_id, doc.name, text)
    return VersionView(number, row.label, row.message, errors, _stamp(now))


def set_position(
    session: Session,
    user_id: int,
    name: object,
    node_id: object,
    x: object,
    y: object,
    known: Iterable[str] | None = None,
) -> None:
    """Keep where the user dragged a node (layout only; the YAML is not touched).

    ``known`` are the node ids of the graph the user sees: a position for any other id is
    refused and positions of steps no longer there are dropped, so the layout never holds
    more than the graph (and never more than ``MAX_POSITIONS``)."""
    doc = _doc(session, user_id, name)
    if not isinstance(node_id, str) or not node_id or len(node_id) > 500:
        raise InputError("no such step")
    ids = set(known) if known is not None else None
    if ids is not None and node_id not in ids:
        raise InputError("no such step")
    numbers = [v for v in (x, y) if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) != 2 or not all(abs(v) < 1e7 for v in numbers):  # NaN fails too
        raise InputError("a position is two numbers")
    layout = dict(doc.layout or {})
    if ids is not None:
        layout = {k: v for k, v in layout.items() if k in ids}
    if node_id not in layout and len(layout) >= MAX_POSITIONS:
        raise InputError("too many positions kept")
    layout[node_id] = [round(float(numbers[0]), 1), round(float(numbers[1]), 1)]
    doc.layout = layout
    session.add(doc)


def delete_pipeline(session: Session, user_id: int, name: object, *, address: str = "") -> None:
    """Remove a pipeline and its versions; its runs stay (unlinked from it)."""
    doc = _doc(session, user_id, name)
    assert doc.id is not None
    audit.record(
        session,
        "pipeline_deleted",
        actor_id=user_id,
        address=address,
        target=doc.name,
        detail={"versions": doc.current_version},
    )
    session.execute(update(Run).where(col(Run.pipeline_id) == doc.id).values(pipeline_id=None))
    session.execute(delete(PipelineVersion).where(col(PipelineVersion.pipeline_id) == doc.id))
    session.execute(delete(PipelineDoc).where(col(PipelineDoc.id) == doc.id))
    pipeline_file(user_dir(user_id), doc.name, read_only=(SHIPPED_DIR,)).unlink(missing_ok=True)


def runnable(session: Session, user_id: int, name: object) -> tuple[Path, int, int]:
    """(file, pipeline id, version) to run the current version; refused while it has errors."""
    doc = _doc(session, user_id, name)
    assert doc.id is not None
    if doc.current_version < 1:
        raise Conflict("save the pipeline before running it")
    version = _version(session, doc.id, doc.current_version)
    if version.errors:
        raise Conflict("the saved version has errors: fix them and save before running")
    path = pipeline_file(user_dir(user_id), doc.name, read_only=(SHIPPED_DIR,))
    path.write_text(version.yaml, encoding="utf-8")
    return path, doc.id, version.number


def sync_files(session: Session, user_id: int) -> list[str]:
    """Pipelines found in the user's folder but not in the library (drafts written before the
    library existed) become library entries; returns their names."""
    known = set(session.exec(select(PipelineDoc.name).where(PipelineDoc.user_id == user_id)).all())
    added = []
    for path in sorted(user_dir(user_id).glob("*.yaml")):
        if path.stem in known or path.is_symlink() or path.stem != pipeline_slug(path.stem):
            continue
        if path.stat().st_size > MAX_YAML_BYTES:
            continue
        added.append(register_generated(session, user_id, path, path.read_text("utf-8")))
    return added
