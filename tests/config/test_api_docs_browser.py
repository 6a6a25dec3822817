"""The browsable API docs (Swagger UI) and the /api/ help page work offline: everything they load comes from
this server, and the docs render every operation of the schema."""
import pytest
from django.contrib.auth.models import User

from tests.support.people import PASSWORD


@pytest.fixture
def signed_in_page(browser_page, live_server, settings):
    from tests.support.people import FAST_PASSWORD_HASHERS

    settings.PASSWORD_HASHERS = FAST_PASSWORD_HASHERS
    User.objects.create_user("dora", password=PASSWORD)
    browser_page.goto("/accounts/login/")
    browser_page.fill("#id_username", "dora")
    browser_page.fill("#id_password", PASSWORD)
    browser_page.click("button[type=submit]")
    browser_page.wait_for_url("**/")
    return browser_page


def test_swagger_ui_renders_the_schema_from_local_files(signed_in_page, screenshot):
    page = signed_in_page
    page.goto("/api/v1/docs/")
    page.wait_for_selector(".opblock-tag", timeout=20_000)

    tags = page.locator(".opblock-tag").all_inner_texts()
    assert {"studies", "runs", "baselines", "pools", "requests", "ideas"} <= {tag.split()[0] for tag in tags}
    html = page.content()
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()
    screenshot(page, "swagger ui")


def test_the_help_page_has_a_worked_example_per_resource(signed_in_page, screenshot):
    page = signed_in_page
    page.goto("/api/")

    headings = page.locator("h3").all_inner_texts()
    for resource in ("Ideas", "Studies", "Runs", "Baselines", "Compute", "Areas and tokens"):
        assert any(heading.startswith(resource) for heading in headings), resource
    assert page.locator("a", has_text="Browsable docs").get_attribute("href") == "/api/v1/docs/"
    screenshot(page, "api help")
