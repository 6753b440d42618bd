"""The shape of the code: layers (import-linter), simval's own imports at module top.

The layers contract lives in pyproject.toml (``[tool.importlinter]``); ``lint-imports``
fails on an upward import, and so on any new cycle between layers. Heavy third-party
packages are imported where they are used (ruff TID253 enforces the list in
pyproject.toml); simval's own modules are imported at the top of a module, so that a cycle
cannot hide inside a function.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "simval"
#: Modules that run in another environment's interpreter and must import simval late.
LATE_IMPORTS_ALLOWED = {"simval/envs/worker.py"}


def _lint_imports() -> Path:
    exe = Path(sys.executable).with_name("lint-imports")
    assert exe.is_file(), f"{exe}: import-linter is not installed (pip install -e '.[test]')"
    return exe


def test_layers_contract_holds():
    proc = subprocess.run([str(_lint_imports()), "--no-cache"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 kept, 0 broken" in proc.stdout


def _function_level_own_imports(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            if any(n == "simval" or n.startswith("simval.") for n in names):
                found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_simval_modules_are_imported_at_module_top():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(ROOT).as_posix() not in LATE_IMPORTS_ALLOWED:
            found += _function_level_own_imports(path)
    assert not found, "import these at the top of the module:\n" + "\n".join(found)


def test_the_checker_sees_a_function_level_import(tmp_path):
    """The AST check above is not vacuous: it reports a late import of simval."""
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from simval.plan import make_plan\n    return make_plan\n")
    assert _function_level_own_imports(sample, tmp_path) == [
        "sample.py:2: from simval.plan import make_plan"]
