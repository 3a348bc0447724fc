"""Statuses are spelled in one place (ledger/models.py's RunStatus and RowStatus, and the
migrations that wrote them): code compares against the enum, so a renamed or mistyped status
cannot silently never match."""

from __future__ import annotations

import ast
import os
from pathlib import Path

from handai_db import RowStatus, RunStatus

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {Path("ledger/models.py"), Path("ledger/migrations.py")}
STATUSES = {s.value for s in (*RunStatus, *RowStatus)}
SKIPPED_DIRS = {".venv", "tests", "node_modules", ".git", "test-artifacts"}


def sources() -> list[Path]:
    """Every .py of Handai's own outside tests (virtualenvs and artefacts are not walked into)."""
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.startswith(".")]
        found += [Path(folder, f) for f in files if f.endswith(".py")]
    return [p for p in found if p.relative_to(ROOT) not in ALLOWED]


def spelled(node: ast.expr) -> list[str]:
    """The status values a comparison operand spells as string literals."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value] if node.value in STATUSES else []
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [v for element in node.elts for v in spelled(element)]
    return []


def status_literals(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                found += [(node.lineno, value) for value in spelled(operand)]
    return found


def test_no_status_is_compared_as_a_string_literal():
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {value!r}"
        for path in sources()
        for line, value in status_literals(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert offenders == [], "compare against RunStatus/RowStatus instead:\n" + "\n".join(offenders)


def test_the_check_finds_a_spelled_status():
    assert status_literals(ast.parse('if result.status == "succeeded":\n    pass')) == [(1, "succeeded")]
    assert status_literals(ast.parse('ok = run.status in ("queued", RunStatus.RUNNING)')) == [(1, "queued")]
    assert status_literals(ast.parse("ok = run.status == RowStatus.SUCCEEDED")) == []
