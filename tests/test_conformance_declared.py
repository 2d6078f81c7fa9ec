"""``/conformance`` declares exactly the classes the suite tests, requirement by requirement.

Each declared class (:data:`tianya.conformance.DECLARED`) must be listed by one module
``tests/test_conformance_*.py`` in its ``CONFORMANCE`` mapping, with every requirement of the
class, and that module must hold a test for each requirement: a test whose name contains
``req_`` and the requirement id without its leading ``/req/`` (``/`` and ``-`` as ``_``).
A class declared without such a module, a requirement without its test, or a module testing a
class the server does not declare fails here.
"""

from __future__ import annotations

import glob
import importlib
import inspect
import os
import re

import pytest
import requests

from tianya.conformance import DECLARED

pytestmark = pytest.mark.both_stores

HERE = os.path.dirname(os.path.abspath(__file__))
_REQUIREMENT = re.compile(r"^/req/[a-z0-9-]+(/[a-zA-Z0-9-]+)+$")  # fc-timeStamp, fc-md-storageCrs


def _modules() -> dict[str, object]:
    names = sorted(
        os.path.basename(p)[:-3] for p in glob.glob(os.path.join(HERE, "test_conformance_*.py"))
    )
    return {n: importlib.import_module(n) for n in names if n != __name__.rpartition(".")[2]}


def _test_names(module) -> set[str]:
    names = {n for n, f in inspect.getmembers(module, inspect.isfunction) if n.startswith("test")}
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if cls.__name__.startswith("Test") and cls.__module__ == module.__name__:
            names |= {n for n in vars(cls) if n.startswith("test")}
    return names


def slug(requirement: str) -> str:
    """The test-name form of a requirement id.

    >>> slug("/req/core/root-op")
    'req_core_root_op'
    """
    return "req_" + requirement.removeprefix("/req/").replace("/", "_").replace("-", "_")


def _covered() -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """Conformance class -> [(module, its requirements)] over every conformance module."""
    covered: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for name, module in _modules().items():
        listed = getattr(module, "CONFORMANCE", None)
        assert isinstance(listed, dict) and listed, f"{name} has no CONFORMANCE mapping"
        for uri, requirements in listed.items():
            covered.setdefault(uri, []).append((name, tuple(requirements)))
    return covered


def test_every_declared_class_has_its_module():
    covered = _covered()
    missing = [uri for uri in DECLARED if uri not in covered]
    assert not missing, f"declared at /conformance without a conformance test module: {missing}"
    twice = {uri: [m for m, _ in v] for uri, v in covered.items() if len(v) > 1}
    assert not twice, f"a class listed by more than one module: {twice}"


def test_no_module_tests_an_undeclared_class():
    undeclared = sorted(set(_covered()) - set(DECLARED))
    assert not undeclared, f"tested but not declared in tianya.conformance.DECLARED: {undeclared}"


def test_every_requirement_has_its_test():
    problems = []
    for name, module in _modules().items():
        tests = _test_names(module)
        seen: set[str] = set()
        for uri, requirements in module.CONFORMANCE.items():
            assert requirements, f"{name}: {uri} lists no requirement"
            for req in requirements:
                if not _REQUIREMENT.match(req):
                    problems.append(f"{name}: {req!r} is not a requirement id (/req/...)")
                if req in seen:
                    problems.append(f"{name}: {req} listed twice")
                seen.add(req)
                pattern = re.compile(rf"(^|_){re.escape(slug(req))}($|_)")
                if not any(pattern.search(t) for t in tests):
                    problems.append(f"{name}: no test for {req} (a test named test_{slug(req)})")
    assert not problems, "\n".join(problems)


def test_conformance_declares_exactly_the_tested_classes(live_server):
    """/req/core/conformance-success: the list the server answers is :data:`DECLARED`."""
    doc = requests.get(f"{live_server.url}/conformance", params={"f": "json"}, timeout=30).json()
    assert sorted(doc["conformsTo"]) == sorted(DECLARED)
    assert len(set(DECLARED)) == len(DECLARED)
    html = requests.get(f"{live_server.url}/conformance", params={"f": "html"}, timeout=30)
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    assert all(uri in html.text for uri in DECLARED)
