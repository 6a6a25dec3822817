"""modelzoo must stay importable without the web platform: no module in it imports Django, DRF, Celery, the
settings package or any installed app (the list comes from INSTALLED_APPS, so a new app is covered at once)."""
import ast

from django.conf import settings

from tests.support.source_imports import imported_roots, package_imports, source_files


def forbidden_roots() -> set[str]:
    installed = {app.split(".")[0] for app in settings.INSTALLED_APPS}
    return installed | {"django", "rest_framework", "celery", settings.SETTINGS_MODULE.split(".")[0]}


def test_the_forbidden_list_covers_every_app_and_the_frameworks():
    assert {"core", "accounts", "ideas", "experiments", "compute", "inbox", "operations", "config",
            "django", "rest_framework", "celery"} <= forbidden_roots()


def test_modelzoo_never_imports_the_platform():
    assert len(source_files("modelzoo")) > 10
    offending = {root: places for root, places in package_imports("modelzoo").items() if root in forbidden_roots()}
    assert offending == {}


def test_the_checker_sees_every_import_form():
    source = "import django.db\nfrom celery import Celery\nimport importlib\nimportlib.import_module('ideas.models')\n"
    assert [root for _, root in imported_roots(ast.parse(source))] == ["django", "celery", "importlib", "ideas"]
