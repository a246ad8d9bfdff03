"""Commands that need no store open none: run in an empty folder, they leave it empty.

`calshare inbox classify` says it changes nothing; it used to create ./var/calshare.db
(and its WAL files) wherever it was run, because the CLI opened the store before
knowing whether the command needed one.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from calshare.cli import main
from tests.conftest import ROOT

REPLY = ROOT / "tests" / "fixtures" / "mail" / "apple_mail_accept.eml"


def _clean_env() -> dict[str, str]:
    """The environment without CALSHARE_* settings, so the default ./var path applies."""
    return {key: value for key, value in os.environ.items() if not key.startswith("CALSHARE_")}


def test_inbox_classify_in_an_empty_folder_creates_no_store(tmp_path: Path) -> None:
    """The real console entry point, in a subprocess whose working folder is empty."""
    message = tmp_path / "reply.eml"
    shutil.copyfile(REPLY, message)
    done = subprocess.run(
        [sys.executable, "-m", "calshare.cli", "inbox", "classify", "reply.eml", "--json"],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '"kind"' in done.stdout
    assert sorted(path.name for path in tmp_path.iterdir()) == ["reply.eml"]


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["inbox", "classify", "reply.eml"], 0),
        (["inbox", "classify", "missing.eml"], 2),  # an error, still no store
        (["--help"], 0),
        (["inbox", "--help"], 0),
        (["--version"], 0),
        (["serve"], 2),  # no listener named: a usage error before anything is opened
        (["no-such-command"], 2),
    ],
)
def test_store_less_commands_leave_the_folder_as_it_was(
    argv: list[str], code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copyfile(REPLY, tmp_path / "reply.eml")
    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    try:
        result = main(argv, env={}, stdout=out, stderr=err)
    except SystemExit as exc:  # argparse's --help and --version print and exit
        result = int(exc.code or 0)
    assert result == code, err.getvalue()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["reply.eml"]


def test_a_command_that_needs_the_store_still_creates_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other side: opening lazily must not mean not opening."""
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    assert main(["calendar", "list", "--json"], env={}, stdout=out, stderr=io.StringIO()) == 0
    assert out.getvalue().strip() == "[]"
    assert (tmp_path / "var" / "calshare.db").is_file()
