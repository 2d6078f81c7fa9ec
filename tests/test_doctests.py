"""Every module's doctests run in the suite (issue 12).

The modules of ``layers``, ``analytics``, ``geodata`` and ``tianya`` are found by walking
the packages with :mod:`pkgutil`, so a new module is included without editing this file;
one test per module (its id is the module name), failing on any doctest failure. A module
without examples passes; importing it is still checked (a module with heavy optional
imports must import cleanly).
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("layers", "analytics", "geodata", "tianya")


def _unimportable(name: str) -> None:
    # walk_packages skips a subpackage it cannot import unless told: that would drop its
    # modules from the list silently
    raise ImportError(f"cannot import the package {name} to walk it")


def _modules() -> list[str]:
    names = []
    for pkg_name in PACKAGES:
        pkg = importlib.import_module(pkg_name)
        names.append(pkg_name)
        for info in pkgutil.walk_packages(
            pkg.__path__, prefix=pkg_name + ".", onerror=_unimportable
        ):
            names.append(info.name)
    return sorted(names)


MODULES = _modules()


def test_every_package_is_walked():
    for pkg in PACKAGES:
        assert any(m.startswith(pkg + ".") for m in MODULES), pkg
    assert "layers.errors" in MODULES and "tianya.plugins.provider" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    failures = []
    for test in finder.find(module, name):
        if not test.examples:
            continue
        out: list[str] = []
        result = runner.run(test, out=out.append, clear_globs=True)
        if result.failed:
            failures.append("".join(out))
    assert not failures, f"doctests of {name} failed:\n" + "\n".join(failures)
