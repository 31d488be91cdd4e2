"""The Registry: the tools of every source merged, and each call sent back to the source that
offered it. Sources are Python plugin folders, the bundled folder (folders.py) and MCP servers;
the engine sees only the Registry.

A name offered by two sources is an error naming both, except that a tool of a `replaceable`
source (the bundled folder) gives way to the user's tool of that name, which is noted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from toolchat.errors import ToolLoadError
from toolchat.tools.cache import SchemaCache
from toolchat.tools.model import Tool, ToolResult, ToolStatus
from toolchat.tools.sources import RunLimits, SourceProblem, ToolSource


@dataclass
class _Merged:
    """What every view of one Registry shares."""

    sources: list[ToolSource] = field(default_factory=list)
    tools: dict[str, Tool] = field(default_factory=dict)
    owners: dict[str, ToolSource] = field(default_factory=dict)
    replaced: dict[str, Tool] = field(default_factory=dict)  # name -> the bundled tool it replaced
    clashes: list[SourceProblem] = field(default_factory=list)


class Registry:
    def __init__(
        self,
        sources: Iterable[ToolSource] = (),
        *,
        _merged: _Merged | None = None,
        _hidden: frozenset[str] = frozenset(),
    ) -> None:
        self._merged = _merged or _Merged()
        self._hidden = _hidden
        for source in sources:
            self.add(source)

    # ---- building ----

    def add(self, source: ToolSource) -> None:
        """Offer `source`'s tools too; a name another source already offers is a ToolLoadError naming
        both (unless one of them is replaceable)."""
        merged = self._merged
        tools, owners, replaced = dict(merged.tools), dict(merged.owners), dict(merged.replaced)
        _merge_into(tools, owners, replaced, source, source.tools(), clashes=None)
        merged.sources.append(source)
        merged.tools, merged.owners, merged.replaced = tools, owners, replaced

    def refresh(self) -> None:
        """Read every source's tools again (an MCP server's list may have changed). A new clash keeps
        the tool that came first and is listed among the problems."""
        merged = self._merged
        tools: dict[str, Tool] = {}
        owners: dict[str, ToolSource] = {}
        replaced: dict[str, Tool] = {}
        clashes: list[SourceProblem] = []
        for source in merged.sources:
            try:
                offered = list(source.tools())
            except Exception as exc:  # noqa: BLE001 - one source failing must not end the turn
                offered = [tool for name, tool in merged.tools.items() if merged.owners.get(name) is source]
                clashes.append(
                    SourceProblem(
                        getattr(source, "label", "a tool source"),
                        f"its tools could not be listed again ({type(exc).__name__}: {exc}); the last list is kept",
                    )
                )
            _merge_into(tools, owners, replaced, source, offered, clashes)
        merged.tools, merged.owners, merged.replaced, merged.clashes = tools, owners, replaced, clashes

    def close(self) -> None:
        """Stop whatever the sources started; safe to call twice."""
        for source in self._merged.sources:
            try:
                source.close()
            except Exception:  # noqa: BLE001 - one source failing to close must not keep the others open
                pass

    def without(self, names: Iterable[str]) -> Registry:
        """A view hiding `names` (denied tools); it follows refreshes of this registry."""
        return Registry(_merged=self._merged, _hidden=self._hidden | frozenset(names))

    # ---- reading ----

    @property
    def tools(self) -> dict[str, Tool]:
        return {name: tool for name, tool in self._merged.tools.items() if not matches(name, self._hidden)}

    @property
    def sources(self) -> list[ToolSource]:
        return list(self._merged.sources)

    @property
    def replaced(self) -> dict[str, Tool]:
        return {name: tool for name, tool in self._merged.replaced.items() if not matches(name, self._hidden)}

    def problems(self) -> list[SourceProblem]:
        """What the sources could not offer (modules that failed to load, servers that did not start)."""
        found = [problem for source in self._merged.sources for problem in source.problems()]
        return found + self._merged.clashes

    def get(self, name: str) -> Tool | None:
        return None if matches(name, self._hidden) else self._merged.tools.get(name)

    def names(self) -> list[str]:
        return list(self.tools)

    def definitions(self) -> list[dict[str, Any]]:
        return [tool.definition() for tool in self.tools.values()]

    # ---- running ----

    def run(self, tool: Tool, arguments: dict[str, Any], limits: RunLimits) -> ToolResult:
        """Run a validated, approved call on the source that offered `tool`; every outcome is a
        ToolResult (KeyboardInterrupt stops the call, then propagates)."""
        source = self._merged.owners.get(tool.name)
        if source is None or matches(tool.name, self._hidden):
            return ToolResult(ToolStatus.UNKNOWN, f"Error: there is no tool named '{tool.name}'")
        return source.run(tool, arguments, limits)

    def stop(self, tool: Tool, thread: int) -> None:
        """Stop the call of `tool` that thread `thread` (an ident) is running, from another thread: its
        `run` then returns soon, cancelled. A source that cannot (no `stop`) lets the call end."""
        stop = getattr(self._merged.owners.get(tool.name), "stop", None)
        if stop is not None:
            stop(thread)


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether `name` is one of `patterns` or fits one with `*` (`git__*`: every tool of MCP server git)."""
    return any(name == p or ("*" in p and fnmatchcase(name, p)) for p in patterns)


def _merge_into(
    tools: dict[str, Tool],
    owners: dict[str, ToolSource],
    replaced: dict[str, Tool],
    source: ToolSource,
    offered: Iterable[Tool],
    clashes: list[SourceProblem] | None,
) -> None:
    for tool in offered:
        owner = owners.get(tool.name)
        if owner is None or owner is source:
            tools[tool.name], owners[tool.name] = tool, source
        elif getattr(owner, "replaceable", False) and not getattr(source, "replaceable", False):
            replaced[tool.name] = tools[tool.name]
            tools[tool.name], owners[tool.name] = tool, source
        elif getattr(source, "replaceable", False) and not getattr(owner, "replaceable", False):
            replaced[tool.name] = tool
        elif clashes is None:
            raise ToolLoadError(
                f"two tools are named '{tool.name}': from {tools[tool.name].origin} and from {tool.origin}",
                "rename one of them, or leave one source out",
            )
        else:
            clashes.append(
                SourceProblem(
                    tool.origin,
                    f"its tool '{tool.name}' is also offered by {tools[tool.name].origin}; that one is kept",
                )
            )


def discover(
    paths: Sequence[Path], *, bundled: bool = True, cache: SchemaCache | None = None, project_dir: Path | None = None
) -> Registry:
    """A Registry of the bundled folder (unless `bundled` is False) and the plugin `paths`."""
    from toolchat.tools.folders import BundledFolder, PluginFolders

    registry = Registry()
    if bundled:
        registry.add(BundledFolder(cache=cache))
    if paths:
        registry.add(PluginFolders(paths, project_dir=project_dir, cache=cache))
    return registry


def load(paths: Sequence[Path], bundled: bool, cache_dir: Path, project_dir: Path | None = None) -> Registry:
    """The tools the settings name, with schemas cached in `cache_dir`."""
    return discover(paths, bundled=bundled, cache=SchemaCache(cache_dir / "tool-schemas.json"), project_dir=project_dir)
