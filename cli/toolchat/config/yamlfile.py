"""Reading a config file's YAML safely, before anything trusts it: one read of bounded size whose
bytes are both parsed and hashed, depth and alias limits (a billion-laughs file is refused, not
expanded), keys written twice refused at every level, and syntax errors told in words at the line
where the problem opened (an unclosed bracket or quote), never past the end of the file."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolchat.errors import ConfigError

MAX_BYTES = 1_000_000  # a config file is a few hundred bytes; anything near this is not one
MAX_DEPTH = 32  # nesting of mappings and lists
MAX_NODES = 20_000  # values after aliases are followed: bounds what `*alias` can multiply
_NAMED = ("mcp_servers", "profiles")  # sections whose keys are names the user chose
_OPENERS = {"while parsing a flow sequence": "'['", "while parsing a flow mapping": "'{'"}


@dataclass
class Parsed:
    data: Any  # None for an empty file
    node: Any  # the yaml node tree (for line numbers), None for an empty file
    digest: str  # sha256 of exactly the bytes parsed


def read_bytes(path: Path) -> bytes:
    """At most MAX_BYTES of `path`, read once; a larger file is refused."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{path}: the config file is larger than {MAX_BYTES // 1000} kB; refused")
    return raw


def decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        at = _offset(raw[: exc.start].decode("utf-8"))  # valid up to the bad byte
        raise ConfigError(f"{path}:{at}: the file is not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None


def parse(path: Path) -> Parsed:
    """Parse `path` once; every refusal is a ConfigError naming file:line:column."""
    import yaml

    raw = read_bytes(path)
    text = decode(path, raw)
    try:
        _check_shape(text, path)
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return Parsed(None, None, hashlib.sha256(raw).hexdigest())
            _check_duplicates(node, path)
            _names_as_text(node)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError(describe_error(exc, path, text)) from None
    except RecursionError:  # a guard above failed; still a config error, never a crash
        raise ConfigError(f"{path}: the config is nested too deeply") from None
    return Parsed(data, node, hashlib.sha256(raw).hexdigest())


def _check_shape(text: str, path: Path) -> None:
    """Depth and alias count from the event stream (PyYAML's parser does not recurse; its composer does)."""
    import yaml

    depth = nodes = 0
    sizes: dict[str, int] = {}  # anchor -> values under it, so an alias counts what it repeats
    open_anchors: list[tuple[str | None, int]] = []
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(
                    f"{path}:{_here(event.start_mark)}: the config is nested more than {MAX_DEPTH} levels deep; refused"
                )
            open_anchors.append((event.anchor, nodes))
            nodes += 1
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
            anchor, start = open_anchors.pop()
            if anchor:
                sizes[anchor] = nodes - start
        elif isinstance(event, yaml.ScalarEvent):
            nodes += 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            nodes += sizes.get(event.anchor, 1)
        if nodes > MAX_NODES:
            raise ConfigError(
                f"{path}:{_here(event.start_mark)}: the config expands to more than {MAX_NODES} "
                "values (aliases repeating aliases?); refused"
            )


def _check_duplicates(node: Any, path: Path, where: tuple[str, ...] = ()) -> None:
    import yaml

    stack = [(node, where)]
    seen_nodes: set[int] = set()
    while stack:
        current, at = stack.pop()
        if id(current) in seen_nodes:  # an alias: its keys were checked where it was written
            continue
        seen_nodes.add(id(current))
        if isinstance(current, yaml.MappingNode):
            first: dict[str, int] = {}
            for key_node, value_node in current.value:
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
                if key in first and key != "<<":
                    dotted = ".".join((*at, key))
                    here = _here(key_node.start_mark)
                    raise ConfigError(f"{path}:{here}: '{dotted}' is set twice (first on line {first[key]})")
                first.setdefault(key, key_node.start_mark.line + 1)
                stack.append((value_node, (*at, key)))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((item, (*at, str(i))) for i, item in enumerate(current.value))


def _names_as_text(node: Any) -> None:
    """The names under `mcp_servers` and `profiles` stay as written: YAML 1.1 would read a server
    called `off:`, `no:` or `on:` as false or true, and `1:` as a number."""
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return
    for key_node, value_node in node.value:
        if key_node.value in _NAMED and isinstance(value_node, yaml.MappingNode):
            for name_node, _ in value_node.value:
                if isinstance(name_node, yaml.ScalarNode):
                    name_node.tag = "tag:yaml.org,2002:str"


def line_count(text: str) -> int:
    """Lines as YAML counts them (its line breaks), at least 1."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x85", "\n")
    text = text.replace("\u2028", "\n").replace("\u2029", "\n")
    return text.count("\n") + (0 if text.endswith("\n") else 1) or 1


def describe_error(exc: Exception, path: Path, text: str) -> str:
    """`file:line:column: what is wrong`, in words, at a line that exists in the file."""
    import yaml

    last = line_count(text)
    if isinstance(exc, yaml.reader.ReaderError):
        at = _offset(text[: exc.position], last=last)
        return (
            f"{path}:{at}: the file holds a character YAML does not accept (U+{exc.character:04X})"
            if isinstance(exc.character, int)
            else f"{path}:{at}: broken YAML: {exc.reason}"
        )
    problem = str(getattr(exc, "problem", None) or exc)
    context = getattr(exc, "context", None) or ""
    mark, opened = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
    at_end = "end of stream" in problem or "<stream end>" in problem
    if opened is not None and context == "while scanning a quoted scalar" and at_end:
        return f"{_at(path, opened, last)}: this quoted string is never closed"
    if at_end and (unclosed := _unclosed_flow(text)) is not None:
        return f"{_at(path, unclosed[1], last)}: '{unclosed[0]}' is never closed"
    if "'\\t'" in problem or (mark is not None and _tab_indented(text, mark.line)):
        return f"{_at(path, mark, last)}: tabs cannot indent YAML; use spaces"
    words = (
        f"broken YAML: {context}, {problem}" if problem.startswith("but ") and context else f"broken YAML: {problem}"
    )
    if opened is not None and context in _OPENERS:
        words += f" (inside the {_OPENERS[context]} opened on line {opened.line + 1}, column {opened.column + 1})"
    if mark is None or mark.line + 1 > last:
        mark = opened if opened is not None and opened.line + 1 <= last else mark
    return f"{_at(path, mark, last)}: {words}"


def _unclosed_flow(text: str) -> tuple[str, Any] | None:
    """The innermost '[' or '{' still open where the tokens stop, with its mark."""
    import yaml

    stack: list[tuple[str, Any]] = []
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, (yaml.FlowSequenceStartToken, yaml.FlowMappingStartToken)):
                stack.append(("[" if isinstance(token, yaml.FlowSequenceStartToken) else "{", token.start_mark))
            elif isinstance(token, (yaml.FlowSequenceEndToken, yaml.FlowMappingEndToken)) and stack:
                stack.pop()
    except yaml.YAMLError:
        pass
    return stack[-1] if stack else None


def _at(path: Path, mark: Any, last: int) -> str:
    if mark is None:
        return str(path)
    if mark.line + 1 > last:  # past the end: the end of the last line, where the file stopped
        return f"{path}:{_offset((mark.buffer or '').rstrip(chr(0)), last=last)}"
    return f"{path}:{_here(mark)}"


def _here(mark: Any) -> str:
    return f"{mark.line + 1}:{mark.column + 1}"


_BREAKS = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def _offset(before: str, last: int | None = None) -> str:
    """`line:column` just after the text `before`, on line `last` at most."""
    lines = _BREAKS.split(before)  # YAML's line breaks: NEL and the Unicode separators too
    if last is not None and len(lines) > last:
        lines = lines[:last]
    return f"{len(lines)}:{len(lines[-1]) + 1}"


def _tab_indented(text: str, line: int) -> bool:
    lines = text.splitlines()
    return 0 <= line < len(lines) and "\t" in lines[line][: len(lines[line]) - len(lines[line].lstrip(" \t"))]
