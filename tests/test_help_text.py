"""The module docstrings that the command-line scripts print as their --help keep their lines."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for folder in ("tools", "experiments", "benchmarks")
                 for p in (ROOT / folder).glob("*.py") if p.name != "__init__.py")


def test_the_scripts_are_found():
    assert {p.stem for p in SCRIPTS} >= {"eval", "train_rbsf", "compare_trackers", "peers"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_docstring_line_ends_in_a_lone_backslash(script):
    """In a non-raw string a backslash at a line's end joins it to the next line, so a shell
    continuation in an example would reach --help as one long line; it must be written \\\\."""
    text = script.read_text()
    tree = ast.parse(text)
    if not (tree.body and isinstance(tree.body[0], ast.Expr)
            and isinstance(tree.body[0].value, ast.Constant)):
        return
    node = tree.body[0]
    lines = text.splitlines()[node.lineno - 1:node.end_lineno]
    joined = [k + node.lineno for k, line in enumerate(lines)
              if re.search(r"(?<!\\)(\\\\)*\\$", line)]
    assert not joined, f"lines {joined} of {script.name} end in a lone backslash"
