"""modelzoo must stay importable without the web platform: no module in it imports Django or the apps."""

import ast
from pathlib import Path

from tests.support.import_rules import imported_roots, imports_outside

FORBIDDEN = {"django", "celery", "ideas", "experiments", "compute"}
MODELZOO = Path(__file__).resolve().parents[2] / "modelzoo"


def test_modelzoo_never_imports_the_platform():
    assert len(list(MODELZOO.rglob("*.py"))) > 10
    assert imports_outside(MODELZOO, forbidden=FORBIDDEN) == []


def test_the_checker_sees_every_import_form():
    source = "import django.db\nfrom celery import Celery\nimport importlib\nimportlib.import_module('ideas.models')\n"
    assert [root for _, root in imported_roots(ast.parse(source))] == ["django", "celery", "importlib", "ideas"]
