"""Headless Debian Chromium driven by Playwright, kept off the internet."""
import re
from urllib.parse import urlsplit

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
    # Belt and braces for "no page loads anything from the internet": only loopback names resolve.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
_LOCAL_SCHEMES = {"data", "blob", "about"}


def is_external(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme not in _LOCAL_SCHEMES and parts.hostname not in _LOCAL_HOSTS


class OfflineGuard:
    """Records every request a page makes to a host other than this machine."""

    def __init__(self, page) -> None:
        self.external: list[str] = []
        page.on("request", self._record)

    def _record(self, request) -> None:
        if is_external(request.url):
            self.external.append(request.url)

    def check(self) -> None:
        assert not self.external, f"the pages requested resources from outside this machine: {self.external}"


def screenshot_name(test_name: str, label: str) -> str:
    """A file name that keeps parametrised test ids readable but safe on any file system."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{test_name}-{label}") + ".png"
