"""The client package runs on machines without the server: it may import only the standard library, httpx and
itself — never Django, Celery or any of the project's apps (function-local imports included)."""
import sys

from django.conf import settings

from tests.support.source_imports import package_imports, source_files

ALLOWED = set(sys.stdlib_module_names) | {"httpx", "flightdeck", "__future__"}


def test_the_client_imports_only_the_standard_library_and_httpx():
    assert len(source_files("flightdeck")) >= 5
    offending = {root: places for root, places in package_imports("flightdeck").items() if root not in ALLOWED}
    assert offending == {}


def test_no_app_or_framework_is_on_the_allowed_list():
    apps = {app.split(".")[0] for app in settings.INSTALLED_APPS}
    assert not ALLOWED & (apps | {"django", "celery", "rest_framework", "modelzoo", "config"})
