"""A Python plugin module, as seen from inside a child of the tool worker: import it by file path,
describe its tools, and call one. toolchat's own process never imports a plugin."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

from toolchat.errors import ToolLoadError


def import_plugin(module_file: Path, code: CodeType | None = None) -> ModuleType:
    """The module at `module_file`, imported (from `code` if its source was compiled already); its
    folder joins sys.path so it can import siblings."""
    digest = hashlib.sha1(str(module_file).encode()).hexdigest()[:10]
    name = f"toolchat_plugin_{digest}_{module_file.stem}"
    spec = importlib.util.spec_from_file_location(name, module_file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {module_file}")
    module = importlib.util.module_from_spec(spec)
    folder = str(module_file.parent)
    if folder not in sys.path:
        sys.path.append(folder)
    sys.modules[name] = module
    if code is None:
        spec.loader.exec_module(module)
    else:
        exec(code, module.__dict__)
    return module


_compiled: dict[str, tuple[tuple[int, int], CodeType]] = {}


def compiled(module_file: str) -> CodeType | None:
    """The module's compiled source, kept by the worker between calls (compiling runs none of it);
    None if it does not compile (importing it then reports why)."""
    try:
        info = os.stat(module_file)
        stamp = (info.st_size, info.st_mtime_ns)
        if module_file in _compiled and _compiled[module_file][0] == stamp:
            return _compiled[module_file][1]
        with open(module_file, "rb") as source:
            code = compile(source.read(), module_file, "exec", dont_inherit=True)
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    _compiled[module_file] = (stamp, code)
    return code


def import_failure(exc: BaseException) -> str:
    """Why a module failed to import, in one line."""
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    if isinstance(exc, SystemExit):
        return f"the module called sys.exit({exc.code!r}) while loading"
    return f"{type(exc).__name__}: {exc}"


def describe(module: ModuleType) -> list[dict[str, Any]]:
    """Each tool of the module as name, description, parameters, warnings and accepts_extra."""
    from toolchat.tools.schema import function_schema

    described = []
    for name, func, definition in _entries(module):
        if definition is None:
            schema = function_schema(func)
            described.append(
                {
                    "name": schema.name,
                    "description": schema.description,
                    "parameters": schema.parameters,
                    "warnings": schema.warnings,
                    "accepts_extra": schema.accepts_extra,
                }
            )
            continue
        parameters = definition.get("parameters") or {"type": "object", "properties": {}}
        described.append(
            {
                "name": name,
                "description": definition.get("description", ""),
                "parameters": parameters,
                "warnings": [],
                "accepts_extra": parameters.get("additionalProperties") not in (None, False),
            }
        )
    return described


def function_of(module: ModuleType, name: str) -> Callable[..., Any]:
    for entry_name, func, _ in _entries(module):
        if entry_name == name:
            return func
    raise LookupError(f"the module no longer defines the tool '{name}'")


def _entries(module: ModuleType) -> list[tuple[str, Callable[..., Any], dict[str, Any] | None]]:
    """(name, function, explicit definition or None) for every tool of the module."""
    explicit = getattr(module, "TOOLS", None)
    if explicit is not None:
        return [_explicit(entry, module) for entry in explicit]
    return [
        (attr, value, None)
        for attr, value in vars(module).items()
        if not attr.startswith("_") and inspect.isfunction(value) and value.__module__ == module.__name__
    ]


def _explicit(entry: Any, module: ModuleType) -> tuple[str, Callable[..., Any], dict[str, Any]]:
    """One entry of a module's TOOLS list: a definition naming a module function, or a
    (definition, callable) pair."""
    func = None
    if isinstance(entry, (tuple, list)) and len(entry) == 2 and callable(entry[1]):
        entry, func = entry
    if not isinstance(entry, dict):
        raise ToolLoadError(f"TOOLS holds {type(entry).__name__}; expected a definition dict or (definition, function)")
    spec = entry.get("function", entry)
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise ToolLoadError("a definition in TOOLS has no name")
    func = func or getattr(module, name, None)
    if not callable(func):
        raise ToolLoadError(f"TOOLS defines '{name}' but the module has no function of that name")
    return name, func, spec


def call(func: Callable[..., Any], arguments: dict[str, Any]) -> Any:
    """Call `func` with validated JSON arguments: enum members made from their values, positional-only
    parameters passed by position, coroutines run to completion."""
    from toolchat.tools.schema import enum_params

    kwargs = dict(arguments)
    for name, enum_class in enum_params(func).items():
        if kwargs.get(name) is not None:
            kwargs[name] = enum_class(kwargs[name])
    args = _positional_only(func, kwargs)
    value = func(*args, **kwargs)
    if inspect.isawaitable(value):
        import asyncio  # only async tools pay for it

        async def wait() -> Any:
            return await value

        return asyncio.run(wait())
    return value


def _positional_only(func: Callable[..., Any], kwargs: dict[str, Any]) -> list[Any]:
    """Take the positional-only parameters out of `kwargs`, in order (defaults fill gaps)."""
    try:
        params = [p for p in inspect.signature(func).parameters.values() if p.kind is p.POSITIONAL_ONLY]
    except (TypeError, ValueError):
        return []
    given = [i for i, p in enumerate(params) if p.name in kwargs]
    if not given:
        return []
    return [kwargs.pop(p.name) if p.name in kwargs else p.default for p in params[: given[-1] + 1]]
