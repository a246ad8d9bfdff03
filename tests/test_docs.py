"""The README is part of the contract: every command and every setting is documented there."""

from __future__ import annotations

import argparse

from calshare.cli import build_parser
from calshare.config import describe_options
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands(parser: argparse.ArgumentParser, prefix: str = "calshare") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.extend(_commands(sub, f"{prefix} {name}") or [f"{prefix} {name}"])
    return found


def test_every_command_is_in_the_readme() -> None:
    commands = _commands(build_parser())
    assert "calshare calendar import" in commands
    missing = [command for command in commands if command not in README]
    assert missing == []


def test_every_setting_is_in_the_readme() -> None:
    for key, env, _default, _help in describe_options():
        assert f"`{key}`" in README, key
        assert f"`{env}`" in README, env


def test_readme_quick_start_is_make_run_and_make_test() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make run" in quick_start and "make test" in quick_start
