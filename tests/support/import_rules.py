"""Which top-level packages a source file imports, in every form (import, from-import, importlib.import_module,
__import__), for the tests that keep packages apart (modelzoo and the flightdeck client never import the
platform)."""
import ast
from pathlib import Path


def imported_roots(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, top-level package) for every absolute import in ``tree``."""
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


def imports_outside(package: Path, allowed: set[str] | None = None, forbidden: set[str] | None = None) -> list[str]:
    """``path:line imports root`` for each import in ``package`` that is not in ``allowed`` / is in ``forbidden``."""
    return [
        f"{path.relative_to(package.parent)}:{line} imports {root}"
        for path in sorted(package.rglob("*.py"))
        for line, root in imported_roots(ast.parse(path.read_text(), filename=str(path)))
        if (allowed is not None and root not in allowed) or (forbidden is not None and root in forbidden)
    ]
