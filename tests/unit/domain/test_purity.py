"""taskop.domain stays pure: stdlib, pydantic and msgspec (pure serialization) only, nothing of
ours outside it."""

from __future__ import annotations

import ast
import pathlib
import sys

import pytest

DOMAIN = pathlib.Path(__file__).parents[3] / "operator" / "taskop" / "domain"
ALLOWED = {"pydantic", "msgspec", "taskop"}


@pytest.mark.parametrize("path", sorted(DOMAIN.glob("*.py")), ids=lambda p: p.name)
def test_imports(path: pathlib.Path) -> None:
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or top in ALLOWED, f"{path.name}: {name}"
            if top == "taskop":
                assert name.startswith("taskop.domain"), f"{path.name}: {name}"
