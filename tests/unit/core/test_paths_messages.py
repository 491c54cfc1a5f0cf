"""``pipeline_file``'s refusals name the pipeline, never the server's data folder (finding 14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from elexirion_app.core.errors import WorkspaceError
from elexirion_app.core.paths import pipeline_file


def test_a_file_that_would_land_outside_the_folder_is_refused_without_the_path(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "data" / "pipelines" / "7"
    folder.mkdir(parents=True)
    (folder / "planted.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    with pytest.raises(WorkspaceError) as caught:
        pipeline_file(folder, "planted")
    shown = caught.value.user_message + str(caught.value)
    assert str(tmp_path) not in shown and "planted" in shown
