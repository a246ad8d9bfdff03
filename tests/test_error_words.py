"""One service layer: the domain says what is wrong in plain words; the CLI adds its flags.

Every text the domain modules can put in an error (or anywhere else) is scanned for
the CLI's flags (``--range``) and commands (``calshare push``), both taken from the
CLI's own parser so a new flag is covered the day it is added. Only calshare/cli.py
words errors for a shell user (``cli.worded``); a web page shows the domain's message
as it is. The few modules whose texts are for the operator's shell by design are
listed, each with why.
"""

from __future__ import annotations

import argparse
import ast
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from calshare.cli import COMMANDS, FLAGS, build_parser, worded
from calshare.errors import (
    AmbiguousCalendar,
    CalshareError,
    Field,
    Remedy,
    ShareRefused,
    UnknownCalendar,
    WebDavError,
)
from calshare.ranges import resolve_range
from calshare.webdav import check_collection

PACKAGE = Path(__file__).resolve().parent.parent / "calshare"
EDGE = PACKAGE / "cli.py"
# Texts for the operator's shell by design, not errors of the domain.
FOR_THE_SHELL = {
    "config.py": "settings' help texts, the operator's reference for the flags they go with",
    "demo.py": "what `calshare demo` prints: how to try the demo from a shell",
    "wording.py": "owner mails (accepted.body names `calshare unshare`): issue 14 point 2 "
    "links them to the console's pages, on the console branches",
}


def _flags_and_commands() -> tuple[set[str], set[str]]:
    flags: set[str] = set()
    commands: set[str] = set()

    def walk(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            flags.update(option for option in action.option_strings if option.startswith("--"))
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    commands.add(name)
                    walk(sub)

    walk(build_parser())
    return flags, commands


FLAGS_USED, COMMAND_NAMES = _flags_and_commands()
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z-]*)")
COMMAND = re.compile(r"\bcalshare (" + "|".join(sorted(COMMAND_NAMES)) + r")\b")


def _texts(path: Path) -> list[tuple[int, str]]:
    """Every string literal of a module but its docstrings (f-strings: their literal parts)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def _shell_words(text: str) -> list[str]:
    return [flag for flag in FLAG.findall(text) if flag in FLAGS_USED] + [
        found[0] for found in COMMAND.finditer(text)
    ]


def test_the_scan_knows_the_clis_flags_and_commands() -> None:
    """The scan would see the texts this branch took out of the domain."""
    assert {"--range", "--to", "--layout", "--level", "--webdav", "--every", "--caldav"} <= (
        FLAGS_USED
    )
    assert {"--force", "--owner"} <= FLAGS_USED
    for text in (
        "--range 'x' is not a range",
        "share with --level titles",
        "`calshare push project --force` replaces it",
        "add it first with: calshare calendar add project --owner EMAIL",
    ):
        assert _shell_words(text), text
    assert _shell_words("calshare handles 1900-2199; 2026-12-01--2026-12-02") == []
    assert any(_shell_words(text) for _, text in _texts(EDGE))  # the edge does say them


def test_no_domain_text_names_a_flag_or_a_command() -> None:
    found = [
        f"{path.relative_to(PACKAGE)}:{line}: {words} in {text[:70]!r}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != EDGE and path.name not in FOR_THE_SHELL
        for line, text in _texts(path)
        if (words := _shell_words(text))
    ]
    assert found == []


def test_every_field_and_remedy_has_the_clis_words() -> None:
    assert set(FLAGS) == set(Field)
    assert set(COMMANDS) == set(Remedy)
    assert set(FLAGS.values()) <= FLAGS_USED


def _raised(make: Callable[[], object]) -> CalshareError:
    with pytest.raises(CalshareError) as caught:
        make()
    return caught.value


def test_the_domain_says_it_plainly_and_the_cli_adds_flag_and_command() -> None:
    bad_range = _raised(lambda: resolve_range("next-9-days", ZoneInfo("UTC"), datetime.now(UTC)))
    assert str(bad_range).startswith("'next-9-days' is not a range: use one of today, ")
    assert bad_range.field is Field.RANGE
    assert worded(bad_range).endswith("YYYY-MM-DD..YYYY-MM-DD (--range)")

    bad_folder = _raised(lambda: check_collection("ftp://dav.example.org/"))
    assert worded(bad_folder) == (
        "'ftp://dav.example.org/' is not an http(s) URL of a WebDAV folder (--webdav)"
    )

    capped = ShareRefused(
        "bob is outside example.org; share at titles", field=Field.LEVEL, suggestion="titles"
    )
    assert worded(capped).endswith("share at titles (--level titles)")

    failed = WebDavError(
        "The copy was not written. Once that is fixed, writing the copy again writes it.",
        remedies=[Remedy.PUSH],
        calendar="project",
    )
    owner = argparse.Namespace(owner="zoe@example.org")
    assert worded(failed, owner) == (
        "The copy was not written. Once that is fixed, writing the copy again writes it "
        "(`calshare push project --owner zoe@example.org` tries again)"
    )
    assert worded(failed).endswith("(`calshare push project` tries again)")
    named = argparse.Namespace(owner="Ann <ANN@example.org>")  # as calendar add takes it
    assert worded(failed, named).endswith(
        "(`calshare push project --owner ann@example.org` tries again)"
    )

    two = AmbiguousCalendar("project", ("ann@example.org", "zoe@example.org"))
    assert str(two) == (
        "2 owners have a calendar named 'project' (ann@example.org, zoe@example.org): say whose"
    )
    assert worded(two).endswith("say whose (add --owner EMAIL)")
    assert str(UnknownCalendar("nope", "ann@example.org")) == (
        "No calendar named 'nope' for ann@example.org; add it first"
    )
