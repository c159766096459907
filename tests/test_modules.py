"""Every module of tad uses only the public names of the others: no `from tad.x import _private`, no `x._private`."""

import ast
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
