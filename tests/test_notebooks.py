"""The book's notebook sources call the library: no page defines its own functions."""

import ast
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.py"))


@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_page_defines_no_function_or_class(source):
    # jupytext percent format: markdown cells are comments, so the file parses as Python; '%' magics would not
    tree = ast.parse(source.read_text())
    defined = [f"{type(n).__name__} {n.name} (line {n.lineno})" for n in ast.walk(tree)
               if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    assert not defined, f"{source.name} defines {defined}: move them into tad (tad.book.words for wording)"


def test_there_are_pages_to_check():
    assert len(NOTEBOOKS) >= 17
