"""The documents stay true: every test the fault matrix names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_test_named_in_the_fault_matrix_exists():
    text = (REPO / "docs" / "RELIABILITY.md").read_text()
    named: list[tuple[str, str]] = []
    for cell in re.findall(r"`([^`]*::[^`]*)`", text):
        module, _, test = cell.partition("::")
        named.append((module.replace("tests/", ""), test))
    # "`::test_x`" right after a full reference refers to the same file
    for cell in re.findall(r"`(test_\w+\.py)::\w+`((?:, `::\w+`)+)", text):
        named += [(cell[0], extra) for extra in re.findall(r"`::(\w+)`", cell[1])]
    assert len(named) > 40
    missing = []
    for module, test in named:
        if not module.startswith("test_"):  # the "`::test_x`" shorthand, or the legend's FILE::TEST
            continue
        tree = ast.parse((REPO / "tests" / module).read_text())
        defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        if test not in defined:
            missing.append(f"{module}::{test}")
    assert missing == []
