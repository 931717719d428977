"""The settings table: parsing, error messages, and the README's copy of the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from mooseng import settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_parse_for_every_scope():
    assert settings.validate("*", environ={"MOOSENG_RAFT_PASSWORD": "x"}) == []


def test_malformed_port_names_variable_value_and_expectation():
    with pytest.raises(settings.SettingError) as err:
        settings.read("MOOSENG_CS_PORT", {"MOOSENG_CS_PORT": "abc"})
    message = str(err.value)
    assert message.startswith("MOOSENG_CS_PORT='abc' is invalid")
    assert "expected A TCP port number" in message


@pytest.mark.parametrize("raw", ["0", "65536", "-1"])
def test_port_out_of_range_is_rejected(raw):
    with pytest.raises(settings.SettingError):
        settings.read("MOOSENG_API_PORT", {"MOOSENG_API_PORT": raw})


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("No", False), ("0", False), ("on", True)])
def test_booleans_are_parsed_explicitly(raw, value):
    assert settings.parse_bool(raw) is value


def test_false_like_string_is_not_true():
    with pytest.raises(ValueError):
        settings.parse_bool("maybe")


def test_validate_reports_only_the_scope_asked_for():
    env = {"MOOSENG_CS_PORT": "x", "MOOSENG_MOUNT_SUBFOLDER": "/"}
    assert len(settings.validate("chunkserver", env)) == 1
    assert settings.validate("client", env) == []


def test_list_setting_drops_blanks():
    assert settings.read("MOOSENG_MASTERS", {"MOOSENG_MASTERS": "a, b,,c "}) == ["a", "b", "c"]


def test_readme_carries_the_current_table():
    assert settings.markdown_table() in README.read_text(), (
        "README's settings table is stale: paste `mooseng settings --markdown` between the "
        "settings-table markers")


def test_readme_carries_the_current_chaosmoose_table():
    from chaosmoose._settings import markdown_table

    assert markdown_table() in README.read_text(), "run `make settings-table`"


@pytest.mark.parametrize(("name", "checked_by", "not_by"), [
    ("MOOSENG_ROUTER_CL_PORT", ("master", "client"), ("chunkserver",)),
    ("MOOSENG_ROUTER_CS_PORT", ("chunkserver",), ("master", "client")),
    ("MOOSENG_ROUTER_ML_PORT", ("master",), ("chunkserver", "client")),
    ("MOOSENG_ROUTER_CHECK_INTERVAL_MS", ("master", "chunkserver", "client"), ()),
    ("MOOSENG_ROUTER_HOLD_MS", ("master", "client"), ("chunkserver",)),
    ("MOOSENG_ROUTER_CS_HOLD_MS", ("chunkserver",), ("master", "client")),
])
def test_router_settings_are_validated_by_the_roles_that_read_them(name, checked_by, not_by):
    env = {name: "x"}
    for role in checked_by:
        assert [e.split("=")[0] for e in settings.validate(role, env)] == [name], role
    for role in not_by:
        assert settings.validate(role, env) == [], role


def test_a_malformed_router_port_stops_the_role_with_a_message(capsys, monkeypatch):
    from mooseng import roles

    monkeypatch.setenv("MOOSENG_ROUTER_CL_PORT", "x")
    assert roles.run("client") == 2  # before any daemon starts, no traceback
    assert ("mooseng run client: configuration error: MOOSENG_ROUTER_CL_PORT='x' is invalid"
            in capsys.readouterr().err)


def test_every_role_a_setting_names_exists():
    for setting in settings.SETTINGS.values():
        assert setting.roles and set(setting.roles) <= set(settings.ROLES), setting.name


def test_router_hold_takes_zero_to_a_minute_of_milliseconds():
    for good in ("0", "900", "60000"):
        assert settings.validate("client", {"MOOSENG_ROUTER_HOLD_MS": good}) == [], good
    for bad in ("-1", "60001", "0.5"):
        assert [e.split("=")[0] for e in settings.validate(
            "client", {"MOOSENG_ROUTER_HOLD_MS": bad})] == ["MOOSENG_ROUTER_HOLD_MS"], bad
