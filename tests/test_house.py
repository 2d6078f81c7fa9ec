"""The shape of the house: import contracts, no cycles, one reader of the environment, format.

DESIGN.md's layering claims are checked here, from the code itself:
the import contracts in ``.importlinter`` (import-linter), no import cycle between
modules, the settings object as the only reader of the environment, the library free
of request state, and ``ruff check`` / ``ruff format --check`` clean. Each check
prints what breaks it.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("layers", "geodata", "analytics", "tianya")
LIBRARY = ("layers", "geodata", "analytics")
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    assert found, f"{name} is not installed (pip install -e '.[test]')"
    return found


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


def _modules(packages=PACKAGES):
    for pkg in packages:
        yield from sorted((ROOT / pkg).rglob("*.py"))


def test_import_contracts_hold():
    r = _run(_tool("lint-imports"), "--no-cache")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    import grimp

    graph = grimp.build_graph(*PACKAGES)
    deps = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    # a package's __init__ importing its own modules is not a cycle of the design
    deps = {m: {d for d in ds if not m.startswith(d + ".")} for m, ds in deps.items()}
    assert _cycles(deps) == []


def _reads_environment(tree: ast.AST) -> list[int]:
    """Lines that read ``os.environ`` / ``os.getenv`` (writes for pygeoapi are in compat)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            f = node.func
            if f.attr == "getenv" and isinstance(f.value, ast.Name) and f.value.id == "os":
                lines.append(node.lineno)
            if (
                f.attr in ("get", "items", "keys", "copy")
                and isinstance(f.value, ast.Attribute)
                and f.value.attr == "environ"
            ):
                lines.append(node.lineno)
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Load)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "environ"
        ):
            lines.append(node.lineno)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("dict", "list")
            and node.args
            and isinstance(node.args[0], ast.Attribute)
            and node.args[0].attr == "environ"
        ):
            lines.append(node.lineno)
    return lines


def test_environment_reader_finds_reads():
    tree = ast.parse(
        "import os\na = os.environ.get('X')\nb = os.environ['Y']\n"
        "c = os.getenv('Z')\nos.environ['W'] = '1'\n"
    )
    assert _reads_environment(tree) == [2, 3, 4]


def test_only_the_settings_object_reads_the_environment():
    allowed = {ROOT / "tianya" / "settings.py"}
    found = []
    for path in _modules():
        if path in allowed:
            continue
        for line in _reads_environment(ast.parse(path.read_text(encoding="utf-8"))):
            found.append(f"{path.relative_to(ROOT)}:{line}")
    assert found == [], "read the environment outside tianya/settings.py: " + ", ".join(found)


def test_the_library_holds_no_request_state():
    found = []
    for path in _modules(LIBRARY):
        text = path.read_text(encoding="utf-8")
        if "ContextVar" in text or "contextvars" in text:
            found.append(str(path.relative_to(ROOT)))
    assert found == [], f"context variables (request state) in the library: {found}"


def test_ruff_check_is_clean():
    r = _run(_tool("ruff"), "check", ".")
    assert r.returncode == 0, r.stdout[-4000:]


def test_ruff_format_is_applied():
    r = _run(_tool("ruff"), "format", "--check", ".")
    assert r.returncode == 0, "not formatted (run `ruff format .`):\n" + r.stdout[-4000:]


@pytest.mark.parametrize("contract", ["layering", "no-web-in-library"])
def test_a_violation_breaks_the_contracts(tmp_path, contract):
    """Copy the packages, add one forbidden import, and see import-linter refuse it."""
    for pkg in PACKAGES:
        shutil.copytree(
            ROOT / pkg,
            tmp_path / pkg,
            ignore=shutil.ignore_patterns("__pycache__", "*.gpkg*", "static"),
        )
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    bad = {
        "layering": "from tianya import settings  # noqa: F401\n",
        "no-web-in-library": "import flask  # noqa: F401\n",
    }[contract]
    with open(tmp_path / "layers" / "errors.py", "a", encoding="utf-8") as fh:
        fh.write(bad)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    r = subprocess.run(
        [_tool("lint-imports"), "--no-cache", "--contract", contract],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode != 0 and "BROKEN" in r.stdout, r.stdout[-2000:]
    assert "layers.errors" in r.stdout
