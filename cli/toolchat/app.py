"""The Typer app: commands and options only, and the one place that maps errors to exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, List, Optional

import typer


from toolchat import __version__
from toolchat.env import Environment
from toolchat.errors import ExitStatus, ToolchatError

app = typer.Typer(
    name="toolchat",
    help="Chat with tool-calling language models; your Python functions are the tools.",
    add_completion=False,
    no_args_is_help=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
tools_app = typer.Typer(help="List, inspect and try the tools.", no_args_is_help=True)
app.add_typer(tools_app, name="tools")
sessions_app = typer.Typer(help="This project's chat sessions.", no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")
config_app = typer.Typer(help="Show, create, check and trust config files.", no_args_is_help=True)
app.add_typer(config_app, name="config")
mcp_app = typer.Typer(help="The MCP servers configured: their state and their logs.", no_args_is_help=True)
app.add_typer(mcp_app, name="mcp")
trace_app = typer.Typer(help="Read trace files written with --trace.", no_args_is_help=True)
app.add_typer(trace_app, name="trace")

ConfigOpt = Annotated[Optional[str], typer.Option("--config", "-c", help="Use this config file instead of discovering one.")]
ToolsOpt = Annotated[Optional[List[str]], typer.Option("--tools", "-t", help="A plugin folder or .py file (repeatable).")]
NoBundledOpt = Annotated[bool, typer.Option("--no-bundled-tools", help="Leave out the tools that ship with toolchat.")]
McpOpt = Annotated[Optional[List[str]], typer.Option("--mcp", help="An MCP server: a command line or an http(s) URL (repeatable).")]


def _version(value: bool) -> None:
    if value:
        print(f"toolchat {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
) -> None:
    """toolchat: a chat REPL for tool-calling models; `toolchat` alone is `toolchat chat`."""
    if ctx.invoked_subcommand is None:
        chat()


def _settings(config: Optional[str], on_untrusted: Any = None, **overrides: Any):
    from toolchat import config as config_module

    env = Environment()
    return config_module.load(_path(config), overrides, config_dir=env.config_dir, data_dir=env.data_dir, cwd=env.cwd,
                              environ=env.environ, on_untrusted=on_untrusted, notify=_notice)


def _notice(message: str) -> None:
    from toolchat.safety import clean

    print(f"toolchat: {clean(message)}", file=sys.stderr)


def _path(value: Optional[str]) -> Optional[Path]:
    """Paths arrive as text: typer's own Path handling imports pydantic, which slows start-up."""
    return Path(value) if value is not None else None


def _tool_settings(config: Optional[str], tools: Optional[List[str]], no_bundled: bool):
    cwd = Path.cwd()
    return _settings(
        config,
        tool_paths=[(cwd / p).resolve() for p in tools or []],
        bundled_tools=False if no_bundled else None,
    )


def _consoles():
    from toolchat.render import console_for

    return console_for(sys.stdout), console_for(sys.stderr, stderr=True)


@tools_app.command("list")
def tools_list(tools: ToolsOpt = None, no_bundled_tools: NoBundledOpt = False, config: ConfigOpt = None) -> None:
    """The tools found, where each came from, and modules that failed to load."""
    from toolchat import tools_cmd

    settings = _tool_settings(config, tools, no_bundled_tools)
    out, _ = _consoles()
    tools_cmd.list_tools(_registry(settings, False), settings, out)


@tools_app.command("show")
def tools_show(name: str, tools: ToolsOpt = None, no_bundled_tools: NoBundledOpt = False, config: ConfigOpt = None) -> None:
    """One tool: description, parameters, source file."""
    from toolchat import tools_cmd

    settings = _tool_settings(config, tools, no_bundled_tools)
    out, _ = _consoles()
    registry = _registry(settings, False)
    tools_cmd.show_tool(tools_cmd.find_tool(registry, name), settings, out)


@tools_app.command("schema")
def tools_schema(
    names: Annotated[Optional[List[str]], typer.Argument(help="Tool names; all tools when none.")] = None,
    tools: ToolsOpt = None, no_bundled_tools: NoBundledOpt = False, config: ConfigOpt = None,
) -> None:
    """The OpenAI-format definitions as a JSON array."""
    from toolchat import tools_cmd

    settings = _tool_settings(config, tools, no_bundled_tools)
    print(tools_cmd.schema_json(_registry(settings, False), names or []))


@tools_app.command("run")
def tools_run(
    name: str,
    args: Annotated[Optional[str], typer.Option("--args", help="The arguments as a JSON object.")] = None,
    tools: ToolsOpt = None, no_bundled_tools: NoBundledOpt = False, config: ConfigOpt = None,
    tool_timeout: Annotated[Optional[float], typer.Option("--tool-timeout", help="Stop the tool after this many seconds.")] = None,
) -> None:
    """Run one tool directly, without a model."""
    from toolchat import tools_cmd

    settings = _tool_settings(config, tools, no_bundled_tools)
    if tool_timeout is not None:
        settings.tool_timeout = tool_timeout
    out, err = _consoles()
    code = tools_cmd.run_once(_registry(settings, False), name, args, settings, out, err)
    raise typer.Exit(code)


ProfileOpt = Annotated[Optional[str], typer.Option("--profile", "-p", help="A named profile from the config.")]
BackendOpt = Annotated[Optional[str], typer.Option("--backend", "-b", help="openai or local.")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="Model name at the endpoint; for local, a .gguf path or 'bundled'.")]
BaseUrlOpt = Annotated[Optional[str], typer.Option("--base-url", help="The OpenAI-compatible endpoint (also OPENAI_BASE_URL).")]
NoToolsOpt = Annotated[bool, typer.Option("--no-tools", help="Offer no tools.")]
SystemOpt = Annotated[Optional[str], typer.Option("--system", "-s", help="System prompt.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Approve every tool call.")]
AllowOpt = Annotated[Optional[List[str]], typer.Option("--allow", help="Approve this tool without asking (repeatable).")]
DenyOpt = Annotated[Optional[List[str]], typer.Option("--deny", help="Never offer this tool (repeatable).")]
ToolChoiceOpt = Annotated[Optional[str], typer.Option("--tool-choice", help="auto, required, none or a tool name, for the first model call of a turn.")]
MaxRoundsOpt = Annotated[Optional[int], typer.Option("--max-rounds", min=1, help="Most model calls in one turn (default 10).")]
ToolTimeoutOpt = Annotated[Optional[float], typer.Option("--tool-timeout", help="Stop a tool after this many seconds.")]
NoStreamOpt = Annotated[bool, typer.Option("--no-stream", help="Ask for whole replies instead of a stream.")]
TemperatureOpt = Annotated[Optional[float], typer.Option("--temperature")]
MaxTokensOpt = Annotated[Optional[int], typer.Option("--max-tokens")]
TraceOpt = Annotated[Optional[str], typer.Option("--trace", help="Write OpenTelemetry spans to this file (JSON lines).")]
TraceContentOpt = Annotated[bool, typer.Option("--trace-content", help="Put messages, tool arguments and results in the spans.")]




def _overrides(profile: Optional[str], backend: Optional[str], model: Optional[str], base_url: Optional[str],
               tools: Optional[List[str]], no_bundled_tools: bool, system: Optional[str], allow: Optional[List[str]],
               deny: Optional[List[str]], max_rounds: Optional[int], tool_timeout: Optional[float], no_stream: bool,
               temperature: Optional[float], max_tokens: Optional[int]) -> dict[str, Any]:
    """The flags `chat` and `ask` share, as config overrides."""
    cwd = Path.cwd()
    return dict(
        profile=profile, backend=backend, model=model, base_url=base_url,
        tool_paths=[(cwd / p).resolve() for p in tools or []],
        bundled_tools=False if no_bundled_tools else None, system=system, allow=allow or [], deny=deny or [],
        max_rounds=max_rounds, tool_timeout=tool_timeout, stream=False if no_stream else None,
        temperature=temperature, max_tokens=max_tokens,
    )


def _trace(trace: Optional[str], trace_content: bool) -> dict[str, Any]:
    return {"trace": (Path.cwd() / trace).resolve() if trace else None, "trace_content": trace_content or None}


def _registry(settings: Any, no_tools: bool, notify: Any = None, waits: bool = True) -> Any:
    from toolchat.tools import Registry
    from toolchat.tools.registry import load

    if no_tools:
        return Registry()
    registry = load(settings.tool_paths, settings.bundled_tools, Environment().cache_dir, settings.project_dir)
    if settings.mcp_servers:  # the MCP SDK is imported only when a server is configured
        from toolchat.mcp.wiring import attach

        attach(registry, settings, Environment(), notify, waits=waits)  # no notify: the caller lists problems
    return registry


def _note(message: str) -> None:
    from toolchat.safety import clean

    print(f"toolchat: {clean(message)}", file=sys.stderr, flush=True)


def _mcp_flags(values: Optional[List[str]]) -> list:
    from toolchat.mcp import parse_flags

    return parse_flags(values) if values else []


@app.command()
def ask(
    prompt: Annotated[Optional[List[str]], typer.Argument(help="The question; '-' or a pipe appends stdin.")] = None,
    config: ConfigOpt = None, profile: ProfileOpt = None, backend: BackendOpt = None, model: ModelOpt = None,
    base_url: BaseUrlOpt = None, tools: ToolsOpt = None, no_tools: NoToolsOpt = False,
    no_bundled_tools: NoBundledOpt = False, system: SystemOpt = None, yes: YesOpt = False, allow: AllowOpt = None,
    deny: DenyOpt = None, tool_choice: ToolChoiceOpt = None, max_rounds: MaxRoundsOpt = None,
    tool_timeout: ToolTimeoutOpt = None, no_stream: NoStreamOpt = False, temperature: TemperatureOpt = None,
    max_tokens: MaxTokensOpt = None, mcp: McpOpt = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object: answer, messages, calls, usage.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No tool log on stderr.")] = False,
    trace: TraceOpt = None, trace_content: TraceContentOpt = False,
) -> None:
    """One question, tools allowed, the answer on stdout."""
    from toolchat.ask import AskOptions, run_ask

    settings = _settings(config, **_overrides(profile, backend, model, base_url, tools, no_bundled_tools, system,
                                              allow, deny, max_rounds, tool_timeout, no_stream, temperature, max_tokens),
                         mcp_servers=_mcp_flags(mcp), **_trace(trace, trace_content))
    options = AskOptions(prompt or [], json_output, quiet, tool_choice)
    registry = _registry(settings, no_tools, _note)
    try:
        raise typer.Exit(run_ask(settings, registry, options, Environment(), yes))
    finally:
        registry.close()  # MCP servers stop, bounded, whatever ended the run


@app.command()
def chat(
    config: ConfigOpt = None, profile: ProfileOpt = None, backend: BackendOpt = None, model: ModelOpt = None,
    base_url: BaseUrlOpt = None, tools: ToolsOpt = None, no_tools: NoToolsOpt = False,
    no_bundled_tools: NoBundledOpt = False, system: SystemOpt = None, yes: YesOpt = False, allow: AllowOpt = None,
    deny: DenyOpt = None, tool_choice: ToolChoiceOpt = None, max_rounds: MaxRoundsOpt = None,
    tool_timeout: ToolTimeoutOpt = None, no_stream: NoStreamOpt = False, temperature: TemperatureOpt = None,
    max_tokens: MaxTokensOpt = None, mcp: McpOpt = None,
    resume: Annotated[bool, typer.Option("--continue", help="Resume this project's last session.")] = False,
    session: Annotated[Optional[str], typer.Option("--session", help="Use (or resume) the session of this name.")] = None,
    trace: TraceOpt = None, trace_content: TraceContentOpt = False,
) -> None:
    """The interactive REPL (what `toolchat` alone runs)."""
    from toolchat import repl
    from toolchat.backends.factory import create_backend
    from toolchat.chat import Chat, ChatOptions
    from toolchat.safety import clean

    env = Environment()
    repl.require_terminal(env)
    console = repl.console_for_chat()
    overrides = _overrides(profile, backend, model, base_url, tools, no_bundled_tools, system, allow, deny,
                           max_rounds, tool_timeout, no_stream, temperature, max_tokens) | _trace(trace, trace_content)
    overrides["mcp_servers"] = _mcp_flags(mcp)
    settings = _settings(config, on_untrusted=repl.ask_trust(console), **overrides)
    notify = lambda message: console.print(clean(message), style="dim", markup=False)  # noqa: E731
    registry = _registry(settings, no_tools, notify, waits=False)  # the prompt does not wait for MCP servers

    def reload(new_profile: Optional[str], new_model: Optional[str]):
        """/model and /profile: the same flags, another profile or model."""
        fresh = _settings(config, on_untrusted=lambda declined: False,  # asked once, at start
                          **{**overrides, "profile": new_profile or overrides["profile"], "model": new_model})
        return fresh, create_backend(fresh, env, notify)

    with console.status("loading the model…" if settings.backend == "local" else "connecting…"):
        model_backend = create_backend(settings, env, notify)
    options = ChatOptions(resume, session, tool_choice, yes)
    try:
        raise typer.Exit(repl.run(Chat(env, settings, registry, model_backend, options, console, reload), env))
    finally:
        registry.close()


@app.command()
def serve(
    config: ConfigOpt = None, profile: ProfileOpt = None, backend: BackendOpt = None, model: ModelOpt = None,
    base_url: BaseUrlOpt = None, tools: ToolsOpt = None, no_tools: NoToolsOpt = False,
    no_bundled_tools: NoBundledOpt = False, system: SystemOpt = None, yes: YesOpt = False, allow: AllowOpt = None,
    deny: DenyOpt = None, max_rounds: MaxRoundsOpt = None, tool_timeout: ToolTimeoutOpt = None,
    temperature: TemperatureOpt = None, max_tokens: MaxTokensOpt = None,
    host: Annotated[str, typer.Option("--host", help="The address to listen on; any but loopback needs --api-key-env.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="The port to listen on.")] = 8000,
    api_key_env: Annotated[Optional[str], typer.Option("--api-key-env", help="A variable holding the key clients must send (Bearer).")] = None,
    max_queue: Annotated[int, typer.Option("--max-queue", min=0, help="Requests that may wait for the local model; more get 429.")] = 8,
    time_limit: Annotated[float, typer.Option("--time-limit", min=1, help="Seconds one request may take in all.")] = 600.0,
    trace: TraceOpt = None, trace_content: TraceContentOpt = False, mcp: McpOpt = None,
) -> None:
    """An OpenAI-compatible endpoint (/v1/chat/completions) that runs this project's tools server-side."""
    from toolchat.serve import ServeOptions, run_serve

    overrides = _overrides(profile, backend, model, base_url, tools, no_bundled_tools, system, allow, deny,
                           max_rounds, tool_timeout, False, temperature, max_tokens) | _trace(trace, trace_content)
    overrides["mcp_servers"] = _mcp_flags(mcp)
    settings = _settings(config, **overrides)
    options = ServeOptions(host, port, api_key_env, yes, max_queue, time_limit)
    registry = _registry(settings, no_tools)
    try:
        raise typer.Exit(run_serve(settings, lambda name: _settings(config, **{**overrides, "profile": name}),
                                   registry, options, Environment()))
    finally:
        registry.close()  # MCP servers stop with the server


@app.command()
def models(config: ConfigOpt = None, profile: ProfileOpt = None, backend: BackendOpt = None,
           base_url: BaseUrlOpt = None) -> None:
    """Models the endpoint lists (/v1/models), or the local GGUF files and the bundled one."""
    env = Environment()
    settings = _settings(config, profile=profile, backend=backend, base_url=base_url)
    from toolchat.backends.factory import list_models
    from toolchat.safety import clean

    for line in list_models(settings, env):
        print(clean(line))  # ids from a server, file names from the project: no escape reaches the terminal


@config_app.command("show")
def config_show(config: ConfigOpt = None, profile: ProfileOpt = None) -> None:
    """The merged config in force, secrets hidden, and where each value came from."""
    from toolchat import config as config_module
    from toolchat import config_cmd

    env = Environment()
    settings = config_module.load(_path(config), {"profile": profile}, config_dir=env.config_dir, data_dir=env.data_dir,
                                  cwd=env.cwd, environ=env.environ, check_trust=False, notify=_notice)
    config_cmd.show(settings, env, _consoles()[0])


@config_app.command("init")
def config_init() -> None:
    """Write a commented toolchat.yaml into the current folder."""
    from toolchat import config_cmd

    config_cmd.init(Path.cwd(), _consoles()[0])


@config_app.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of toolchat.yaml, for editors."""
    from toolchat import config_cmd

    print(config_cmd.schema_text(), end="")


@config_app.command("validate")
def config_validate(path: Annotated[Optional[str], typer.Argument(help="The file; else the one in force.")] = None) -> None:
    """Check a config file; exit 2 with file:line on the first error."""
    from toolchat import config_cmd

    config_cmd.validate(_path(path), Environment(), _consoles()[0])


@config_app.command("trust")
def config_trust(path: Annotated[Optional[str], typer.Argument(help="The file; else this project's.")] = None) -> None:
    """Trust a project config (by path and content) after showing what it sets."""
    from toolchat import config_cmd

    config_cmd.trust(_path(path), Environment(), _consoles()[0])


@config_app.command("path")
def config_path(config: ConfigOpt = None) -> None:
    """The config files in force."""
    from toolchat import config as config_module
    from toolchat import config_cmd

    env = Environment()
    settings = config_module.load(_path(config), {}, config_dir=env.config_dir, data_dir=env.data_dir, cwd=env.cwd,
                                  environ=env.environ, check_trust=False, notify=_notice)
    for line in config_cmd.file_lines(settings, env):
        print(line)


@mcp_app.command("list")
def mcp_list(mcp: McpOpt = None, config: ConfigOpt = None) -> None:
    """Each MCP server: transport, state, start time and tools, or the error and its stderr."""
    from toolchat import mcp_cmd
    from toolchat.mcp import parse_flags

    env = Environment()
    settings = _settings(config, mcp_servers=parse_flags(mcp or []))
    raise typer.Exit(mcp_cmd.list_servers(settings.mcp_servers, settings.project_dir, env, _consoles()[0],
                                          settings.secrets))


@mcp_app.command("logs")
def mcp_logs(name: Annotated[str, typer.Argument(help="The server's name.")], mcp: McpOpt = None,
             config: ConfigOpt = None) -> None:
    """What one MCP server wrote to stderr (kept in the data dir, never shown in the chat)."""
    from toolchat import mcp_cmd
    from toolchat.mcp import parse_flags

    settings = _settings(config, mcp_servers=parse_flags(mcp or []))
    sys.stdout.write(mcp_cmd.show_log(name, settings.mcp_servers, Environment().data_dir, settings.secrets))


@sessions_app.command("list")
def sessions_list(config: ConfigOpt = None) -> None:
    """This project's sessions, oldest first: id, when, messages, first question."""
    from toolchat import sessions_cmd

    env = Environment()
    settings = _settings(config)
    sessions_cmd.list_sessions(env.data_dir, settings.project_dir, _consoles()[0])


@sessions_app.command("show")
def sessions_show(session_id: Annotated[str, typer.Argument(help="An id from `toolchat sessions list`.")],
                  config: ConfigOpt = None) -> None:
    """One session's messages."""
    from toolchat import sessions_cmd

    env = Environment()
    settings = _settings(config)
    sessions_cmd.show_session(env.data_dir, settings.project_dir, session_id, _consoles())


@trace_app.command("show")
def trace_show(file: Annotated[str, typer.Argument(help="A file written with --trace or config `trace:`.")],
               last: Annotated[int, typer.Option("--last", min=0, help="Only the last N traces (0: all).")] = 0) -> None:
    """Each trace in the file as a tree: spans, durations, tokens, tool outcomes."""
    from toolchat import trace_cmd

    trace_cmd.show(Path(file), last, _consoles()[0])


def main(argv: Optional[List[str]] = None) -> int:
    """Run the CLI; every failure becomes one line on stderr and an exit code."""
    from toolchat.tools import worker

    worker.start()  # the tool worker is forked first, before any thread exists
    env = Environment()
    _sigterm_is_an_interrupt()
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0].startswith("-") and args[0] not in ("--help", "--version"):
        args.insert(0, "chat")  # `toolchat --base-url URL` is `toolchat chat --base-url URL`
    try:
        result = app(args=args, prog_name="toolchat", standalone_mode=False)
        return int(result or 0) if isinstance(result, int) else 0
    except ToolchatError as exc:
        _report(exc, env)
        return int(exc.exit_status)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        print("\ntoolchat: interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # click's usage errors, vendored or not
            exc.show()
            return ExitStatus.USAGE
        if env.debug:
            raise
        from toolchat.safety import clean

        print(f"toolchat: internal error: {clean(type(exc).__name__)}: {clean(str(exc))} "
              "(run with TOOLCHAT_DEBUG=1 for a traceback)", file=sys.stderr)
        return ExitStatus.BACKEND


def _sigterm_is_an_interrupt() -> None:
    """SIGTERM unwinds like Ctrl-C: running tools are stopped and the session file is intact."""
    import signal

    from toolchat.errors import Terminated

    def interrupt(signum: int, frame: Any) -> None:
        Terminated.requested = True
        raise Terminated

    try:
        signal.signal(signal.SIGTERM, interrupt)
        signal.signal(signal.SIGHUP, interrupt)  # a closed terminal too: MCP servers and tools are stopped
    except ValueError:  # not the main thread (embedded use)
        pass


def _report(exc: ToolchatError, env: Environment) -> None:
    from toolchat.safety import clean

    if env.debug:
        import traceback

        traceback.print_exc()
    print(f"toolchat: error: {clean(str(exc))}", file=sys.stderr)
