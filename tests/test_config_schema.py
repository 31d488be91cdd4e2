"""The config is checked from configs/toolchat.schema.json, the file editors read: a key added
there is validated (type, bounds, did-you-mean) with no other edit; a rule only the schema has is
still enforced at the key's line, with jsonschema-rs and with its jsonschema fallback; the
chat formats it lists are the parsers' own; names under mcp_servers and profiles stay as written."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

from toolchat.backends.parsers import FORMATS
from toolchat.config import schema as config_schema
from toolchat.config.file import load_file
from toolchat.config.mcp_servers import specs
from toolchat.errors import ConfigError


def message_for(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_file(path, {})
    return str(info.value)


@pytest.fixture(params=["jsonschema-rs", "jsonschema"])
def edited_schema(request, monkeypatch):
    """The shipped schema with one edit, as an engineer adding a key would make it."""
    if request.param == "jsonschema":
        monkeypatch.setitem(sys.modules, "jsonschema_rs", None)  # as where no wheel exists
    edited = copy.deepcopy(config_schema.schema())
    edited["properties"]["context_window"] = {"type": "integer", "minimum": 256}
    edited["properties"]["sandbox"] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"image": {"type": "string", "pattern": "^[a-z0-9./:-]+$"}, "wait": {"$ref": "#/$defs/seconds"}},
    }
    caches = (config_schema.keys_of, config_schema._validator)
    for cache in caches:
        cache.cache_clear()
    monkeypatch.setattr(config_schema, "schema", lambda: edited)
    yield edited
    monkeypatch.undo()
    for cache in caches:
        cache.cache_clear()


def test_a_key_added_to_the_schema_is_validated_with_no_other_edit(tmp_path, edited_schema):
    path = tmp_path / "toolchat.yaml"
    assert load_file(path, {}) if path.write_text("context_window: 4096\n") else False
    assert (
        message_for(path, "model: m\ncontext_window: 10\n")
        == f"{path}:2:1: 'context_window' must be at least 256, not 10"
    )
    assert message_for(path, "context_window: lots\n") == f"{path}:1:1: 'context_window' must be an integer, not 'lots'"
    assert message_for(path, "context_windo: 9000\n") == (
        f"{path}:1:1: unknown key 'context_windo'; did you mean 'context_window'?"
    )
    assert message_for(path, "sandbox:\n  wait: 0\n") == (
        f"{path}:2:3: 'sandbox.wait' must be a number of seconds above 0, not 0"
    )
    assert (
        message_for(path, "sandbox:\n  imag: x\n") == f"{path}:2:3: unknown key 'sandbox.imag'; did you mean 'image'?"
    )


def test_a_rule_only_the_schema_has_is_still_enforced_at_its_line(tmp_path, edited_schema):
    path = tmp_path / "toolchat.yaml"
    message = message_for(path, "model: m\nsandbox:\n  image: 'Not An Image!'\n")
    assert message.startswith(f"{path}:3:3: 'sandbox.image' does not fit the schema: "), message
    assert "Not An Image!" in message
    path.write_text("sandbox:\n  image: python:3.12-slim\n")
    assert load_file(path, {}).data["sandbox"] == {"image": "python:3.12-slim"}


def test_the_schema_lists_the_chat_formats_the_parsers_have():
    listed = config_schema.keys_of("profile")["chat_format"]["enum"]
    assert listed == ["generic", *FORMATS], "configs/toolchat.schema.json and backends/parsers disagree"
    assert config_schema.keys_of("top")["chat_format"]["enum"] == listed


def test_an_unknown_chat_format_names_the_ones_there_are(tmp_path):
    path = tmp_path / "toolchat.yaml"
    assert message_for(path, "chat_format: chatml\n") == (
        f"{path}:1:1: unknown chat_format 'chatml'; use one of: {', '.join(['generic', *FORMATS])}"
    )


def test_servers_and_profiles_named_off_no_on_or_a_number_keep_their_names(tmp_path):
    path = tmp_path / "toolchat.yaml"
    path.write_text(
        "profile: 'no'\n"
        "profiles:\n  no: {model: a}\n  on: {model: b}\n  1: {model: c}\n"
        "mcp_servers:\n  off: {command: srv-off}\n  yes: {url: 'http://127.0.0.1:1/mcp'}\n  2: {command: srv-2}\n"
    )
    file = load_file(path, {})
    assert list(file.data["profiles"]) == ["no", "on", "1"]
    servers, _ = specs(file, {})
    assert [(s.name, s.command or s.url) for s in servers] == [
        ("off", "srv-off"),
        ("yes", "http://127.0.0.1:1/mcp"),
        ("2", "srv-2"),
    ]
    assert file.at("mcp_servers", "off") == f"{path}:7:3"
    assert message_for(path, "mcp_servers:\n  off: {comand: x}\n") == (
        f"{path}:2:9: unknown key 'mcp_servers.off.comand'; did you mean 'command'?"
    )


def test_a_server_without_a_name_is_refused_by_toolchat_and_by_the_schema(tmp_path):
    from jsonschema import Draft202012Validator

    path = tmp_path / "toolchat.yaml"
    assert message_for(path, "mcp_servers:\n  ' ': {command: srv}\n") == f"{path}:2:3: an MCP server needs a name"
    assert list(Draft202012Validator(config_schema.schema()).iter_errors({"mcp_servers": {" ": {"command": "srv"}}}))
