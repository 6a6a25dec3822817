"""Where the CLI finds its server and token: the environment first, then the file `flightdeck login` writes,
which only its owner can read."""
import json
import stat

import pytest

from flightdeck import ConfigurationError, config


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("FLIGHTDECK_URL", raising=False)
    monkeypatch.delenv("FLIGHTDECK_TOKEN", raising=False)
    return tmp_path


def test_the_stored_file_is_readable_by_its_owner_only(private_home):
    path = config.save(url="http://fd.example", token="fd_secret")

    assert path == private_home / "xdg" / "flightdeck" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {"url": "http://fd.example", "token": "fd_secret"}


def test_an_older_world_readable_file_is_tightened_when_rewritten(private_home):
    path = private_home / "xdg" / "flightdeck" / "config.json"
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    path.chmod(0o644)

    config.save(url="http://fd.example", token="fd_secret")

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_environment_wins_over_the_file(monkeypatch):
    config.save(url="http://stored.example", token="fd_stored")
    assert config.load() == config.Settings("http://stored.example", "fd_stored", str(config.config_path()))

    monkeypatch.setenv("FLIGHTDECK_TOKEN", "fd_from_env")
    settings = config.load()

    assert (settings.url, settings.token, settings.source) == ("http://stored.example", "fd_from_env", "the environment")


def test_missing_or_unreadable_configuration_says_what_to_do():
    with pytest.raises(ConfigurationError, match="FLIGHTDECK_URL and FLIGHTDECK_TOKEN not set"):
        config.load()
    config.config_path().parent.mkdir(parents=True)
    config.config_path().write_text("{not json")
    with pytest.raises(ConfigurationError, match="cannot read .*config.json.*run `flightdeck login` again"):
        config.load()


def test_forget_removes_the_file():
    config.save(url="http://fd.example", token="t")

    assert config.forget() is True and not config.config_path().exists() and config.forget() is False
