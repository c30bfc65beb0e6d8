"""run_loadcheck and the CLI refuse quickly, with exit code 2, when no verdict can be reached."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from loadtest.__main__ import main
from loadtest.run import LoadcheckError, run_loadcheck
from loadtest.slo import ProfileError


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends: nothing listens


def test_nothing_listening_is_no_verdict_not_a_pass(tmp_path: Path) -> None:
    with pytest.raises(LoadcheckError, match="/health does not answer"):
        run_loadcheck(f"http://127.0.0.1:{closed_port()}", "local", tmp_path)
    assert not (tmp_path / "summary.json").exists()


def test_unknown_profile_fails_before_any_request(tmp_path: Path) -> None:
    with pytest.raises(ProfileError):
        run_loadcheck("http://127.0.0.1:1", "nightly", tmp_path)


def test_cli_exit_code_2_without_a_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", "ftp://example", "--profile", "local", "--out", str(tmp_path)]) == 2
    assert "not an http(s) URL" in capsys.readouterr().err
