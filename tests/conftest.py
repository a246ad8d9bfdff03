"""Shared fixtures: a real SQLite file per test, a fixed clock, and the CLI run in-process."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from calshare.cli import main
from calshare.clock import FixedClock
from calshare.config import Settings, load_settings
from calshare.store import Store

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus"  # a copy of the shared test corpus
FIXTURES = Path(__file__).resolve().parent / "fixtures"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "calshare.db"


@pytest.fixture
def settings() -> Settings:
    return load_settings(None, env={})


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    opened = Store.open(db_path)
    yield opened
    opened.close()


@pytest.fixture
def cli(db_path: Path, clock: FixedClock, tmp_path: Path) -> Callable[..., CliResult]:
    """Run ``calshare ARGS`` in this process against the test's database and clock."""

    def run(*args: str, env: dict[str, str] | None = None) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        environment = {"CALSHARE_DB": str(db_path), **(env or {})}
        code = main(list(args), clock=clock, env=environment, stdout=out, stderr=err)
        return CliResult(code, out.getvalue(), err.getvalue())

    return run
