"""The shape of the product code: no function longer than MAX_FUNCTION_LINES lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT_FOLDERS = ("contracts", "edge", "ingest", "analytics", "dashboards", "footfall")
MAX_FUNCTION_LINES = 60


def long_functions(folder: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``path:line name (n lines)`` of every function or method in ``folder`` longer than ``limit``."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > limit:
                    found.append(f"{path.relative_to(folder.parent)}:{node.lineno} {node.name} ({n} lines)")
    return found


@pytest.mark.parametrize("folder", PRODUCT_FOLDERS)
def test_no_function_is_longer_than_the_limit(folder: str) -> None:
    assert long_functions(ROOT / folder) == []


def test_the_length_check_sees_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "m.py").write_text(f"def short():\n    return 1\n\n\ndef long():\n{body}\n")
    assert [s.split(" ", 1)[1] for s in long_functions(tmp_path)] == [
        f"long ({MAX_FUNCTION_LINES + 1} lines)"
    ]
