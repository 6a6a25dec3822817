"""Running the `flightdeck` CLI as a separate process, as a person or an agent would, against a real server.

`flightdeck_cli(*args, url=..., token=...)` runs `python -m flightdeck ARGS` with FLIGHTDECK_URL/TOKEN set and
a private HOME and XDG_CONFIG_HOME (so `login` never touches the developer's config), and returns the
completed process (text stdout/stderr)."""
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from accounts import services as account_services

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def flightdeck_cli(cli_home: Path) -> Callable[..., subprocess.CompletedProcess]:
    def run(*args: str, url: str | None = None, token: str | None = None, stdin: str = "",
            timeout: float = 120) -> subprocess.CompletedProcess:
        env = {key: value for key, value in os.environ.items() if not key.startswith("FLIGHTDECK_")}
        env.update(HOME=str(cli_home), XDG_CONFIG_HOME=str(cli_home / ".config"), PYTHONPATH=str(REPO_ROOT),
                   COLUMNS="200")
        if url is not None:
            env["FLIGHTDECK_URL"] = url
        if token is not None:
            env["FLIGHTDECK_TOKEN"] = token
        return subprocess.run([sys.executable, "-m", "flightdeck", *args], env=env, input=stdin, text=True,
                              capture_output=True, timeout=timeout, cwd=cli_home)

    return run


@pytest.fixture
def token_for() -> Callable[[User], str]:
    def issue(user: User) -> str:
        return account_services.api_token_create(owner=user, name="flightdeck cli").secret

    return issue
