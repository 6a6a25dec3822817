"""The client package runs on machines without the server: it may import only the standard library, httpx and
itself — never Django, Celery or any of the project's apps (function-local imports included)."""
import sys
from pathlib import Path

from django.conf import settings

from tests.support.import_rules import imports_outside

PACKAGE = Path(__file__).resolve().parents[2] / "flightdeck"
ALLOWED = set(sys.stdlib_module_names) | {"httpx", "flightdeck", "__future__"}


def test_the_client_imports_only_the_standard_library_and_httpx():
    assert len(list(PACKAGE.rglob("*.py"))) >= 5
    assert imports_outside(PACKAGE, allowed=ALLOWED) == []


def test_no_app_or_framework_is_on_the_allowed_list():
    apps = {app.split(".")[0] for app in settings.INSTALLED_APPS}
    assert not ALLOWED & (apps | {"django", "celery", "rest_framework", "modelzoo", "config"})
