"""The documentation is part of the contract.

Every command and every setting is in docs/reference.md; the README stays a short
front page whose links, like every relative link in docs/, lead to files in this
repository; nothing refers to files outside it (a fresh clone must stand alone).
"""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

import pytest

from calshare.cli import build_parser
from calshare.config import describe_options
from tests.conftest import ROOT

README_PATH = ROOT / "README.md"
README = README_PATH.read_text(encoding="utf-8")
REFERENCE = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINKED_PAGES = [README_PATH, *DOCS]

FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+).+?\1", re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
OUTSIDE = re.compile(r"\.\./shared")  # the workplace's folder beside the repository


def _commands(parser: argparse.ArgumentParser, prefix: str = "calshare") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.extend(_commands(sub, f"{prefix} {name}") or [f"{prefix} {name}"])
    return found


def _prose(text: str) -> str:
    """Markdown without fenced blocks and code spans: what may hold real links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    return LINK.findall(_prose(text))


def anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", text)):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(page: Path) -> list[str]:
    """Relative links of ``page`` that lead nowhere in the repository, or to a missing anchor."""
    broken = []
    for target in links(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not a file
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if (
            not resolved.is_relative_to(ROOT)
            or not resolved.exists()
            or (
                anchor
                and resolved.suffix == ".md"
                and anchor not in anchors(resolved.read_text(encoding="utf-8"))
            )
        ):
            broken.append(target)
    return broken


def test_every_command_is_in_the_reference() -> None:
    commands = _commands(build_parser())
    assert "calshare calendar import" in commands
    missing = [command for command in commands if command not in REFERENCE]
    assert missing == []


def test_every_setting_is_in_the_reference() -> None:
    for key, env, _default, _help in describe_options():
        assert f"`{key}`" in REFERENCE, key
        assert f"`{env}`" in REFERENCE, env


def test_the_reference_lists_no_setting_that_does_not_exist() -> None:
    """The settings table's rows are exactly the options config.py knows."""
    rows = re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \| `(CALSHARE_[A-Z_]+)` \|", REFERENCE, re.M)
    assert sorted(rows) == sorted((key, env) for key, env, _d, _h in describe_options())


def test_readme_quick_start_is_make_run_and_make_test() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make run" in quick_start and "make test" in quick_start


def test_readme_is_a_short_front_page() -> None:
    assert len(README.splitlines()) < 150
    for page in ("docs/user-guide.md", "docs/operator-guide.md", "docs/reference.md"):
        assert f"]({page})" in README, page
    assert "](docs/design.md)" in README


def test_readme_links_only_to_files_in_the_repository() -> None:
    targets = links(README)
    assert targets, "the README links to the guides"
    outside = [target for target in targets if re.match(r"^[a-z][a-z0-9+.-]*:", target)]
    assert outside == []
    assert broken_links(README_PATH) == []


@pytest.mark.parametrize("page", LINKED_PAGES, ids=lambda page: page.name)
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_screenshots_are_shown() -> None:
    guide = (ROOT / "docs" / "user-guide.md").read_text(encoding="utf-8")
    shown = set(links(guide))
    published = {"published-month.png", "published-week.png", "published-phone.png"}
    assert {"snapshot-daily.png", "snapshot-list.png", *published} <= shown
    assert "docs/published-month.png" in links(README_PATH.read_text(encoding="utf-8"))


def test_the_link_check_finds_what_is_broken(tmp_path: Path) -> None:
    """The checker itself: a missing file, an anchor that is not there, a path out."""
    (tmp_path / "there.md").write_text("# A heading: with `code`\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md#a-heading-with-code) [gone](missing.md) [bad](there.md#nope)\n"
        "`[not a link](nowhere.md)` [web](https://example.org/x)\n",
        encoding="utf-8",
    )
    assert links(page.read_text(encoding="utf-8")) == [
        "there.md#a-heading-with-code",
        "missing.md",
        "there.md#nope",
        "https://example.org/x",
    ]
    # tmp_path is outside the repository, so even the good link counts as leaving it
    assert broken_links(page) == [
        "there.md#a-heading-with-code",
        "missing.md",
        "there.md#nope",
    ]


def test_nothing_refers_to_files_outside_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    offenders = []
    for name in filter(None, tracked.split("\0")):
        path = ROOT / name
        if not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        if OUTSIDE.search(text):
            offenders.append(name)
    assert offenders == []
