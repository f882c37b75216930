"""gateway/settlement imports nothing from the project outside itself and nothing outside the
standard library (STYLE.md)."""

import ast
import sys
from pathlib import Path

import gateway.settlement

PACKAGE = Path(gateway.settlement.__file__).parent


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: stays inside the package only if it does not climb out
                names.append("gateway.settlement" if node.level == 1 else "gateway")
            else:
                names.append(node.module or "")
    return names


def test_settlement_imports_only_itself_and_the_standard_library():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert modules
    bad = []
    for path in modules:
        for name in _imports(path):
            top = name.split(".")[0]
            inside = name == "gateway.settlement" or name.startswith("gateway.settlement.")
            if not inside and (top == "gateway" or top not in sys.stdlib_module_names):
                bad.append(f"{path.name}: {name}")
    assert bad == []
