"""The direction of dependencies, checked from the source so it cannot drift (docs/architecture.md):
no two top-level packages import each other, directly or round a longer loop (function-local imports
count, ``if TYPE_CHECKING:`` blocks do not)."""
from pathlib import Path

from tests.support.source_imports import REPO, package_imports, top_level_packages


def _edges(packages: list[str], repo: Path = REPO) -> dict[tuple[str, str], list[str]]:
    """(importer, imported) → places, for imports between the given packages."""
    edges = {}
    for package in packages:
        for imported, places in package_imports(package, repo).items():
            if imported in packages:
                edges[(package, imported)] = places
    return edges


def _cycle(edges: dict[tuple[str, str], list[str]]) -> list[str] | None:
    """Some loop of packages (first package repeated at the end), or None."""
    after: dict[str, list[str]] = {}
    for importer, imported in sorted(edges):
        after.setdefault(importer, []).append(imported)
    done: set[str] = set()

    def visit(package: str, path: list[str]) -> list[str] | None:
        if package in path:
            return path[path.index(package):] + [package]
        if package in done:
            return None
        for imported in after.get(package, []):
            if found := visit(imported, [*path, package]):
                return found
        done.add(package)
        return None

    for package in sorted(after):
        if found := visit(package, []):
            return found
    return None


def test_no_two_packages_import_each_other():
    packages = top_level_packages()
    assert {"core", "ideas", "experiments", "compute", "inbox", "modelzoo"} <= set(packages)
    edges = _edges(packages)
    loop = _cycle(edges)
    assert loop is None, "import loop " + " → ".join(loop) + ":\n" + "\n".join(
        f"  {importer} → {imported}: {', '.join(edges[(importer, imported)])}"
        for importer, imported in zip(loop, loop[1:])
    )


def test_the_shared_app_and_the_inbox_import_no_domain_app():
    domain = {"ideas", "experiments", "compute", "accounts", "operations"}
    for package in ("core", "inbox"):
        assert sorted(set(package_imports(package)) & domain) == [], package


def test_the_checker_finds_loops_through_function_local_imports(tmp_path):
    for package, source in {
        "alpha": "from beta import thing\n",
        "beta": "def later():\n    import gamma.models\n",
        "gamma": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import beta\nelse:\n    import alpha\n",
    }.items():
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(source)
    assert top_level_packages(tmp_path) == ["alpha", "beta", "gamma"]
    edges = _edges(["alpha", "beta", "gamma"], tmp_path)
    assert sorted(edges) == [("alpha", "beta"), ("beta", "gamma"), ("gamma", "alpha")]  # not gamma → beta
    assert _cycle(edges) == ["alpha", "beta", "gamma", "alpha"]
    del edges[("gamma", "alpha")]
    assert _cycle(edges) is None
