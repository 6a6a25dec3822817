"""Production mode passes Django's deployment checklist with zero findings, and refuses to start half-configured."""
import os
import secrets
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# Set for the test session (the browser fixtures need the async override); a deployment never has them.
_TEST_ONLY = {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_ALLOW_ASYNC_UNSAFE"}


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {key: value for key, value in os.environ.items() if key not in _TEST_ONLY}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def test_production_mode_passes_check_deploy_with_zero_findings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", FLIGHTDECK_ENV="production",
                     SECRET_KEY=secrets.token_urlsafe(64), ALLOWED_HOSTS="flightdeck.example.org")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_mode_without_a_secret_key_refuses_to_start():
    result = _manage("check", FLIGHTDECK_ENV="production", ALLOWED_HOSTS="flightdeck.example.org")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
