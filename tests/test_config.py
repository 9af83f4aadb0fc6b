"""Settings: defaults < monitorkit.toml < MONITORKIT_* environment < overrides, each with its source."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from monitorkit.config import DEFAULTS, find_config_file, load_settings, parse_duration
from monitorkit.errors import ConfigError


@pytest.fixture(autouse=True)
def empty_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Run in an empty folder with no MONITORKIT_CONFIG."""
    monkeypatch.delenv("MONITORKIT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("5m", 300), ("2h", 7200), ("14d", 14 * 86400), ("1w", 604800), ("250ms", 0.25), (" 1.5 h ", 5400),
     ("30", 30), (45, 45), (0.5, 0.5), (timedelta(minutes=2), 120)],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "fortnight", "5 minutes", "-5s", "1y", "5mm", True, None])
def test_parse_duration_refuses_garbage(bad: object) -> None:
    with pytest.raises(ConfigError, match="invalid duration"):
        parse_duration(bad)


def test_defaults_when_nothing_is_set() -> None:
    settings = load_settings(env={})
    assert settings.get("store.path") == DEFAULTS["store"]["path"]
    assert settings.source("store.path") == "default"
    tiers = {k: v for k, v in settings.retention().items() if k in ("raw", "1m", "1h")}
    assert tiers == {"raw": timedelta(days=14), "1m": timedelta(days=90), "1h": timedelta(days=1095)}
    assert settings.get("nope.missing", 7) == 7


def test_file_then_env_then_overrides(empty_folder: Path) -> None:
    toml = empty_folder / "monitorkit.toml"
    toml.write_text(
        '[store]\npath = "from-file.duckdb"\nrollup_every = "1m"\n[retention]\nraw = "7d"\n[collectors.cpu]\ninterval = 5\n'
    )
    env = {"MONITORKIT_STORE__PATH": "from-env.duckdb", "MONITORKIT_COLLECT__INTERVAL": "2.5", "OTHER": "x",
           "MONITORKIT_SERVE__OPEN": "true", "MONITORKIT_NOSECTION": "ignored"}
    settings = load_settings(env=env)
    assert find_config_file() == toml
    assert (settings.get("store.path"), settings.source("store.path")) == ("from-env.duckdb", "env MONITORKIT_STORE__PATH")
    assert (settings.get("store.rollup_every"), settings.source("store.rollup_every")) == ("1m", str(toml))
    assert settings.get("collect.interval") == 2.5 and settings.get("serve.open") is True
    assert settings["collectors"]["cpu"] == {"interval": 5}
    assert settings.retention()["raw"] == timedelta(days=7)
    assert settings.get("store.queue_max_samples") == DEFAULTS["store"]["queue_max_samples"]

    over = settings.with_overrides({"store.path": "cli.duckdb", "collect.interval": None})
    assert (over.get("store.path"), over.source("store.path")) == ("cli.duckdb", "command line")
    assert over.source("collect.interval") == "env MONITORKIT_COLLECT__INTERVAL"
    assert settings.get("store.path") == "from-env.duckdb", "overrides return a copy"
    keys = [k for k, _, _ in over.items()]
    assert keys == sorted(keys) and "retention.1h" in keys


def test_config_env_variable_names_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text('[retention]\n"1m" = "30d"\n')
    monkeypatch.setenv("MONITORKIT_CONFIG", str(other))
    settings = load_settings(env={})
    assert settings.retention()["1m"] == timedelta(days=30)
    assert settings.source("retention.1m") == str(other)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[store\npath=", "is not valid TOML"),
        ('title = "x"\n', r"must be a \[table\]"),
        ('[retention]\nraw = "soon"\n', "invalid duration"),
    ],
)
def test_bad_files_raise_config_error(empty_folder: Path, content: str, message: str) -> None:
    (empty_folder / "monitorkit.toml").write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings(env={})


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.toml", env={})


def test_bad_env_duration_is_refused_at_load() -> None:
    with pytest.raises(ConfigError, match="'never'"):
        load_settings(env={"MONITORKIT_RETENTION__RAW": "never"})
