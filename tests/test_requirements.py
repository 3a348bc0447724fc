"""Every package the code imports directly is pinned with == where it is installed from: the app's
code in requirements.txt, the tests' in requirements.txt or requirements-dev.txt. A package that only
arrives as another's dependency (numpy through pandas, altair through streamlit) can change version,
or vanish, under us when that other package moves."""

from __future__ import annotations

import ast
import os
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from tests.helpers import ROOT

SKIPPED_FOLDERS = {".venv", "test-artifacts", "__pycache__", ".git"}
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*(==)?")


def canonical(name: str) -> str:
    """A distribution's name as PEP 503 compares them (PyYAML, pyyaml and py_yaml are one)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, bool]:
    """The distributions a requirements file names (following -r), each with whether it is pinned with ==."""
    named: dict[str, bool] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r"):
            named |= pins(path.parent / line[2:].strip())
        elif match := REQUIREMENT.match(line):
            named[canonical(match.group(1))] = match.group(2) == "=="
    return named


def local_names() -> set[str]:
    """Handai's own top-level modules and packages (the repository's root is on sys.path)."""
    return {p.stem for p in ROOT.glob("*.py")} | {p.name for p in ROOT.iterdir() if p.is_dir()}


def sources(tests: bool) -> list[Path]:
    """The repository's .py files: those under tests/, or (tests=False) all the others."""
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if name not in SKIPPED_FOLDERS]
        for name in files:
            path = Path(folder) / name
            if name.endswith(".py") and (path.relative_to(ROOT).parts[0] == "tests") == tests:
                found.append(path)
    return found


def imported(path: Path) -> set[str]:
    """The top-level names of every absolute import in a file, at module level or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def third_party(paths: list[Path], folder: Path = ROOT) -> dict[str, set[str]]:
    """Import name -> the files (relative to `folder`) importing it, for every name that is neither
    stdlib nor Handai's own."""
    own = local_names()
    found: dict[str, set[str]] = {}
    for path in paths:
        for name in imported(path) - own - set(sys.stdlib_module_names):
            found.setdefault(name, set()).add(str(path.relative_to(folder)))
    return found


def unpinned(found: dict[str, set[str]], requirements: dict[str, bool]) -> list[str]:
    """One line per imported package that no requirements file pins with ==, naming who imports it."""
    distributions = packages_distributions()
    problems = []
    for name, users in sorted(found.items()):
        candidates = [canonical(d) for d in distributions.get(name, [])]
        who = ", ".join(sorted(users)[:3])
        if not candidates:
            problems.append(f"{name}: not installed here, so its distribution is unknown (imported by {who})")
        elif not any(requirements.get(c) for c in candidates):
            where = "named without ==" if any(c in requirements for c in candidates) else "not pinned"
            problems.append(f"{name} ({' or '.join(candidates)}): {where} (imported by {who})")
    return problems


def test_the_apps_imports_are_pinned_in_requirements_txt():
    assert unpinned(third_party(sources(tests=False)), pins(ROOT / "requirements.txt")) == []


def test_the_tests_imports_are_pinned_in_requirements_txt_or_requirements_dev_txt():
    assert unpinned(third_party(sources(tests=True)), pins(ROOT / "requirements-dev.txt")) == []


def test_the_check_maps_import_names_to_distributions_and_names_the_unpinned(tmp_path):
    """docx is python-docx, python_calamine is python-calamine: a pin under the distribution's name
    counts; a package named without ==, or imported only inside a function, is still caught."""
    code = tmp_path / "code.py"
    code.write_text("import docx\nfrom python_calamine import CalamineWorkbook\n\ndef f():\n    import numpy.linalg\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("python-docx==1.2.0  # documents\npython_calamine>=0.9\n")
    assert unpinned(third_party([code], tmp_path), pins(requirements)) == [
        "numpy (numpy): not pinned (imported by code.py)",
        "python_calamine (python-calamine): named without == (imported by code.py)",
    ]


@pytest.mark.parametrize(
    ("line", "name", "exact"),
    [
        ("openai[aiohttp]==3.57.0", "openai", True),
        ("psycopg[binary]==3.3.9  # libpq", "psycopg", True),
        ("PyYAML>=6", "pyyaml", False),
        ("Python_Calamine==0.9.1", "python-calamine", True),
    ],
)
def test_a_requirement_line_is_read_with_its_extras_and_comment(tmp_path, line, name, exact):
    path = tmp_path / "requirements.txt"
    path.write_text(f"# a comment\n\n{line}\n")
    assert pins(path) == {name: exact}
