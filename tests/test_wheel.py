"""The wheel carries everything: build it, install it in a fresh venv, run it there.

Catches package data (templates, demo calendars) missing from the distribution,
which an editable install in the source tree would hide.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

from tests.conftest import ROOT


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in args], capture_output=True, text=True, cwd=cwd, check=False
    )


def test_wheel_installs_and_runs_outside_the_source_tree(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    built = run(sys.executable, "-m", "build", "--wheel", "--outdir", dist, ROOT, cwd=tmp_path)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = dist.glob("calshare-*.whl")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    installed = run(python, "-m", "pip", "install", "--quiet", wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    work = tmp_path / "elsewhere"
    work.mkdir()
    calshare = env_dir / "bin" / "calshare"
    helped = run(calshare, "--help", cwd=work)
    assert helped.returncode == 0 and "calendar" in helped.stdout
    demo = run(calshare, "--db", work / "demo.db", "demo", cwd=work)
    assert demo.returncode == 0, demo.stderr
    assert "Imported the demo calendar 'project'" in demo.stdout
    rendered = run(
        python,
        "-c",
        "from mailer.templates import template_dir, render; print(template_dir());"
        "print(render('notice.html', lang='en', subject='S', heading='H', body='B',"
        " footer='F', links=[]))",
        cwd=work,
    )
    assert rendered.returncode == 0, rendered.stderr
    where, html = rendered.stdout.split("\n", 1)
    assert where.endswith("site-packages/calshare/templates")
    assert "<style" not in html and 'style="' in html  # premailer ran in the installed copy
    shared = run(
        calshare,
        "--db",
        work / "demo.db",
        "share",
        "project",
        "bob@example.org",
        "--level",
        "titles",
        cwd=work,
    )
    assert shared.returncode == 0, shared.stderr
