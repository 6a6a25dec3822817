"""Where the CLI finds its server and token: ``FLIGHTDECK_URL`` / ``FLIGHTDECK_TOKEN`` first, then the file
``flightdeck login`` writes (``config.json`` in the user's config directory, readable by its owner only)."""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from flightdeck.errors import ConfigurationError

URL_VARIABLE = "FLIGHTDECK_URL"
TOKEN_VARIABLE = "FLIGHTDECK_TOKEN"


def config_dir() -> Path:
    """The per-user config directory, as each platform's conventions have it."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "flightdeck"


def config_path() -> Path:
    return config_dir() / "config.json"


@dataclass(frozen=True)
class Settings:
    url: str
    token: str
    source: str  # where they came from, for messages


def load() -> Settings:
    """The URL and token to use; ConfigurationError naming what is missing and how to provide it."""
    stored = _read_file()
    url = os.environ.get(URL_VARIABLE) or stored.get("url", "")
    token = os.environ.get(TOKEN_VARIABLE) or stored.get("token", "")
    if not url or not token:
        missing = [name for name, value in ((URL_VARIABLE, url), (TOKEN_VARIABLE, token)) if not value]
        pronoun = "them" if len(missing) > 1 else "it"
        raise ConfigurationError(f"{' and '.join(missing)} not set: export {pronoun}, or run `flightdeck login`")
    from_env = URL_VARIABLE in os.environ or TOKEN_VARIABLE in os.environ
    return Settings(url=url, token=token, source="the environment" if from_env else str(config_path()))


def save(*, url: str, token: str) -> Path:
    """Store URL and token for the user alone: the directory is 0700 and the file 0600 from its creation
    (never world-readable, not even for a moment)."""
    path = config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.chmod(path, 0o600)  # an older file keeps its mode through O_CREAT
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump({"url": url, "token": token}, handle)
        handle.write("\n")
    return path


def forget() -> bool:
    """Remove the stored credentials; True if there were any."""
    try:
        config_path().unlink()
    except FileNotFoundError:
        return False
    return True


def _read_file() -> dict[str, str]:
    path = config_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"cannot read {path}: {error}; run `flightdeck login` again") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path} is not a JSON object; run `flightdeck login` again")
    return {key: str(value) for key, value in data.items() if key in ("url", "token")}
