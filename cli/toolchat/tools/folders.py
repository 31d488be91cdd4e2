"""Python plugin folders as tool sources: the user's folders and files, and the bundled folder.

Each module is imported for discovery in a child of the tool worker, with a time limit and its
output thrown away, so a module that hangs, exits or prints at import is listed as broken and
never touches toolchat. Schemas of modules that loaded are cached by file stamp; failures never
are. Calls run in children of the worker too (runner.py), each forked from a warm parent that
imported the module once (warm.py).
"""

from __future__ import annotations

import errno
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolchat import defaults
from toolchat.errors import ToolLoadError
from toolchat.tools.cache import SchemaCache
from toolchat.tools.isolation import worker
from toolchat.tools.model import Tool, ToolResult
from toolchat.tools.sources import RunLimits, SourceProblem


class PluginFolders:
    """The tools of Python plugin folders and files. Two modules defining one name is an error
    naming both files."""

    replaceable = False

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        project_dir: Path | None = None,
        cache: SchemaCache | None = None,
        label: str = "plugins",
        import_timeout: float = defaults.PLUGIN_IMPORT_TIMEOUT,
    ) -> None:
        self.label = label
        self.project_dir = (project_dir or Path.cwd()).resolve()
        self._tools: dict[str, Tool] = {}
        self._problems: list[SourceProblem] = []
        files: list[Path] = []
        for path in paths:
            files += [found for found in self._module_files(Path(path)) if found not in files]
        cached = {file: cache.get(file) for file in files} if cache is not None else {}
        fresh = [file for file in files if cached.get(file) is None]
        described = worker.describe_modules([str(file) for file in fresh], import_timeout) if fresh else {}
        for file in files:
            tools = cached.get(file)
            if tools is None:
                tools = self._described(file, described[str(file)], cache)
            for item in tools or []:
                self._add_tool(
                    Tool(
                        name=item["name"],
                        description=item["description"],
                        parameters=item["parameters"],
                        origin=self.origin(file),
                        source=file,
                        warnings=list(item["warnings"]),
                        accepts_extra=item["accepts_extra"],
                    )
                )
        if cache is not None:
            cache.save()

    def tools(self) -> list[Tool]:
        return list(self._tools.values())

    def problems(self) -> list[SourceProblem]:
        return list(self._problems)

    def run(self, tool: Tool, arguments: dict[str, Any], limits: RunLimits) -> ToolResult:
        return worker.run_call(str(tool.source), tool.name, arguments, limits)

    def stop(self, thread: int) -> None:
        worker.cancel_job_of(thread)  # the job's child and everything it started are killed

    def close(self) -> None:
        pass  # every call's processes end with the call

    def origin(self, module_file: Path) -> str:
        try:
            return str(module_file.relative_to(self.project_dir))
        except ValueError:
            return str(module_file)

    def _described(
        self, module_file: Path, outcome: dict[str, Any], cache: SchemaCache | None
    ) -> list[dict[str, Any]] | None:
        """The tools a fresh import found (cached), or None with the failure noted (never cached)."""
        if "failure" in outcome or not isinstance(outcome.get("tools"), list):
            self._problems.append(SourceProblem(self.origin(module_file), outcome.get("failure", "no answer")))
            if cache is not None:
                cache.forget(module_file)
            return None
        if cache is not None:
            cache.put(module_file, outcome["tools"])
        return outcome["tools"]

    def _add_tool(self, tool: Tool) -> None:
        previous = self._tools.get(tool.name)
        if previous is not None and previous.source != tool.source:
            raise ToolLoadError(
                f"two tools are named '{tool.name}': in {previous.source} and in {tool.source}", "rename one of them"
            )
        self._tools[tool.name] = tool

    def _module_files(self, path: Path) -> list[Path]:
        path = path.expanduser()
        if path.is_dir():
            return [found for entry in sorted(path.glob("*.py")) if (found := self._module_file(entry))]
        if path.is_file() and path.suffix == ".py":
            return [path.resolve()]
        if path.exists():
            raise ToolLoadError(f"{path} is neither a folder nor a .py file", "pass a plugin folder or a .py file")
        if path.is_symlink():
            raise ToolLoadError(f"tool path {path} is a symbolic link to nothing")
        raise ToolLoadError(f"tool path not found: {path}")

    def _module_file(self, entry: Path) -> Path | None:
        """The module behind a folder entry, or None: hidden and `_private` files, editors' lock links
        (`.#name.py`) and anything that is not a readable regular file are skipped (the last with a
        warning)."""
        if entry.name.startswith(("_", ".")):
            return None
        try:
            resolved = entry.resolve(strict=True)
        except RuntimeError:  # Python < 3.13 reports a loop this way
            resolved = None
            reason = "a symbolic link loop; skipped"
        except OSError as exc:
            resolved = None
            if exc.errno == errno.ELOOP:
                reason = "a symbolic link loop; skipped"
            elif entry.is_symlink():
                reason = "a symbolic link to nothing; skipped"
            else:
                reason = f"unreadable ({exc.strerror}); skipped"
        if resolved is not None:
            if resolved.is_file():
                return resolved
            reason = "not a regular file; skipped"
        self._problems.append(SourceProblem(self.origin(entry.absolute()), reason))
        return None


class BundledFolder(PluginFolders):
    """The tools that ship with toolchat. A user's tool of the same name replaces one (noted)."""

    replaceable = True

    def __init__(
        self, *, cache: SchemaCache | None = None, import_timeout: float = defaults.PLUGIN_IMPORT_TIMEOUT
    ) -> None:
        super().__init__([bundled_tools_dir()], cache=cache, label="bundled", import_timeout=import_timeout)

    def origin(self, module_file: Path) -> str:
        return "bundled"


def bundled_tools_dir() -> Path:
    """The bundled plugin folder, as installed (`toolchat/bundled_tools`)."""
    spec = importlib.util.find_spec("toolchat.bundled_tools")
    if spec is None or not spec.submodule_search_locations:
        raise ToolLoadError("the bundled tools are missing from this installation")
    return Path(list(spec.submodule_search_locations)[0])
