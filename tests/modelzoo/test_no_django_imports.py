"""modelzoo must stay importable without the web platform: no module in it imports Django or the apps."""

import ast
from pathlib import Path

FORBIDDEN = {"django", "celery", "ideas", "experiments", "compute"}
MODELZOO = Path(__file__).resolve().parents[2] / "modelzoo"


def _imported_roots(tree: ast.AST) -> list[tuple[int, str]]:
    roots = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
            "import_module", "__import__"
        ) and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            roots.append((node.lineno, node.args[0].value.split(".")[0]))
    return roots


def test_modelzoo_never_imports_the_platform():
    files = sorted(MODELZOO.rglob("*.py"))
    assert len(files) > 10
    offending = [
        f"{path.relative_to(MODELZOO.parent)}:{line} imports {root}"
        for path in files
        for line, root in _imported_roots(ast.parse(path.read_text(), filename=str(path)))
        if root in FORBIDDEN
    ]
    assert offending == []


def test_the_checker_sees_every_import_form():
    source = "import django.db\nfrom celery import Celery\nimport importlib\nimportlib.import_module('ideas.models')\n"
    assert [root for _, root in _imported_roots(ast.parse(source))] == ["django", "celery", "importlib", "ideas"]
