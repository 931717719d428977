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
