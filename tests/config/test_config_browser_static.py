"""The headless browser fixture works against the live server, and pages get their JS from this machine."""
import filecmp

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command

from core.vendor_static import PLOTLY_JS
from tests.support.browser import OfflineGuard


def test_the_sign_in_page_loads_htmx_and_plotly_from_this_server(browser_page, screenshot, monkeypatch, tmp_path):
    monkeypatch.setenv("FLIGHTDECK_SCREENSHOT_DIR", str(tmp_path / "for-humans"))
    browser_page.goto("/accounts/login/")
    assert browser_page.evaluate("typeof window.htmx") == "object"
    plotly = browser_page.evaluate(f"fetch('/static/{PLOTLY_JS}').then(r => r.text())")
    assert "plotly.js v" in plotly[:200]

    path = screenshot(browser_page, "sign in")
    assert path.read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "for-humans" / path.name).read_bytes() == path.read_bytes()


def test_a_page_that_reaches_for_the_internet_is_caught(chromium):
    page = chromium.new_page()
    guard = OfflineGuard(page)
    page.set_content('<img src="https://cdn.example.com/pixel.png"><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">')
    page.close()
    with pytest.raises(AssertionError, match=r"\['https://cdn.example.com/pixel.png'\]"):
        guard.check()


def test_collectstatic_ships_both_vendored_scripts(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    call_command("collectstatic", "--noinput", verbosity=0)
    assert filecmp.cmp(tmp_path / PLOTLY_JS, finders.find(PLOTLY_JS), shallow=False)
    assert (tmp_path / "vendor" / "htmx.min.js").stat().st_size > 10_000
