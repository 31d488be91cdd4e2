"""The Typer app: the commands and their options; how the process starts, ends and maps failures to
exit codes is toolchat.process."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from toolchat import __version__, process
from toolchat.commands.context import env_of, load_settings, load_tools, notice, tool_settings
from toolchat.commands.options import (
    BackendOpt,
    BaseUrlOpt,
    ConfigOpt,
    McpOpt,
    ModelFlags,
    NoBundledOpt,
    ProfileOpt,
    ToolsOpt,
    as_path,
    mcp_servers,
    model_flags,
    seconds,
)
from toolchat.env import Environment

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
mcp_app = typer.Typer(
    help="The MCP servers configured: their state and their logs (alone: `mcp list`).", invoke_without_command=True
)
app.add_typer(mcp_app, name="mcp")
trace_app = typer.Typer(help="Read trace files written with --trace.", no_args_is_help=True)
app.add_typer(trace_app, name="trace")


def _version(ctx: typer.Context, value: bool) -> None:
    if value:
        env_of(ctx).write(f"toolchat {__version__}\n")
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
    env_of(ctx).no_sandbox |= no_sandbox
    if ctx.invoked_subcommand is None:
        chat(ctx)


@tools_app.command("list")
def tools_list(
    ctx: typer.Context, tools: ToolsOpt = None, no_bundled_tools: NoBundledOpt = False, config: ConfigOpt = None
) -> None:
    """The tools found, where each came from, and modules that failed to load."""
    from toolchat.commands import tools as tools_cmd

    env = env_of(ctx)
    settings = tool_settings(env, config, tools, no_bundled_tools)
    tools_cmd.list_tools(load_tools(settings, env), settings, env.consoles()[0])


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

    env = env_of(ctx)
    settings = tool_settings(env, config, tools, no_bundled_tools)
    registry = load_tools(settings, env)
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

    env = env_of(ctx)
    settings = tool_settings(env, config, tools, no_bundled_tools)
    env.write(tools_cmd.schema_json(load_tools(settings, env), names or []) + "\n")


@tools_app.command("run")
def tools_run(
    ctx: typer.Context,
    name: str,
    args: Annotated[str | None, typer.Option("--args", help="The arguments as a JSON object.")] = None,
    tools: ToolsOpt = None,
    no_bundled_tools: NoBundledOpt = False,
    config: ConfigOpt = None,
    tool_timeout: Annotated[
        float | None, typer.Option("--tool-timeout", callback=seconds, help="Stop the tool after this many seconds.")
    ] = None,
) -> None:
    """Run one tool directly, without a model."""
    from toolchat.commands import tools as tools_cmd

    env = env_of(ctx)
    settings = tool_settings(env, config, tools, no_bundled_tools)
    if tool_timeout is not None:
        settings.tool_timeout = tool_timeout
    out, err = env.consoles()
    code = tools_cmd.run_once(load_tools(settings, env), name, args, settings, out, err)
    raise typer.Exit(code)


_ASK = "config profile backend model base_url tools no_tools no_bundled_tools system yes allow deny tool_choice"
_MODEL = (
    "max_rounds tool_timeout no_stream temperature max_tokens mcp trace trace_content reasoning_effort hide_reasoning"
)


@app.command("sandbox")
def sandbox_report(
    ctx: typer.Context, tools: ToolsOpt = None, no_bundled_tools: NoBundledOpt = False, config: ConfigOpt = None
) -> None:
    """What this machine's sandbox enforces (Landlock, TCP) and each tool's sandbox."""
    from toolchat.commands import sandbox

    env = env_of(ctx)
    settings = tool_settings(env, config, tools, no_bundled_tools)
    sandbox.report(load_tools(settings, env), settings, env.consoles()[0])


@app.command()
@model_flags(f"{_ASK} {_MODEL} json_output quiet")
def ask(
    ctx: typer.Context,
    flags: ModelFlags,
    prompt: Annotated[list[str] | None, typer.Argument(help="The question; '-' or a pipe appends stdin.")] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object: answer, messages, calls, usage.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No tool log on stderr.")] = False,
) -> None:
    """One question, tools allowed, the answer on stdout."""
    from toolchat.ask import AskOptions, run_ask
    from toolchat.redact import redactor_for

    env = env_of(ctx)
    settings = load_settings(env, flags.config, **flags.overrides(env))
    options = AskOptions(prompt or [], json_output, quiet, flags.tool_choice)
    registry = load_tools(settings, env, flags.no_tools, lambda message: notice(env, message))
    try:
        raise typer.Exit(run_ask(settings, registry, options, env, flags.yes, redactor_for(settings, env.environ)))
    finally:
        registry.close()  # MCP servers stop, bounded, whatever ended the run


@app.command()
@model_flags(f"{_ASK} {_MODEL} resume session")
def chat(
    ctx: typer.Context,
    flags: ModelFlags,
    resume: Annotated[bool, typer.Option("--continue", help="Resume this project's last session.")] = False,
    session: Annotated[str | None, typer.Option("--session", help="Use (or resume) the session of this name.")] = None,
) -> None:
    """The interactive REPL (what `toolchat` alone runs)."""
    from toolchat.terminal import repl
    from toolchat.terminal.session import ReplOptions, reloader

    env = env_of(ctx)
    repl.require_terminal(env)
    console = repl.console_for_chat(env)
    overrides = flags.overrides(env)
    settings = load_settings(env, flags.config, on_untrusted=repl.ask_trust(console), **overrides)
    notify = repl.notifier(console)
    registry = load_tools(settings, env, flags.no_tools, notify, waits=False)  # the prompt does not wait for MCP
    options = ReplOptions(resume, session, flags.tool_choice, flags.yes)
    reload = reloader(env, as_path(flags.config), overrides, notify)
    raise typer.Exit(repl.start(env, console, settings, registry, options, reload))


@app.command()
@model_flags(
    "config profile backend model base_url tools no_tools no_bundled_tools system yes allow deny max_rounds"
    " tool_timeout temperature max_tokens host port api_key_env max_queue time_limit header_timeout trace"
    " trace_content mcp"
)
def serve(
    ctx: typer.Context,
    flags: ModelFlags,
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
    header_timeout: Annotated[
        float,
        typer.Option("--header-timeout", min=0.1, help="Seconds a request's headers may take; then it is cut off."),
    ] = 10.0,
) -> None:
    """An OpenAI-compatible endpoint (/v1/chat/completions) that runs this project's tools server-side."""
    from toolchat.serve.server import ServeOptions, run_serve

    env = env_of(ctx)
    overrides = flags.overrides(env)
    settings = load_settings(env, flags.config, **overrides)
    options = ServeOptions(host, port, api_key_env, flags.yes, max_queue, time_limit, header_timeout=header_timeout)
    registry = load_tools(settings, env, flags.no_tools)

    def profile(name: str) -> Any:
        return load_settings(env, flags.config, **{**overrides, "profile": name})

    try:
        code = run_serve(settings, profile, registry, options, env)
    except KeyboardInterrupt:  # uvicorn stops gracefully on TERM/Ctrl-C, then raises the signal again
        code = 0
    finally:
        registry.close()  # MCP servers stop with the server
    process.forget_signal()  # a service stopped by its manager has done its job
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

    env = env_of(ctx)
    settings = load_settings(env, config, profile=profile, backend=backend, base_url=base_url)
    # ids from a server, file names from the project: no escape reaches the terminal
    env.write("".join(clean(line) + "\n" for line in list_models(settings, env)))


@config_app.command("show")
def config_show(ctx: typer.Context, config: ConfigOpt = None, profile: ProfileOpt = None) -> None:
    """The merged config in force, secrets hidden, and where each value came from."""
    from toolchat.commands import config as config_cmd

    env = env_of(ctx)
    settings = load_settings(env, config, check_trust=False, profile=profile)
    config_cmd.show(settings, env, env.consoles()[0])


@config_app.command("init")
def config_init(ctx: typer.Context) -> None:
    """Write a commented toolchat.yaml into the current folder."""
    from toolchat.commands import config as config_cmd

    env = env_of(ctx)
    config_cmd.init(env.cwd, env.consoles()[0], env)


@config_app.command("schema")
def config_schema(ctx: typer.Context) -> None:
    """Print the JSON Schema of toolchat.yaml, for editors."""
    from toolchat.commands import config as config_cmd

    env_of(ctx).write(config_cmd.schema_text())


@config_app.command("validate")
def config_validate(
    ctx: typer.Context, path: Annotated[str | None, typer.Argument(help="The file; else the one in force.")] = None
) -> None:
    """Check a config file; exit 2 with file:line:column on the first error."""
    from toolchat.commands import config as config_cmd

    env = env_of(ctx)
    config_cmd.validate(as_path(path), env, env.consoles()[0])


@config_app.command("trust")
def config_trust(
    ctx: typer.Context, path: Annotated[str | None, typer.Argument(help="The file; else this project's.")] = None
) -> None:
    """Trust a project config (by path and content) after showing what it sets."""
    from toolchat.commands import config as config_cmd

    env = env_of(ctx)
    config_cmd.trust(as_path(path), env, env.consoles()[0])


@config_app.command("path")
def config_path(ctx: typer.Context, config: ConfigOpt = None) -> None:
    """The config files in force."""
    from toolchat.commands import config as config_cmd

    env = env_of(ctx)
    settings = load_settings(env, config, check_trust=False)
    env.write("".join(line + "\n" for line in config_cmd.file_lines(settings, env)))


@mcp_app.callback()
def mcp_alone(ctx: typer.Context) -> None:
    """`toolchat mcp` alone is `toolchat mcp list`: the one question a user has of it."""
    if ctx.invoked_subcommand is None:
        mcp_list(ctx)


@mcp_app.command("list")
def mcp_list(ctx: typer.Context, mcp: McpOpt = None, config: ConfigOpt = None) -> None:
    """Each MCP server: transport, state, start time and tools, or the error and its stderr."""
    from toolchat.commands import mcp as mcp_cmd

    env = env_of(ctx)
    settings = load_settings(env, config, mcp_servers=mcp_servers(mcp))
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

    env = env_of(ctx)
    settings = load_settings(env, config, mcp_servers=mcp_servers(mcp))
    env.write(mcp_cmd.show_log(name, settings.mcp_servers, env.data_dir, settings.secrets))


@sessions_app.command("list")
def sessions_list(ctx: typer.Context, config: ConfigOpt = None) -> None:
    """This project's sessions, oldest first: id, when, messages, first question."""
    from toolchat.commands import sessions as sessions_cmd

    env = env_of(ctx)
    settings = load_settings(env, config)
    sessions_cmd.list_sessions(env.data_dir, settings.project_dir, env.consoles()[0])


@sessions_app.command("show")
def sessions_show(
    ctx: typer.Context,
    session_id: Annotated[str, typer.Argument(help="An id from `toolchat sessions list`.")],
    config: ConfigOpt = None,
) -> None:
    """One session's messages."""
    from toolchat.commands import sessions as sessions_cmd

    env = env_of(ctx)
    settings = load_settings(env, config)
    sessions_cmd.show_session(env.data_dir, settings.project_dir, session_id, env.consoles())


@trace_app.command("show")
def trace_show(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="A file written with --trace or config `trace:`.")],
    last: Annotated[int, typer.Option("--last", min=0, help="Only the last N traces (0: all).")] = 0,
) -> None:
    """Each trace in the file as a tree: spans, durations, tokens, tool outcomes."""
    from toolchat.commands import trace as trace_cmd

    env = env_of(ctx)
    trace_cmd.show(env.cwd / file, last, env.consoles()[0])


def main(argv: list[str] | None = None, env: Environment | None = None) -> int:
    """Run the CLI; every failure becomes one line on stderr and an exit code (toolchat.process)."""
    env = process.start(env)
    args = process.command_line(argv, env)
    try:
        command = typer.main.get_command(app)  # built once (~10 ms): checked, then run
        process.check_command(args, getattr(command, "commands", {}))
        result = command(args=args, prog_name="toolchat", standalone_mode=False, obj=env)
        return process.finished(result, env)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 -- the last line of defence: one line, no traceback
        return process.failed(exc, env)


def run() -> None:
    """The `toolchat` command (and `python -m toolchat`): `main`, then a quick exit."""
    process.exit_quickly(main())
