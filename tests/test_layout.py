"""The house stays easy to see (DESIGN "Grow the house by adding rooms"): no module of Handai's
own grows past 400 lines, the usual sign that it holds two jobs. Test files are exempt (a file of
tests is a list, not a room); the fakes and helpers beside them are not."""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 400
SKIPPED_DIRS = {"benchmarks", "node_modules", "test-artifacts", "__pycache__"}


def modules() -> dict[Path, int]:
    """Every .py of Handai's own (not tests/test_*.py) and its line count."""
    found = {}
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.startswith(".")]
        for name in files:
            path = Path(folder, name)
            relative = path.relative_to(ROOT)
            if name.endswith(".py") and not (relative.parts[0] == "tests" and name.startswith("test_")):
                found[relative] = len(path.read_text(encoding="utf-8").splitlines())
    return found


def test_no_module_is_over_400_lines():
    long = {str(p): n for p, n in modules().items() if n > LIMIT}
    assert long == {}, f"split these into modules with one job each (DESIGN.md): {long}"


def imported_roots(path: Path) -> set[str]:
    """The top-level names a module imports, wherever in it the import is."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add("." if node.level else (node.module or "").split(".")[0])
    return roots


def test_the_error_tree_is_a_leaf():
    """handai_errors imports nothing of Handai's (providers import it, not the reverse)."""
    foreign = imported_roots(ROOT / "handai_errors.py") - set(sys.stdlib_module_names) - {"openai", "__future__"}
    assert foreign == set(), f"handai_errors.py must import only the standard library and openai: {foreign}"
