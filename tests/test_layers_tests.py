"""Test modules stand alone: none imports another, shared code lives in tests/support.

A test module that imports another couples their fates: renaming a test file, or a test
helper defined next to the tests that first needed it, breaks modules that only borrowed
it, and running one file collects another's fixtures. Harnesses, sample data and clients
go in the ``tests.support`` package (or ``tests/conftest.py``) instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

TESTS = ROOT / "tests"


def _is_test_module(name: str) -> bool:
    """``tests.test_x`` (or ``tests.test_x.y``): a module pytest collects tests from."""
    parts = name.split(".")
    return len(parts) >= 2 and parts[0] == "tests" and parts[1].startswith("test_")


def imported_test_modules(source: str) -> list[str]:
    """The test modules that ``source`` imports, by any form of import statement."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if _is_test_module(node.module):
                found.append(node.module)
            elif node.module == "tests":  # from tests import test_x
                found += [
                    f"tests.{alias.name}" for alias in node.names if alias.name.startswith("test_")
                ]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:  # from . import test_x
            module = node.module or ""
            names = [module] if module else [alias.name for alias in node.names]
            found += [f"tests.{name}" for name in names if name.startswith("test_")]
    return found


def python_files() -> list[Path]:
    """Every Python file under tests/ and bench/ (the corpus and node_modules hold none)."""
    return sorted(
        path
        for folder in (TESTS, ROOT / "bench")
        for path in folder.rglob("*.py")
        if "node_modules" not in path.parts
    )


def test_no_test_module_imports_another() -> None:
    offenders = {
        str(path.relative_to(ROOT)): imported
        for path in python_files()
        if (imported := imported_test_modules(path.read_text(encoding="utf-8")))
    }
    assert not offenders, (
        f"test modules import test modules; move what they share to tests/support: {offenders}"
    )


def test_the_check_sees_every_form_of_import() -> None:
    """The check itself: each way of importing a test module is caught, support is not."""
    caught = [
        "from tests.test_web import http",
        "import tests.test_web",
        "import tests.test_web as web",
        "from tests import test_web",
        "from . import test_web",
        "from .test_web import http",
        "def f():\n    from tests.test_web import http\n",
    ]
    for line in caught:
        assert imported_test_modules(line) == ["tests.test_web"], line
    allowed = [
        "from tests.support.web import http",
        "from tests.conftest import ROOT",
        "from tests import support",
        "import tests.support.inbox",
        "from calshare import store",
    ]
    for line in allowed:
        assert imported_test_modules(line) == [], line


def test_the_check_reads_the_test_files() -> None:
    """Not vacuous: it reads this very file and the harnesses in tests/support."""
    files = {path.relative_to(ROOT).as_posix() for path in python_files()}
    assert "tests/test_layers_tests.py" in files
    assert "tests/support/inbox.py" in files
    assert len([name for name in files if name.startswith("tests/test_")]) > 30
