"""The config's one description: configs/toolchat.schema.json, the JSON Schema editors read. The
worded checks in keys.py take each section's keys, types, choices and bounds from it, and the
schema itself (jsonschema-rs; jsonschema where no wheel exists) runs over the whole file after
them, so nothing the schema refuses is accepted even where no worded message exists yet."""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Callable
from typing import Any

# Where each section's keys live in the schema.
SECTIONS: dict[str, tuple[str, ...]] = {
    "top": (),
    "profile": ("$defs", "profile"),
    "server": ("$defs", "mcp_server"),
}


@functools.cache
def schema() -> dict[str, Any]:
    text = importlib.resources.files("toolchat.configs").joinpath("toolchat.schema.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def at(pointer: tuple[str, ...]) -> dict[str, Any]:
    node: Any = schema()
    for part in pointer:
        node = node[part]
    return resolve(node)


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """`node` with its local `$ref` followed (its own keys win), and `$refs` naming what it came through."""
    refs: list[str] = []
    while "$ref" in node:
        ref = node["$ref"]
        refs.append(ref)
        target: Any = schema()
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return {**node, "$refs": refs} if refs else node


@functools.cache
def keys_of(section: str) -> dict[str, dict[str, Any]]:
    """The keys a section may hold, each with its (resolved) schema, in the schema's order."""
    return {key: resolve(rule) for key, rule in at(SECTIONS[section]).get("properties", {}).items()}


@functools.cache
def _validator(section: str) -> Callable[[Any], list[tuple[tuple[str, ...], str]]]:
    """(path, message) for each way `value` breaks the section's schema."""
    sub = {**at(SECTIONS[section]), "$defs": schema()["$defs"]}
    sub.pop("$refs", None)
    try:
        import jsonschema_rs
    except ImportError:
        return _python_validator(sub)
    compiled = jsonschema_rs.validator_for(sub)
    fallback = _python_validator(sub)

    def check(value: Any) -> list[tuple[tuple[str, ...], str]]:
        try:
            return [(tuple(str(p) for p in e.instance_path), e.message) for e in compiled.iter_errors(value)]
        except (ValueError, OverflowError):  # a value Rust cannot hold (an integer past 64 bits)
            return fallback(value)

    return check


def _python_validator(sub: dict[str, Any]) -> Callable[[Any], list[tuple[tuple[str, ...], str]]]:
    from jsonschema import Draft202012Validator

    compiled = Draft202012Validator(sub)
    return lambda value: [(tuple(str(p) for p in e.absolute_path), e.message) for e in compiled.iter_errors(value)]


def errors(value: Any, section: str) -> list[tuple[tuple[str, ...], str]]:
    return _validator(section)(value)
