"""What one MCP server entry says, once parsed and validated: the shared shape between the config
(which reads `mcp_servers` from toolchat.yaml, a `.mcp.json` file or `--mcp`) and the MCP tool
source (which starts and talks to the server)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from toolchat import defaults


@dataclass
class McpServerSpec:
    name: str
    type: str  # "stdio" | "http"
    command: str | None = None  # stdio
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict, repr=False)  # added to a minimal environment
    cwd: Path | None = None  # None: the project folder
    url: str | None = None  # http (Streamable HTTP)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    timeout: float | None = None  # per call; None: tools.timeout
    startup_timeout: float = defaults.MCP_STARTUP_TIMEOUT
    enabled: bool = True
    tools: list[str] | None = None  # the server's tool names to offer; None: all
    sandbox: bool = False  # stdio: writes confined to its cwd and temp folder (Linux: Landlock)
    network: bool = False  # with sandbox: may it open TCP connections
    origin: str = ""  # "file:line:column" or "command line", for messages
    unset: str | None = None  # "file:line:column: environment variable X is not set": said when it would start

    def describe(self) -> str:
        """The command line or URL, for trust prompts, `config show` and errors."""
        if self.type == "http":
            return f"{self.url}"
        import shlex

        return shlex.join([self.command or "", *self.args])
