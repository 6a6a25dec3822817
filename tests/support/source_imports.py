"""Which top-level packages a tree of Python source imports, read with ``ast`` (nothing is imported or run).

Every form counts: ``import a.b``, ``from a import b``, function-local imports and ``import_module("a.b")`` /
``__import__("a")`` with a literal name. Only what sits under ``if TYPE_CHECKING:`` is left out (it never runs).
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _dynamic_import(node: ast.Call) -> str | None:
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
    if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant) \
            and isinstance(node.args[0].value, str):
        return node.args[0].value
    return None


def imported_roots(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in ``tree``, in source order."""
    roots: list[tuple[int, str]] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)  # the `else:` of a TYPE_CHECKING block does run
            continue
        if isinstance(node, ast.Import):
            roots += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.Call) and (module := _dynamic_import(node)):
            roots.append((node.lineno, module.split(".")[0]))
        pending.extend(ast.iter_child_nodes(node))
    return sorted(roots)


def top_level_packages(repo: Path = REPO) -> list[str]:
    """The project's own importable packages (tests excepted)."""
    return sorted(path.parent.name for path in repo.glob("*/__init__.py") if path.parent.name != "tests")


def source_files(package: str, repo: Path = REPO) -> list[Path]:
    """Every module of ``package`` but its migrations (generated, and never imported by other apps)."""
    return sorted(path for path in (repo / package).rglob("*.py") if "migrations" not in path.parts)


def package_imports(package: str, repo: Path = REPO) -> dict[str, list[str]]:
    """Each top-level name ``package`` imports → the ``path:line`` places that import it."""
    places: dict[str, list[str]] = defaultdict(list)
    for path in source_files(package, repo):
        for line, root in imported_roots(ast.parse(path.read_text(), filename=str(path))):
            if root != package:
                places[root].append(f"{path.relative_to(repo)}:{line}")
    return dict(places)
