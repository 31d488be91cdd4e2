"""The Typer app: commands and options only, and the one place that maps errors to exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from toolchat import __version__
from toolchat.env import Environment
from toolchat.errors import ExitStatus, ToolchatError, UsageError

app = typer.Typer(
    name="toolchat",
    help="Chat with tool-calling language models; your Python functions are the tools.",
    add_completion=True,
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

ConfigOpt = Annotated[
    str | None, typer.Option("--config", "-c", help="Use this config file instead of discovering one.")
]
ToolsOpt = Annotated[list[str] | None, typer.Option("--tools", "-t", help="A plugin folder or .py file (repeatable).")]
NoBundledOpt = Annotated[bool, typer.Option("--no-bundled-tools", help="Leave out the tools that ship with toolchat.")]
McpOpt = Annotated[
    list[str] | None, typer.Option("--mcp", help="An MCP server: a command line or an http(s) URL (repeatable).")
]


def _version(ctx: typer.Context, value: bool) -> None:
    if value:
        _env(ctx).write(f"toolchat {__version__}\n")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    no_sandbox: Annotated[
        bool, typer.Option("--no-sandbox", help="Run tools unconfined this run (any command takes it).")
    ] = False,
) -> None:
    """toolchat: a chat REPL for tool-calling models; `toolchat` alone is `toolchat chat`."""
    _env(ctx).no_sandbox |= no_sandbox
    if ctx.invoked_subcommand is None:
        chat(ctx)


def _env(ctx: typer.Context) -> Environment:
    """The one Environment `main` made, handed down through Typer's context."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Environment) else Environment()


def _settings(
    env: Environment, config: str | None, on_untrusted: Any = None, check_trust: bool = True, **overrides: Any
):
    from toolchat.config import settings as config_module

    settings = config_module.load(
        _path(config),
        overrides,
        config_dir=env.config_dir,
        data_dir=env.data_dir,
        cwd=env.cwd,
        environ=env.environ,
        on_untrusted=on_untrusted,
        check_trust=check_trust,
        notify=lambda message: _notice(env, message),
    )
    if env.no_sandbox:
        settings.sandbox.mode, settings.origins["sandbox"] = "off", "--no-sandbox"
    _sandbox_warning(env, settings)
    return settings


_warned: set[int] = set()


def _sandbox_warning(env: Environment, settings: Any) -> None:
    """Once a run: the sandbox is asked for and this system cannot enforce it (never silent)."""
    from toolchat.sandbox.policy import warning

    message = warning(settings.sandbox)
    if message is not None and id(env) not in _warned:
        _warned.add(id(env))
        _notice(env, message)


def _notice(env: Environment, message: str) -> None:
    from toolchat.safety import clean

    env.write(f"toolchat: {clean(message)}\n", err=True)


def _seconds(value: float | None) -> float | None:
    """A number of seconds a user can mean: finite, above 0, at most a day (1e10 or nan is a typo)."""
    import math

    if value is not None and not (math.isfinite(value) and 0 < value <= 86_400):
        raise typer.BadParameter(f"{value:g} is not a number of seconds between 0 and 86400")
    return value


def _path(value: str | None) -> Path | None:
    """Paths arrive as text: typer's own Path handling imports pydantic, which slows start-up."""
    return Path(value) if value is not None else None


def _tool_settings(env: Environment, config: str | None, tools: list[str] | None, no_bundled: bool):
    return _settings(
        env,
        config,
        tool_paths=[(env.cwd / p).resolve() for p in tools or []],
        bundled_tools=False if no_bundled else None,
    )


@tools_app.command("list")
def tools_list(
    ctx: typer.Context, tools: ToolsOpt = None, no_bundled_tools: NoBundledOpt = False, config: ConfigOpt = None
) -> None:
    """The tools found, where each came from, and modules that failed to load."""
    from toolchat.commands import tools as tools_cmd

    env = _env(ctx)
    settings = _tool_settings(env, config, tools, no_bundled_tools)
    tools_cmd.list_tools(_registry(env, settings, False), settings, env.consoles()[0])


@tools_app.command("show")
def tools_show(
    ctx: typer.Context,
    name: str,
    tools: ToolsOpt = None,
    no_bundled_tools: NoBundledOpt = False,
    config: ConfigOpt = None,
) -> None:
    """One tool: description, parameters, source file."""
    from toolchat.commands import tools as tools_cmd

    env = _env(ctx)
    settings = _tool_settings(env, config, tools, no_bundled_tools)
    registry = _registry(env, settings, False)
    tools_cmd.show_tool(tools_cmd.find_tool(registry, name), settings, env.consoles()[0])


@tools_app.command("schema")
def tools_schema(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="Tool names; all tools when none.")] = None,
    tools: ToolsOpt = None,
    no_bundled_tools: NoBundledOpt = False,
    config: ConfigOpt = None,
) -> None:
    """The OpenAI-format definitions as a JSON array."""
    from toolchat.commands import tools as tools_cmd

    env = _env(ctx)
    settings = _tool_settings(env, config, tools, no_bundled_tools)
    env.write(tools_cmd.schema_json(_registry(env, settings, False), names or []) + "\n")


@tools_app.command("run")
def tools_run(
    ctx: typer.Context,
    name: str,
    args: Annotated[str | None, typer.Option("--args", help="The arguments as a JSON object.")] = None,
    tools: ToolsOpt = None,
    no_bundled_tools: NoBundledOpt = False,
    config: ConfigOpt = None,
    tool_timeout: Annotated[
        float | None, typer.Option("--tool-timeout", callback=_seconds, help="Stop the tool after this many seconds.")
    ] = None,
) -> None:
    """Run one tool directly, without a model."""
    from toolchat.commands import tools as tools_cmd

    env = _env(ctx)
    settings = _tool_settings(env, config, tools, no_bundled_tools)
    if tool_timeout is not None:
        settings.tool_timeout = tool_timeout
    out, err = env.consoles()
    code = tools_cmd.run_once(_registry(env, settings, False), name, args, settings, out, err)
    raise typer.Exit(code)


@app.command("sandbox")
def sandbox_report(
    ctx: typer.Context, tools: ToolsOpt = None, no_bundled_tools: NoBundledOpt = False, config: ConfigOpt = None
) -> None:
    """What this machine's sandbox enforces (Landlock, TCP) and each tool's sandbox."""
    from toolchat.commands import sandbox

    env = _env(ctx)
    settings = _tool_settings(env, config, tools, no_bundled_tools)
    sandbox.report(_registry(env, settings, False), settings, env.consoles()[0])


ProfileOpt = Annotated[str | None, typer.Option("--profile", "-p", help="A named profile from the config.")]
BackendOpt = Annotated[str | None, typer.Option("--backend", "-b", help="openai or local.")]
ModelOpt = Annotated[
    str | None, typer.Option("--model", "-m", help="Model name at the endpoint; for local, a .gguf path or 'bundled'.")
]
BaseUrlOpt = Annotated[
    str | None, typer.Option("--base-url", help="The OpenAI-compatible endpoint (also OPENAI_BASE_URL).")
]
NoToolsOpt = Annotated[bool, typer.Option("--no-tools", help="Offer no tools.")]
SystemOpt = Annotated[str | None, typer.Option("--system", "-s", help="System prompt.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Approve every tool call.")]
AllowOpt = Annotated[list[str] | None, typer.Option("--allow", help="Approve this tool without asking (repeatable).")]
DenyOpt = Annotated[list[str] | None, typer.Option("--deny", help="Never offer this tool (repeatable).")]
ToolChoiceOpt = Annotated[
    str | None,
    typer.Option("--tool-choice", help="auto, required, none or a tool name, for the first model call of a turn."),
]
MaxRoundsOpt = Annotated[
    int | None, typer.Option("--max-rounds", min=1, help="Most model calls in one turn (default 10).")
]
ToolTimeoutOpt = Annotated[
    float | None, typer.Option("--tool-timeout", callback=_seconds, help="Stop a tool after this many seconds.")
]
NoStreamOpt = Annotated[bool, typer.Option("--no-stream", help="Ask for whole replies instead of a stream.")]
TemperatureOpt = Annotated[float | None, typer.Option("--temperature")]
MaxTokensOpt = Annotated[int | None, typer.Option("--max-tokens")]
TraceOpt = Annotated[str | None, typer.Option("--trace", help="Write OpenTelemetry spans to this file (JSON lines).")]
TraceContentOpt = Annotated[
    bool, typer.Option("--trace-content", help="Put messages, tool arguments and results in the spans.")
]


def _overrides(
    env: Environment,
    *,
    profile: str | None,
    backend: str | None,
    model: str | None,
    base_url: str | None,
    tools: list[str] | None,
    no_bundled_tools: bool,
    system: str | None,
    allow: list[str] | None,
    deny: list[str] | None,
    max_rounds: int | None,
    tool_timeout: float | None,
    no_stream: bool,
    temperature: float | None,
    max_tokens: int | None,
) -> dict[str, Any]:
    """The flags `chat` and `ask` share, as config overrides."""
    return dict(
        profile=profile,
        backend=backend,
        model=model,
        base_url=base_url,
        tool_paths=[(env.cwd / p).resolve() for p in tools or []],
        bundled_tools=False if no_bundled_tools else None,
        system=system,
        allow=allow or [],
        deny=deny or [],
        max_rounds=max_rounds,
        tool_timeout=tool_timeout,
        stream=False if no_stream else None,
        temperature=temperature,
        max_tokens=max_tokens,
    )


def _trace(env: Environment, trace: str | None, trace_content: bool) -> dict[str, Any]:
    return {"trace": (env.cwd / trace).resolve() if trace else None, "trace_content": trace_content or None}


def _registry(env: Environment, settings: Any, no_tools: bool, notify: Any = None, waits: bool = True) -> Any:
    from toolchat.tools import Registry
    from toolchat.tools.registry import load

    if no_tools:
        return Registry()
    registry = load(settings.tool_paths, settings.bundled_tools, env.cache_dir, settings.project_dir)
    if settings.mcp_servers:  # the MCP SDK is imported only when a server is configured
        from toolchat.mcp.wiring import attach

        attach(registry, settings, env, notify, waits=waits)  # no notify: the caller lists problems
    return registry


def _mcp_flags(values: list[str] | None) -> list:
    from toolchat.mcp import parse_flags

    return parse_flags(values) if values else []


@app.command()
def ask(
    ctx: typer.Context,
    prompt: Annotated[list[str] | None, typer.Argument(help="The question; '-' or a pipe appends stdin.")] = None,
    config: ConfigOpt = None,
    profile: ProfileOpt = None,
    backend: BackendOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    tools: ToolsOpt = None,
    no_tools: NoToolsOpt = False,
    no_bundled_tools: NoBundledOpt = False,
    system: SystemOpt = None,
    yes: YesOpt = False,
    allow: AllowOpt = None,
    deny: DenyOpt = None,
    tool_choice: ToolChoiceOpt = None,
    max_rounds: MaxRoundsOpt = None,
    tool_timeout: ToolTimeoutOpt = None,
    no_stream: NoStreamOpt = False,
    temperature: TemperatureOpt = None,
    max_tokens: MaxTokensOpt = None,
    mcp: McpOpt = None,
    trace: TraceOpt = None,
    trace_content: TraceContentOpt = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object: answer, messages, calls, usage.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No tool log on stderr.")] = False,
) -> None:
    """One question, tools allowed, the answer on stdout."""
    from toolchat.ask import AskOptions, run_ask
    from toolchat.redact import redactor_for

    env = _env(ctx)
    settings = _settings(
        env,
        config,
        **_overrides(
            env,
            profile=profile,
            backend=backend,
            model=model,
            base_url=base_url,
            tools=tools,
            no_bundled_tools=no_bundled_tools,
            system=system,
            allow=allow,
            deny=deny,
            max_rounds=max_rounds,
            tool_timeout=tool_timeout,
            no_stream=no_stream,
            temperature=temperature,
            max_tokens=max_tokens,
        ),
        mcp_servers=_mcp_flags(mcp),
        **_trace(env, trace, trace_content),
    )
    options = AskOptions(prompt or [], json_output, quiet, tool_choice)
    registry = _registry(env, settings, no_tools, lambda message: _notice(env, message))
    try:
        raise typer.Exit(run_ask(settings, registry, options, env, yes, redactor_for(settings, env.environ)))
    finally:
        registry.close()  # MCP servers stop, bounded, whatever ended the run


@app.command()
def chat(
    ctx: typer.Context,
    config: ConfigOpt = None,
    profile: ProfileOpt = None,
    backend: BackendOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    tools: ToolsOpt = None,
    no_tools: NoToolsOpt = False,
    no_bundled_tools: NoBundledOpt = False,
    system: SystemOpt = None,
    yes: YesOpt = False,
    allow: AllowOpt = None,
    deny: DenyOpt = None,
    tool_choice: ToolChoiceOpt = None,
    max_rounds: MaxRoundsOpt = None,
    tool_timeout: ToolTimeoutOpt = None,
    no_stream: NoStreamOpt = False,
    temperature: TemperatureOpt = None,
    max_tokens: MaxTokensOpt = None,
    mcp: McpOpt = None,
    trace: TraceOpt = None,
    trace_content: TraceContentOpt = False,
    resume: Annotated[bool, typer.Option("--continue", help="Resume this project's last session.")] = False,
    session: Annotated[str | None, typer.Option("--session", help="Use (or resume) the session of this name.")] = None,
) -> None:
    """The interactive REPL (what `toolchat` alone runs)."""
    from toolchat.backends.factory import create_backend
    from toolchat.safety import clean
    from toolchat.terminal import repl
    from toolchat.terminal.session import Chat, ChatOptions, reloader

    env = _env(ctx)
    repl.require_terminal(env)
    console = repl.console_for_chat(env)
    overrides = _overrides(
        env,
        profile=profile,
        backend=backend,
        model=model,
        base_url=base_url,
        tools=tools,
        no_bundled_tools=no_bundled_tools,
        system=system,
        allow=allow,
        deny=deny,
        max_rounds=max_rounds,
        tool_timeout=tool_timeout,
        no_stream=no_stream,
        temperature=temperature,
        max_tokens=max_tokens,
    )
    overrides |= {"mcp_servers": _mcp_flags(mcp), **_trace(env, trace, trace_content)}
    settings = _settings(env, config, on_untrusted=repl.ask_trust(console), **overrides)
    notify = lambda message: console.print(clean(message), style="dim", markup=False)
    registry = _registry(env, settings, no_tools, notify, waits=False)  # the prompt does not wait for MCP servers
    with console.status("starting…"):
        model_backend = create_backend(settings, env, notify)
    options = ChatOptions(resume, session, tool_choice, yes)
    reload = reloader(env, _path(config), overrides, notify)
    raise typer.Exit(repl.run(Chat(env, settings, registry, model_backend, options, console, reload), env))


@app.command()
def serve(
    ctx: typer.Context,
    config: ConfigOpt = None,
    profile: ProfileOpt = None,
    backend: BackendOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    tools: ToolsOpt = None,
    no_tools: NoToolsOpt = False,
    no_bundled_tools: NoBundledOpt = False,
    system: SystemOpt = None,
    yes: YesOpt = False,
    allow: AllowOpt = None,
    deny: DenyOpt = None,
    max_rounds: MaxRoundsOpt = None,
    tool_timeout: ToolTimeoutOpt = None,
    temperature: TemperatureOpt = None,
    max_tokens: MaxTokensOpt = None,
    host: Annotated[
        str, typer.Option("--host", help="The address to listen on; any but loopback needs --api-key-env.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="The port to listen on.")] = 8000,
    api_key_env: Annotated[
        str | None, typer.Option("--api-key-env", help="A variable holding the key clients must send (Bearer).")
    ] = None,
    max_queue: Annotated[
        int, typer.Option("--max-queue", min=0, help="Requests that may wait for the local model; more get 429.")
    ] = 8,
    time_limit: Annotated[
        float, typer.Option("--time-limit", min=1, help="Seconds one request may take in all.")
    ] = 600.0,
    trace: TraceOpt = None,
    trace_content: TraceContentOpt = False,
    mcp: McpOpt = None,
) -> None:
    """An OpenAI-compatible endpoint (/v1/chat/completions) that runs this project's tools server-side."""
    from toolchat.serve.server import ServeOptions, run_serve

    env = _env(ctx)
    overrides = _overrides(
        env,
        profile=profile,
        backend=backend,
        model=model,
        base_url=base_url,
        tools=tools,
        no_bundled_tools=no_bundled_tools,
        system=system,
        allow=allow,
        deny=deny,
        max_rounds=max_rounds,
        tool_timeout=tool_timeout,
        no_stream=False,
        temperature=temperature,
        max_tokens=max_tokens,
    )
    overrides |= {"mcp_servers": _mcp_flags(mcp), **_trace(env, trace, trace_content)}
    settings = _settings(env, config, **overrides)
    options = ServeOptions(host, port, api_key_env, yes, max_queue, time_limit)
    registry = _registry(env, settings, no_tools)
    from toolchat.errors import Terminated

    try:
        code = run_serve(
            settings, lambda name: _settings(env, config, **{**overrides, "profile": name}), registry, options, env
        )
    except KeyboardInterrupt:  # uvicorn stops gracefully on TERM/Ctrl-C, then raises the signal again
        code = 0
    finally:
        registry.close()  # MCP servers stop with the server
    Terminated.requested = 0  # a service stopped by its manager has done its job
    raise typer.Exit(code)


@app.command()
def models(
    ctx: typer.Context,
    config: ConfigOpt = None,
    profile: ProfileOpt = None,
    backend: BackendOpt = None,
    base_url: BaseUrlOpt = None,
) -> None:
    """Models the endpoint lists (/v1/models), or the local GGUF files and the bundled one."""
    from toolchat.backends.factory import list_models
    from toolchat.safety import clean

    env = _env(ctx)
    settings = _settings(env, config, profile=profile, backend=backend, base_url=base_url)
    # ids from a server, file names from the project: no escape reaches the terminal
    env.write("".join(clean(line) + "\n" for line in list_models(settings, env)))


@config_app.command("show")
def config_show(ctx: typer.Context, config: ConfigOpt = None, profile: ProfileOpt = None) -> None:
    """The merged config in force, secrets hidden, and where each value came from."""
    from toolchat.commands import config as config_cmd

    env = _env(ctx)
    settings = _settings(env, config, check_trust=False, profile=profile)
    config_cmd.show(settings, env, env.consoles()[0])


@config_app.command("init")
def config_init(ctx: typer.Context) -> None:
    """Write a commented toolchat.yaml into the current folder."""
    from toolchat.commands import config as config_cmd

    env = _env(ctx)
    config_cmd.init(env.cwd, env.consoles()[0])


@config_app.command("schema")
def config_schema(ctx: typer.Context) -> None:
    """Print the JSON Schema of toolchat.yaml, for editors."""
    from toolchat.commands import config as config_cmd

    _env(ctx).write(config_cmd.schema_text())


@config_app.command("validate")
def config_validate(
    ctx: typer.Context, path: Annotated[str | None, typer.Argument(help="The file; else the one in force.")] = None
) -> None:
    """Check a config file; exit 2 with file:line on the first error."""
    from toolchat.commands import config as config_cmd

    env = _env(ctx)
    config_cmd.validate(_path(path), env, env.consoles()[0])


@config_app.command("trust")
def config_trust(
    ctx: typer.Context, path: Annotated[str | None, typer.Argument(help="The file; else this project's.")] = None
) -> None:
    """Trust a project config (by path and content) after showing what it sets."""
    from toolchat.commands import config as config_cmd

    env = _env(ctx)
    config_cmd.trust(_path(path), env, env.consoles()[0])


@config_app.command("path")
def config_path(ctx: typer.Context, config: ConfigOpt = None) -> None:
    """The config files in force."""
    from toolchat.commands import config as config_cmd

    env = _env(ctx)
    settings = _settings(env, config, check_trust=False)
    env.write("".join(line + "\n" for line in config_cmd.file_lines(settings, env)))


@mcp_app.command("list")
def mcp_list(ctx: typer.Context, mcp: McpOpt = None, config: ConfigOpt = None) -> None:
    """Each MCP server: transport, state, start time and tools, or the error and its stderr."""
    from toolchat.commands import mcp as mcp_cmd

    env = _env(ctx)
    settings = _settings(env, config, mcp_servers=_mcp_flags(mcp))
    raise typer.Exit(
        mcp_cmd.list_servers(settings.mcp_servers, settings.project_dir, env, env.consoles()[0], settings.secrets)
    )


@mcp_app.command("logs")
def mcp_logs(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The server's name.")],
    mcp: McpOpt = None,
    config: ConfigOpt = None,
) -> None:
    """What one MCP server wrote to stderr (kept in the data dir, never shown in the chat)."""
    from toolchat.commands import mcp as mcp_cmd

    env = _env(ctx)
    settings = _settings(env, config, mcp_servers=_mcp_flags(mcp))
    env.write(mcp_cmd.show_log(name, settings.mcp_servers, env.data_dir, settings.secrets))


@sessions_app.command("list")
def sessions_list(ctx: typer.Context, config: ConfigOpt = None) -> None:
    """This project's sessions, oldest first: id, when, messages, first question."""
    from toolchat.commands import sessions as sessions_cmd

    env = _env(ctx)
    settings = _settings(env, config)
    sessions_cmd.list_sessions(env.data_dir, settings.project_dir, env.consoles()[0])


@sessions_app.command("show")
def sessions_show(
    ctx: typer.Context,
    session_id: Annotated[str, typer.Argument(help="An id from `toolchat sessions list`.")],
    config: ConfigOpt = None,
) -> None:
    """One session's messages."""
    from toolchat.commands import sessions as sessions_cmd

    env = _env(ctx)
    settings = _settings(env, config)
    sessions_cmd.show_session(env.data_dir, settings.project_dir, session_id, env.consoles())


@trace_app.command("show")
def trace_show(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="A file written with --trace or config `trace:`.")],
    last: Annotated[int, typer.Option("--last", min=0, help="Only the last N traces (0: all).")] = 0,
) -> None:
    """Each trace in the file as a tree: spans, durations, tokens, tool outcomes."""
    from toolchat.commands import trace as trace_cmd

    env = _env(ctx)
    trace_cmd.show(env.cwd / file, last, env.consoles()[0])


def main(argv: list[str] | None = None, env: Environment | None = None) -> int:
    """Run the CLI; every failure becomes one line on stderr and an exit code."""
    from toolchat.tools.isolation import worker

    worker.start()  # the tool worker is forked first, before any thread exists
    if env is None:  # a real process: signals are ours (an in-process test keeps pytest's)
        env = Environment()
        _signals_are_interrupts()
    args = list(sys.argv[1:] if argv is None else argv)
    end = args.index("--") if "--" in args else len(args)
    if "--no-sandbox" in args[:end]:  # a flag of every command: taken wherever it is written
        env.no_sandbox = True
        args = [a for a in args[:end] if a != "--no-sandbox"] + args[end:]
    if (
        args
        and args[0].startswith("-")
        and args[0] not in ("--help", "--version", "--install-completion", "--show-completion")
    ):
        args.insert(0, "chat")  # `toolchat --base-url URL` is `toolchat chat --base-url URL`
    try:
        command = typer.main.get_command(app)  # built once (~10 ms): checked, then run
        _check_command(args, command)
        result = command(args=args, prog_name="toolchat", standalone_mode=False, obj=env)
        from toolchat.errors import Terminated

        if Terminated.requested:
            status = 128 + Terminated.requested
            if result != status:  # typer turned the signal into a plain exit code: name the signal
                env.write("\ntoolchat: interrupted\n", err=True)
            return status  # else the command has said so itself
        return int(result or 0) if isinstance(result, int) else 0
    except ToolchatError as exc:
        _report(exc, env)
        return int(exc.exit_status)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort) as exc:
        from toolchat.errors import interrupted_status

        env.write("\ntoolchat: interrupted\n", err=True)
        return interrupted_status(exc)
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # click's usage errors, vendored or not
            exc.show(file=env.stderr)
            return ExitStatus.USAGE
        if env.debug:
            raise
        from toolchat.safety import clean

        env.write(
            f"toolchat: internal error: {clean(type(exc).__name__)}: {clean(str(exc))} "
            "(run with TOOLCHAT_DEBUG=1 for a traceback)\n",
            err=True,
        )
        return ExitStatus.BACKEND


def run() -> None:
    """The `toolchat` command (and `python -m toolchat`): `main`, then a quick exit."""
    _exit_quickly(main())


def _exit_quickly(status: int) -> None:
    """Exit without Python's teardown of every module, which takes 40-60 ms once the openai SDK is
    imported (benchmarks/RESULTS.md). What of it matters is done here: atexit handlers run (tracing
    flushes its spans), the standard streams are flushed. While a thread that is not a daemon
    still runs, the usual exit, which waits for it."""
    import atexit
    import os
    import threading

    main_thread = threading.main_thread()
    waiting = [t for t in threading.enumerate() if t is not main_thread and not t.daemon and t.is_alive()]
    if waiting or not hasattr(atexit, "_run_exitfuncs"):
        sys.exit(status)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: toolchat was started with the descriptor closed
                stream.flush()
        except (OSError, ValueError):  # the reader went away, or the stream was closed
            pass
    os._exit(status)


def _check_command(args: list[str], root: Any) -> None:
    """`toolchat "what is 2+2"` is what llm users type: say how to ask instead of 'No such command'."""
    if not args or args[0].startswith("-"):
        return
    import click

    if isinstance(root, click.Group) and args[0] not in root.commands:
        import difflib

        close = difflib.get_close_matches(args[0], list(root.commands), n=1)
        if close and " " not in args[0]:
            raise UsageError(f"no command '{args[0]}'", f"did you mean `toolchat {close[0]}`?")
        question = " ".join(args)
        raise UsageError(f"no command '{question[:40]}'", f'to ask a question: toolchat ask "{question}"')


def _signals_are_interrupts() -> None:
    """TERM, HUP (the terminal closed) and QUIT unwind like Ctrl-C: running tools are stopped and
    the session file is intact; the exit code is 128 + the signal."""
    import signal

    from toolchat.errors import Terminated

    def interrupt(signum: int, frame: Any) -> None:
        Terminated.requested = signum
        raise Terminated(signum)

    for name in ("SIGTERM", "SIGHUP", "SIGQUIT"):
        try:
            signal.signal(getattr(signal, name), interrupt)
        except (ValueError, AttributeError):  # not the main thread (embedded use), or no such signal
            pass


def _report(exc: ToolchatError, env: Environment) -> None:
    from toolchat.safety import clean

    if env.debug:
        import traceback

        traceback.print_exc(file=env.stderr)
    env.write(f"toolchat: error: {clean(str(exc))}\n", err=True)
