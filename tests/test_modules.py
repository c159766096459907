"""Every module of tad uses only the public names of the others: no `from tad.x import _private`, no `x._private`."""

import ast
import re
from pathlib import Path

import tad

PACKAGE = Path(tad.__file__).parent


def private_uses(source: str) -> list[str]:
    """``module._name`` and ``from tad.module import _name`` in ``source`` (dunder names allowed)."""
    tree = ast.parse(source)
    modules, found = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.asname or a.name.split(".")[0] for a in node.names if a.name.startswith("tad")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tad"):
            for a in node.names:
                if node.module == "tad":
                    modules.add(a.asname or a.name)
                if a.name.startswith("_") and not a.name.startswith("__"):
                    found.append(f"from {node.module} import {a.name}")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and isinstance(node.value, (ast.Name, ast.Attribute))):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if base.id in modules:
                found.append(f"{ast.unparse(node)}")
    return found


def test_the_checker_finds_both_forms():
    assert private_uses("from tad.evaluate import _check, auroc\nimport tad.page\ntad.page._x()") == [
        "from tad.evaluate import _check", "tad.page._x"]


def test_no_module_uses_another_modules_private_names():
    found = {p.name: private_uses(p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))}
    assert {name: uses for name, uses in found.items() if uses} == {}


def public_definitions(source: str) -> list[str]:
    """Names a module defines at its top level (functions, classes, assignments) that do not start with ``_``."""
    names = []
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [n for n in names if not n.startswith("_")]


def test_every_module_declares_all_its_public_names_and_nothing_it_lacks():
    import importlib

    for path in sorted(PACKAGE.rglob("*.py")):
        if path.stem in ("__init__", "__main__"):
            continue
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        module = importlib.import_module(name)
        declared = getattr(module, "__all__", None)
        assert declared is not None, f"{name} has no __all__"
        assert [n for n in declared if not hasattr(module, n)] == [], f"{name}.__all__ names what it lacks"
        unlisted = sorted(set(public_definitions(path.read_text())) - set(declared) - {"__all__"})
        assert unlisted == [], f"{name} defines public names missing from __all__: {unlisted}"


def test_the_library_never_imports_the_book_kit():
    """tad.book serves the notebooks; the pipeline and the CLI work without it."""
    offenders = [p.name for p in sorted(PACKAGE.glob("*.py"))
                 if re.search(r"^\s*(from|import) tad\.book", p.read_text(), re.M)]
    assert offenders == []
