"""Discovering tools: plugin folders and files become a Registry of Tools.

Bundled tools load through the same door as the user's; a user tool with a bundled tool's name
replaces it; two user modules defining one name is an error naming both files.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable, Sequence

from toolchat.errors import ToolLoadError
from toolchat.tools.cache import SchemaCache
from toolchat.tools.model import Tool
from toolchat.tools.schema import function_schema


@dataclass
class LoadFailure:
    source: Path
    reason: str


@dataclass
class Registry:
    tools: dict[str, Tool] = field(default_factory=dict)
    failures: list[LoadFailure] = field(default_factory=list)
    replaced: dict[str, Path] = field(default_factory=dict)  # name -> the bundled file it replaced

    def get(self, name: str) -> Tool | None:
        return self.tools.get(name)

    def names(self) -> list[str]:
        return list(self.tools)

    def definitions(self) -> list[dict[str, Any]]:
        return [tool.definition() for tool in self.tools.values()]

    def without(self, names: Iterable[str]) -> Registry:
        drop = set(names)
        kept = {n: t for n, t in self.tools.items() if n not in drop}
        return Registry(kept, self.failures, self.replaced)


def bundled_tools_dir() -> Path:
    """The bundled plugin folder, as installed (`toolchat/bundled_tools`)."""
    spec = importlib.util.find_spec("toolchat.bundled_tools")
    if spec is None or not spec.submodule_search_locations:
        raise ToolLoadError("the bundled tools are missing from this installation")
    return Path(list(spec.submodule_search_locations)[0])


def discover(paths: Sequence[Path], *, bundled: bool = True, cache: SchemaCache | None = None) -> Registry:
    """Load tools from the bundled folder (unless `bundled` is False) and then from `paths`.
    With a cache, unchanged modules are not imported until one of their tools runs."""
    registry = Registry()
    if bundled:
        for module_file in _module_files(bundled_tools_dir()):
            for tool in _load_cached(module_file, registry, True, cache):
                registry.tools[tool.name] = tool
    owners: dict[str, Path] = {}
    for path in paths:
        for module_file in _module_files(path):
            for tool in _load_cached(module_file, registry, False, cache):
                _add_user_tool(registry, owners, tool)
    if cache is not None:
        cache.save()
    return registry


def load(paths: Sequence[Path], bundled: bool, cache_dir: Path) -> Registry:
    """The tools the settings name, with schemas cached in `cache_dir`."""
    return discover(paths, bundled=bundled, cache=SchemaCache(cache_dir / "tool-schemas.json"))


def _load_cached(module_file: Path, registry: Registry, bundled: bool, cache: SchemaCache | None) -> list[Tool]:
    entry = cache.get(module_file) if cache is not None else None
    if entry is None:
        failures = len(registry.failures)
        tools = _load_file(module_file, registry, bundled=bundled)
        if cache is not None:
            failure = registry.failures[-1].reason if len(registry.failures) > failures else None
            cache.put(module_file, [_cached_form(t) for t in tools], failure)
        return tools
    if entry["failure"]:
        registry.failures.append(LoadFailure(module_file, entry["failure"]))
        return []
    return [_from_cache(item, module_file, bundled) for item in entry["tools"]]


def _cached_form(tool: Tool) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "parameters": tool.parameters,
            "warnings": tool.warnings, "accepts_extra": tool.accepts_extra}


def _from_cache(item: dict[str, Any], module_file: Path, bundled: bool) -> Tool:
    name = item["name"]

    def load() -> Tool:
        for tool in _tools_of(_import(module_file), module_file, bundled):
            if tool.name == name:
                return tool
        raise LookupError(f"{module_file} no longer defines {name}")

    return Tool(name=name, description=item["description"], parameters=item["parameters"], func=None,
                source=module_file, bundled=bundled, warnings=list(item["warnings"]),
                accepts_extra=item["accepts_extra"], loader=load)


def _add_user_tool(registry: Registry, owners: dict[str, Path], tool: Tool) -> None:
    if tool.name in owners and owners[tool.name] != tool.source:
        raise ToolLoadError(
            f"two tools are named '{tool.name}': in {owners[tool.name]} and in {tool.source}",
            "rename one of them",
        )
    previous = registry.tools.get(tool.name)
    if previous is not None and previous.bundled:
        registry.replaced[tool.name] = previous.source
    owners[tool.name] = tool.source
    registry.tools[tool.name] = tool


def _module_files(path: Path) -> list[Path]:
    path = path.expanduser()
    if path.is_dir():
        return sorted(p.resolve() for p in path.glob("*.py") if not p.name.startswith("_"))
    if path.is_file() and path.suffix == ".py":
        return [path.resolve()]
    if path.exists():
        raise ToolLoadError(f"{path} is neither a folder nor a .py file", "pass a plugin folder or a .py file")
    raise ToolLoadError(f"tool path not found: {path}")


def _load_file(module_file: Path, registry: Registry, *, bundled: bool) -> list[Tool]:
    try:
        module = _import(module_file, fresh=True)
    except BaseException as exc:  # a plugin must never take toolchat down at import
        if isinstance(exc, KeyboardInterrupt):
            raise
        registry.failures.append(LoadFailure(module_file, _reason(exc)))
        return []
    try:
        return _tools_of(module, module_file, bundled)
    except ToolLoadError as exc:
        registry.failures.append(LoadFailure(module_file, exc.message))
        return []


def _import(module_file: Path, fresh: bool = False) -> ModuleType:
    """The plugin module; `fresh` imports it again even if this process has it (the file changed)."""
    digest = hashlib.sha1(str(module_file).encode()).hexdigest()[:10]
    name = f"toolchat_plugin_{digest}_{module_file.stem}"
    if name in sys.modules and not fresh:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, module_file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {module_file}")
    module = importlib.util.module_from_spec(spec)
    folder = str(module_file.parent)
    if folder not in sys.path:
        sys.path.append(folder)  # lets a plugin import its sibling helper modules
    sys.modules[name] = module
    try:
        # a plugin printing at import must not corrupt toolchat's own output (JSON on stdout)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _reason(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    if isinstance(exc, SystemExit):
        return f"the module called sys.exit({exc.code!r}) while loading"
    return f"{type(exc).__name__}: {exc}"


def _tools_of(module: ModuleType, module_file: Path, bundled: bool) -> list[Tool]:
    explicit = getattr(module, "TOOLS", None)
    if explicit is not None:
        return [_explicit_tool(entry, module, module_file, bundled) for entry in explicit]
    tools = []
    for attr, value in vars(module).items():
        if attr.startswith("_") or not inspect.isfunction(value):
            continue
        if value.__module__ != module.__name__:
            continue  # imported into the module, not defined in it
        tools.append(_function_tool(value, module_file, bundled))
    return tools


def _function_tool(func: Any, module_file: Path, bundled: bool) -> Tool:
    schema = function_schema(func)
    return Tool(
        name=schema.name,
        description=schema.description,
        parameters=schema.parameters,
        func=func,
        source=module_file,
        bundled=bundled,
        warnings=schema.warnings,
        accepts_extra=schema.accepts_extra,
        enum_params=schema.enum_params,
    )


def _explicit_tool(entry: Any, module: ModuleType, module_file: Path, bundled: bool) -> Tool:
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
    parameters = spec.get("parameters") or {"type": "object", "properties": {}}
    return Tool(
        name=name,
        description=spec.get("description", ""),
        parameters=parameters,
        func=func,
        source=module_file,
        bundled=bundled,
        accepts_extra=parameters.get("additionalProperties") not in (None, False),
    )
