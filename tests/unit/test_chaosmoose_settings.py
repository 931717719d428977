"""Settings: one lookup path (secrets, configuration, environment, default), strict parsing."""

from pathlib import Path

import pytest

from chaosmoose import _settings
from chaosmoose._settings import SettingError


def test_precedence_secrets_then_configuration_then_env_then_default(monkeypatch):
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", "from-env")
    assert _settings.project() == "from-env"
    assert _settings.project({"docker_project": "from-config"}) == "from-config"
    secrets = {"mooseng": {"docker_project": "from-secret"}}
    assert _settings.project({"docker_project": "from-config"}, secrets) == "from-secret"
    monkeypatch.delenv("COMPOSE_PROJECT_NAME")
    assert _settings.project() == "mooseng"


def test_default_masters_are_the_published_ports(monkeypatch):
    monkeypatch.delenv("CHAOSMOOSE_MASTERS", raising=False)
    assert _settings.masters() == {"master-1": "http://127.0.0.1:9431",
                                   "master-2": "http://127.0.0.1:9432",
                                   "master-3": "http://127.0.0.1:9433"}


@pytest.mark.parametrize("value, message", [
    ("master-1", "has no '=url' part"),
    ("master-1=ftp://x", "expected http://host:port"),
    ("master-1=http://a:1,master-1=http://b:2", "listed twice"),
    ("=http://127.0.0.1:1", "empty name"),
    ("", "at least one"),
    (42, "expected name=url pairs"),
])
def test_malformed_masters_say_what_was_expected(value, message):
    with pytest.raises(SettingError, match=message):
        _settings.masters({"mooseng_masters": value})


def test_masters_accept_a_mapping_and_strip_slashes():
    got = _settings.masters({"mooseng_masters": {"m1": "http://h:1/"}})
    assert got == {"m1": "http://h:1"}


@pytest.mark.parametrize("raw, expected", [("true", True), ("False", False), ("0", False),
                                           ("yes", True), ("off", False), (True, True),
                                           (0, False)])
def test_booleans_are_parsed_explicitly(raw, expected):
    assert _settings.parse_bool("x", raw) is expected


@pytest.mark.parametrize("raw", ["maybe", "", 2, None, "truthy"])
def test_bad_booleans_are_errors(raw):
    with pytest.raises(SettingError, match="expected a boolean"):
        _settings.parse_bool("x", raw)


@pytest.mark.parametrize("raw", ["abc", None, True, "nan", "-1", float("inf")])
def test_bad_numbers_are_errors(raw):
    with pytest.raises(SettingError, match="x="):
        _settings.parse_float("x", raw)


def test_http_timeout_must_be_positive():
    with pytest.raises(SettingError, match="mooseng_http_timeout"):
        _settings.http_timeout({"mooseng_http_timeout": "0"})
    assert _settings.http_timeout({"mooseng_http_timeout": "1.5"}) == 1.5


def test_token_from_dotenv_when_not_in_environment(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("MOOSENG_API_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    assert _settings.api_token() is None
    (tmp_path / ".env").write_text("# generated\nOTHER=1\nMOOSENG_API_TOKEN='s3cret'\n")
    assert _settings.api_token() == "s3cret"
    monkeypatch.setenv("MOOSENG_API_TOKEN", "from-env")
    assert _settings.api_token() == "from-env"


def test_secret_values_are_never_echoed_in_errors():
    with pytest.raises(SettingError) as info:
        _settings.get_str("mooseng_api_token", {"mooseng_api_token": ["not", "a", "string"]})
    assert "not" not in str(info.value) and "<secret>" in str(info.value)


def test_validate_all_lists_every_problem():
    errors = _settings.validate_all({"mooseng_masters": "m1", "mooseng_http_timeout": "x",
                                     "mooseng_mount_root": "relative"})
    assert len(errors) == 3
    assert any("mooseng_masters" in e for e in errors)
    assert any("mooseng_mount_root" in e for e in errors)


def test_run_id_is_stable_per_process_and_configurable():
    assert _settings.run_id() == _settings.run_id()
    assert _settings.run_id({"chaosmoose_run_id": "r7"}) == "r7"
    with pytest.raises(SettingError):
        _settings.run_id({"chaosmoose_run_id": "../escape"})


def test_settings_table_names_every_key():
    table = _settings.markdown_table()
    for key in _settings.SETTINGS:
        assert f"`{key}`" in table
