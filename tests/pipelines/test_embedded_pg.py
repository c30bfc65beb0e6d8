"""The embedded Postgres runs as a system user, so every folder on the way to its data and binaries must be
traversable, even when the virtualenv sits inside a private (0700) folder such as an act cache."""

import stat
from pathlib import Path

from pipelines.devtools.embedded_pg import EmbeddedPostgres


def test_the_server_user_can_reach_binaries_inside_a_private_folder(tmp_path: Path) -> None:
    private = tmp_path / "private"
    binaries = private / "venv" / "pgserver" / "bin"
    binaries.mkdir(parents=True)
    private.chmod(0o700)
    pg = EmbeddedPostgres(tmp_path / "db")
    pg.data_dir.mkdir()
    pg.bin = binaries
    pg._allow_traversal()
    for folder in (private, private / "venv", binaries.parent):
        mode = folder.stat().st_mode
        assert mode & (stat.S_IXGRP | stat.S_IXOTH) == stat.S_IXGRP | stat.S_IXOTH, folder
    assert not private.stat().st_mode & stat.S_IROTH, "traversal only: the folder stays unlistable"
