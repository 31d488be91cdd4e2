"""The config's keys: the check of one section against what the schema says it may hold, ${VAR}
expansion, and the one way a config error names its file, line and column. The file reader and the MCP
server entries both stand on this.

Adding a key is one edit, in configs/toolchat.schema.json: its type, choices (`enum`) and bounds
(`minimum`, `maximum`; `"$ref": "#/$defs/seconds"` for a timeout) are checked from there, with
did-you-mean for a misspelling; no table here lists the keys."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolchat.config.schema import errors, keys_of, resolve
from toolchat.errors import ConfigError

SECRET_KEYS = frozenset(key for key, rule in keys_of("profile").items() if rule.get("writeOnly"))  # never shown
_KINDS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}
REASONING_EFFORTS = ("none", "low", "medium", "high")  # the schema's enum says the same (a test checks)
REASONING_KEEP = ("turn", "all", "none")
_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a mapping",
}
_PLURALS = {str: "strings", int: "integers", float: "numbers", bool: "true or false", list: "lists", dict: "mappings"}
_SECONDS = "#/$defs/seconds"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


Positions = dict[tuple[str, ...], tuple[int, int]]  # key path -> where it is written: 1-based line, column


def place(lines: Positions, where: tuple[str, ...]) -> str:
    """`line:column` of `where`, or of the nearest key above it that has one (1:1 when none does)."""
    while where and where not in lines:
        where = where[:-1]
    line, column = lines.get(where, (1, 1))
    return f"{line}:{column}"


@dataclass
class Expansion:
    where: tuple[str, ...]  # the key path the ${VAR} was written under
    name: str
    value: str


def expand_all(
    value: Any,
    where: tuple[str, ...],
    path: str,
    environ: Mapping[str, str],
    lines: Positions,
    expansions: list[Expansion],
    missing: list[Missing] | None = None,
) -> Any:
    """`value` with every ${VAR} (or ${VAR:-default}) in its strings expanded, each noted. A variable
    not set stops here, unless `missing` is given: then it is left as written and noted there, to be
    said only when the value is used."""
    if isinstance(value, dict):
        return {k: expand_all(v, (*where, k), path, environ, lines, expansions, missing) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_all(v, (*where, str(i)), path, environ, lines, expansions, missing) for i, v in enumerate(value)]
    if isinstance(value, str):
        return _expand(value, environ, f"{path}:{place(lines, where)}", where, expansions, missing)
    return value


@dataclass
class Missing:
    where: tuple[str, ...]  # the key path the ${VAR} was written under
    error: ConfigError  # what using the value says


def _expand(
    text: str,
    environ: Mapping[str, str],
    at: str,
    where: tuple[str, ...],
    expansions: list[Expansion],
    missing: list[Missing] | None,
) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            expansions.append(Expansion(where, name, environ[name]))
            return environ[name]
        if default is not None:
            return default
        error = ConfigError(f"{at}: environment variable {name} is not set", f"set it, or write ${{{name}:-default}}")
        if missing is None:
            raise error
        missing.append(Missing(where, error))
        return match.group(0)

    return _VAR.sub(replace, text)


def references_only(text: str) -> str | None:
    """`text` as written when it is nothing but ${VAR} references (each default hidden, since a
    default is a literal value), else None: how a secret key's reference may be shown."""
    if not _VAR.search(text) or _VAR.sub("", text).strip():
        return None
    return _VAR.sub(lambda m: f"${{{m.group(1)}" + (":-***}" if m.group(2) else "}"), text)


def check_keys(
    section: dict[str, Any],
    spec: dict[str, dict[str, Any]],
    where: tuple[str, ...],
    path: Path | str,
    lines: Positions,
    explain: Mapping[str, Callable[[Any], str]] | None = None,
) -> None:
    """Each key of `section` against its schema (`spec`, from schema.keys_of): unknown keys with
    did-you-mean, then type, choices, bounds, list entries and mapping values, each in words.
    `explain` words a choice missed, for a key whose choices need more than a list."""
    for key, value in section.items():
        dotted = ".".join((*where, key))
        at = (*where, key)
        if key not in spec:
            close = difflib.get_close_matches(key, list(spec), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(spec)}"
            fail(path, lines, at, f"unknown key '{dotted}'{hint}")
        rule = spec[key]
        kinds = kinds_of(rule)
        if not _fits(value, kinds):
            names = " or ".join(_TYPE_NAMES[k] for k in kinds if not (k is int and float in kinds))
            fail(path, lines, at, f"'{dotted}' must be {names}, not {value!r}")
        if "enum" in rule and value not in rule["enum"]:
            said = (explain or {}).get(key)
            choices = ", ".join(rule["enum"])
            fail(path, lines, at, said(value) if said else f"unknown {key} '{value}'; use one of: {choices}")
        if (bounds := _out_of_bounds(rule, value)) is not None:
            fail(path, lines, at, f"'{dotted}' must be {bounds}, not {value}")
        if isinstance(value, dict) and "properties" in rule:  # a section: its own keys, the same way
            check_keys(value, {name: resolve(sub) for name, sub in rule["properties"].items()}, at, path, lines)
        if isinstance(value, list) and isinstance(rule.get("items"), dict):
            item_kinds = kinds_of(rule["items"])
            for i, item in enumerate(value):
                if not _fits(item, item_kinds):
                    fail(path, lines, (*at, str(i)), f"{dotted} entries must be {_PLURALS[item_kinds[0]]}")
        values = rule.get("additionalProperties")
        if isinstance(value, dict) and isinstance(values, dict) and "properties" not in resolve(values):
            value_kinds = kinds_of(values)
            for name, item in value.items():
                if not _fits(item, value_kinds):
                    fail(path, lines, (*at, name), f"'{dotted}.{name}' must be {_TYPE_NAMES[value_kinds[0]]}")


def kinds_of(rule: dict[str, Any]) -> tuple[type, ...]:
    """The Python types a value of `rule` may have (from its type, its choices, or its branches)."""
    rule = resolve(rule)
    if "type" in rule:
        names = [rule["type"]] if isinstance(rule["type"], str) else rule["type"]
        return tuple(kind for name in names for kind in _KINDS[name])
    if "enum" in rule or "const" in rule:
        return tuple(dict.fromkeys(type(choice) for choice in rule.get("enum", [rule.get("const")])))
    branches = rule.get("oneOf") or rule.get("anyOf") or []
    return tuple(dict.fromkeys(kind for branch in branches for kind in kinds_of(branch))) or (object,)


def _fits(value: Any, kinds: tuple[type, ...]) -> bool:
    return value is not None and (bool in kinds or not isinstance(value, bool)) and isinstance(value, kinds)


def _out_of_bounds(rule: dict[str, Any], value: Any) -> str | None:
    """How `value` misses the rule's bounds, in words; None when within them (NaN never is)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    low, high = rule.get("minimum"), rule.get("maximum")
    above, below = rule.get("exclusiveMinimum"), rule.get("exclusiveMaximum")
    inside = (
        (low is None or value >= low)
        and (high is None or value <= high)
        and (above is None or value > above)
        and (below is None or value < below)
        and value == value
    )
    if inside:
        return None
    if _SECONDS in rule.get("$refs", ()):
        return f"a number of seconds above {above}"
    if low is not None and high is not None:
        return f"from {low} to {high}"
    if low is not None:
        return f"at least {low}"
    parts = [f"above {above}" if above is not None else "", f"below {below}" if below is not None else ""]
    return " and ".join(part for part in parts if part)


def check_schema(data: Any, section: str, path: Path | str, lines: Positions, where: tuple[str, ...] = ()) -> None:
    """The schema itself over `data` (found at `where`), after the worded checks: what it refuses
    and they let through is still refused, at the nearest line."""
    for inside, message in errors(data, section)[:1]:
        dotted = ".".join((*where, *inside)) or "the config"
        where = (*where, *inside)
        fail(path, lines, where, f"'{dotted}' does not fit the schema: {message}")


def fail(path: Path | str, lines: Positions, where: tuple[str, ...], message: str) -> None:
    """Stop at `file:line:column` of `where`, or of the nearest key above it that has one."""
    raise ConfigError(f"{path}:{place(lines, where)}: {message}")
