"""Layers: no module imports from a layer above its own, and nothing imports in a circle.

The mail edges are handed what to do, as aiosmtpd is handed its handler: the
outbox sender gets ``on_failed`` (``calshare.sharing.delivery_failed``) and the
inbox committer gets ``record`` (``calshare.answers.record``), both from
``calshare.daemon`` or ``calshare.cli``. These tests keep it so. They read every
module of calshare, mailer and inbox with ``ast`` (imports at module level, in
functions, under ``if TYPE_CHECKING``, ``from x import y``, relative ones) and
place each module with ``LAYERS`` below.

The Python package ``calshare`` holds both the core that the edges use (errors,
levels, the store…) and the services that use the edges (sharing, answers…), so
the table names those parts as units of their own; "no package cycles" is
checked between the units of the table, and between single modules.
"""

from __future__ import annotations

import ast
import fnmatch
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("calshare", "mailer", "inbox")

# The layer table, bottom first: layer -> {unit: module patterns}. A module may
# import its own unit and any unit of a lower layer; never a higher layer, nor
# another unit of its own layer (mailer and inbox stand side by side). Patterns
# are module names or ``package.*``; every module matches exactly one.
LAYERS: tuple[tuple[str, dict[str, tuple[str, ...]]], ...] = (
    (
        "foundation",  # no calshare imports but each other
        {
            "calshare.foundation": (
                "calshare",  # __version__, the package's folder
                "calshare.errors",
                "calshare.clock",
                "calshare.tokens",
                "calshare.links",
                "calshare.redaction",
                "calshare.busy",
                "calshare.bulk",
            )
        },
    ),
    (
        "domain",  # the vocabulary and pure functions; settings are a value once read
        {
            "calshare.domain": (
                "calshare.addresses",
                "calshare.occurrence",
                "calshare.levels",
                "calshare.ranges",
                "calshare.vtimezone",
                "calshare.wording",
                "calshare.schedule",
                "calshare.ics_reader",
                "calshare.ics_writer",
                "calshare.expansion",
                "calshare.policy",
                "calshare.config",
                "calshare.subscribe",
                "calshare.netguard",
            )
        },
    ),
    (
        "store",  # the database, and reading calendars into it (files, URLs, WebDAV)
        {
            "calshare.store": (
                "calshare.store",
                "calshare.lifecycle",
                "calshare.calendars",
                "calshare.index",
                "calshare.views",
                "calshare.series",
                "calshare.importer",
                "calshare.reindex",
                "calshare.sources",
                "calshare.caldav_source",
                "calshare.subscriptions",
                "calshare.webdav",
                "calshare.sessions",
                "calshare.owners",
            )
        },
    ),
    (
        "edges",  # mail out, mail in: told what to do, never import the services
        {
            "mailer": ("mailer", "mailer.*"),
            "inbox": ("inbox", "inbox.*"),
        },
    ),
    (
        "services",  # what shares, answers, snapshots and publishing do, with the edges
        {
            "calshare.services": (
                "calshare.sharing",
                "calshare.answers",
                "calshare.owner_notices",
                "calshare.snapshots",
                "calshare.feeds",
                "calshare.pages",
                "calshare.publishing",
                "calshare.refresh",
                "calshare.demo",
                "calshare.signin",
            )
        },
    ),
    (
        "wiring",  # builds the pieces and hands each edge its behaviour
        {
            "calshare.wiring": (
                "calshare.cli",
                "calshare.daemon",
                "calshare.web",
                "calshare.webcontext",
                "calshare.console",
                "calshare.console.*",
                "calshare.__main__",
            )
        },
    ),
)


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    path: str  # its file, relative to the root
    line: int
    target: str  # the module imported (the package, for a name from its __init__)


@dataclass(frozen=True)
class Place:
    rank: int
    layer: str
    unit: str


def modules(root: Path) -> dict[str, Path]:
    """Every module of our packages, by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The module ``name`` is, or the package it comes from; None if not ours."""
    if name.split(".")[0] not in PACKAGES:
        return None
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


@cache
def imports(root: Path) -> tuple[Import, ...]:
    """Every import of one of our modules by another, wherever in the file it is."""
    return tuple(dict.fromkeys(_imports(root)))  # once per line, however many names


def _imports(root: Path) -> Iterator[Import]:
    known = modules(root)
    for module, path in known.items():
        is_package = path.name == "__init__.py"
        shown = str(path.relative_to(root))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=shown)):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    package = module.split(".") if is_package else module.split(".")[:-1]
                    base_parts = package[: len(package) - (node.level - 1)]
                    base = ".".join([*base_parts, *([node.module] if node.module else [])])
                else:
                    base = node.module or ""
                names = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                    for alias in node.names
                ]
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute | ast.Name)
                and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
                in ("import_module", "__import__")
            ):
                argument = node.args[0] if node.args else None
                if not (isinstance(argument, ast.Constant) and isinstance(argument.value, str)):
                    raise AssertionError(f"{shown}:{node.lineno}: an import this test cannot read")
                names = [argument.value]
            for name in names:
                target = _resolve(name, known)
                if target is not None and target != module:
                    yield Import(module, shown, node.lineno, target)


def place(module: str) -> Place:
    """Where the table puts ``module``; a module in no entry, or in two, is an error."""
    found = [
        Place(rank, layer, unit)
        for rank, (layer, units) in enumerate(LAYERS)
        for unit, patterns in units.items()
        if any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns)
    ]
    if len(found) != 1:
        where = ", ".join(f"{p.layer}/{p.unit}" for p in found) or "nowhere"
        raise AssertionError(f"{module} is placed {where} in LAYERS: put it in exactly one unit")
    return found[0]


def violations(root: Path) -> list[str]:
    """Each import that goes up a layer, or across to a sibling unit, with its rule."""
    found = []
    for edge in imports(root):
        source, target = place(edge.module), place(edge.target)
        if target.rank > source.rank:
            rule = f"{source.layer} must not import {target.layer}, a higher layer"
        elif target.rank == source.rank and target.unit != source.unit:
            rule = f"{source.unit} and {target.unit} are side by side in {source.layer}"
        else:
            continue
        found.append(
            f"{edge.path}:{edge.line}: {edge.module} ({source.layer}/{source.unit}) "
            f"imports {edge.target} ({target.layer}/{target.unit}): {rule}"
        )
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def module_graph(root: Path) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in modules(root)}
    for edge in imports(root):
        graph[edge.module].add(edge.target)
    return graph


def unit_graph(root: Path) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, targets in module_graph(root).items():
        unit = place(module).unit
        graph.setdefault(unit, set()).update(
            place(target).unit for target in targets if place(target).unit != unit
        )
    return graph


# --- the repository


def test_every_module_has_exactly_one_place_in_the_table() -> None:
    found = modules(ROOT)
    assert "mailer.sender" in found and "calshare.answers" in found
    unplaced = []
    for module in found:
        try:
            place(module)
        except AssertionError as exc:
            unplaced.append(str(exc))
    assert unplaced == []
    patterns = [p for _, units in LAYERS for group in units.values() for p in group]
    stale = [p for p in patterns if not any(fnmatch.fnmatchcase(m, p) for m in found)]
    assert stale == [], "LAYERS names modules that do not exist"


def test_no_import_goes_up_a_layer() -> None:
    assert any(edge.module == "mailer.sender" for edge in imports(ROOT))
    found = violations(ROOT)
    assert found == [], "imports against the layer table:\n" + "\n".join(found)


def _circle(graph: dict[str, set[str]], members: list[str]) -> list[str]:
    """One way round a circle among ``members``: the first, what it imports, …, the first."""
    start = members[0]
    paths = {start: [start]}
    todo = [start]
    while todo:
        node = todo.pop(0)
        for successor in sorted(graph[node] & set(members)):
            if successor == start:
                return [*paths[node], start]
            if successor not in paths:
                paths[successor] = [*paths[node], successor]
                todo.append(successor)
    raise AssertionError(f"no circle through {start}")


def _explain(graph: dict[str, set[str]], members: list[str], group: dict[str, str]) -> str:
    """The circle, each step shown by one import that makes it (file:line)."""
    circle = _circle(graph, members)
    steps = []
    for here, there in itertools.pairwise(circle):
        edge = next(e for e in imports(ROOT) if (group[e.module], group[e.target]) == (here, there))
        steps.append(f"  {here} -> {there}: {edge.path}:{edge.line} imports {edge.target}")
    return " -> ".join(circle) + "\n" + "\n".join(steps)


def test_no_package_imports_in_a_circle() -> None:
    units = unit_graph(ROOT)
    assert {"mailer", "inbox", "calshare.services"} <= set(units)
    unit_of = {module: place(module).unit for module in modules(ROOT)}
    found = [_explain(units, members, unit_of) for members in cycles(units)]
    assert found == [], "packages that import each other:\n" + "\n".join(found)


def test_no_module_imports_in_a_circle() -> None:
    graph = module_graph(ROOT)
    itself = {module: module for module in graph}
    found = [_explain(graph, members, itself) for members in cycles(graph)]
    assert found == [], "modules that import each other:\n" + "\n".join(found)


# --- the checker itself, on a small tree of its own


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for package in PACKAGES:
        (root / package).mkdir(exist_ok=True)
        (root / package / "__init__.py").touch()
    return root


def test_the_checker_finds_upward_imports_wherever_they_are(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "calshare/errors.py": "",
            "calshare/levels.py": "from . import errors\nfrom .sharing import share\n",
            "calshare/sharing.py": "from mailer import outbox\n",
            "calshare/answers.py": "",
            "calshare/daemon.py": "from calshare import answers, sharing\n",
            "mailer/outbox.py": "from calshare.levels import Level\n",
            "mailer/sender.py": (
                "import mailer.outbox\n"
                "def flush():\n"
                "    from calshare.sharing import mark_undeliverable\n"
            ),
            "inbox/server.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from calshare import answers\n"
                "from . import readers\n"
                "import mailer.outbox\n"
            ),
            "inbox/readers.py": "import importlib\nimportlib.import_module('calshare.daemon')\n",
        },
    )
    assert sorted(violations(root)) == [
        "calshare/levels.py:2: calshare.levels (domain/calshare.domain) imports "
        "calshare.sharing (services/calshare.services): "
        "domain must not import services, a higher layer",
        "inbox/readers.py:2: inbox.readers (edges/inbox) imports calshare.daemon "
        "(wiring/calshare.wiring): edges must not import wiring, a higher layer",
        "inbox/server.py:3: inbox.server (edges/inbox) imports calshare.answers "
        "(services/calshare.services): edges must not import services, a higher layer",
        "inbox/server.py:5: inbox.server (edges/inbox) imports mailer.outbox "
        "(edges/mailer): inbox and mailer are side by side in edges",
        "mailer/sender.py:3: mailer.sender (edges/mailer) imports calshare.sharing "
        "(services/calshare.services): edges must not import services, a higher layer",
    ]


def test_the_checker_finds_circles(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "calshare/levels.py": "from calshare import occurrence\n",
            "calshare/occurrence.py": "from calshare.levels import Level\n",
            "calshare/sharing.py": "from mailer import outbox\n",
            "mailer/outbox.py": "def f():\n    from calshare import sharing\n",
        },
    )
    assert cycles(module_graph(root)) == [
        ["calshare.levels", "calshare.occurrence"],
        ["calshare.sharing", "mailer.outbox"],
    ]
    assert cycles(unit_graph(root)) == [["calshare.services", "mailer"]]
