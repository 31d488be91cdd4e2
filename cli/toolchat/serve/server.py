"""`toolchat serve`: the project's tools and models behind an OpenAI-compatible endpoint.

Stateless: every request carries its conversation, so any number of servers can stand behind a
load balancer. Needs the `serve` extra (uvicorn and starlette), imported only here."""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass

from toolchat.config.settings import Settings
from toolchat.env import Environment
from toolchat.errors import UsageError
from toolchat.redact import Redactor
from toolchat.safety import clean
from toolchat.serve.guard import is_loopback
from toolchat.tools import Registry

DEFAULT_ID = "toolchat"  # the model id of the config without a profile
GRACE_SECONDS = 5  # on SIGTERM or Ctrl-C, how long running requests may still finish


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    api_key_env: str | None = None
    approve_all: bool = False
    max_queue: int = 8
    time_limit: float = 600.0
    max_body: int = 10 * 1024 * 1024
    header_timeout: float = 10.0  # seconds a request's headers may take to arrive


def api_key(options: ServeOptions, env: Environment) -> str | None:
    """The key clients must send; required when the server listens beyond this machine."""
    if options.api_key_env:
        key = env.environ.get(options.api_key_env, "").strip()
        if len(key) < 16:
            raise UsageError(
                f"${options.api_key_env} must hold the API key clients send (16 characters or more)",
                f"for example: export {options.api_key_env}=$(python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')",
            )
        return key
    if not is_loopback(options.host):
        raise UsageError(
            f"serving on {options.host} needs an API key",
            "put one in a variable and pass --api-key-env VAR, or keep the default --host 127.0.0.1",
        )
    return None


def listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound here so a taken port is one clear line (exit 2)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            "is another server using that port? pick another with --port",
        ) from None
    return sock


def profile_names(settings: Settings, env: Environment) -> list[str]:
    """The profiles the config files in force define, in file order."""
    from toolchat.config.file import load_file

    names: list[str] = []
    for path in settings.sources:
        for name in load_file(path, env.environ).data.get("profiles") or {}:
            if name not in names:
                names.append(name)
    return names


def run_serve(
    settings: Settings,
    load_profile: Callable[[str], Settings],
    registry: Registry,
    options: ServeOptions,
    env: Environment,
) -> int:
    import uvicorn

    from toolchat.backends.factory import create_backend
    from toolchat.serve.protocol import with_header_deadline
    from toolchat.serve.routes import Limits, Server, build_app
    from toolchat.serve.turn import Profile
    from toolchat.tracing import control as tracing

    key = api_key(options, env)
    notify = lambda message: _say(env, message)
    chosen = {settings.profile or DEFAULT_ID: settings}
    for name in profile_names(settings, env):
        chosen.setdefault(name, load_profile(name))
    profiles = {
        name: Profile(name, each, create_backend(each, env, notify), options.approve_all, env.environ)
        for name, each in chosen.items()
    }
    tracing.start(settings, env.environ, warn=notify)  # a missing SDK is said once, at start
    secrets = [s for each in chosen.values() for s in (each.api_key, *each.secrets)]
    secrets += [env.environ.get("OPENAI_API_KEY"), key]
    server = Server(
        profiles,
        registry.without(settings.deny),
        Limits(options.max_body, options.max_queue, time_limit=options.time_limit),
        Redactor(secrets),
        key,
        say=notify,
    )
    sock = listen(options.host, options.port)
    allowed = "every tool (--yes)" if options.approve_all else ", ".join(settings.allow) or "none"
    host = f"[{options.host}]" if ":" in options.host else options.host
    _say(
        env,
        f"serving on http://{host}:{sock.getsockname()[1]}/v1; models: {', '.join(profiles)}; "
        f"tools: {', '.join(server.registry.names()) or 'none'}; allowed to run: {allowed}",
    )
    config = uvicorn.Config(
        build_app(server),
        http=with_header_deadline(options.header_timeout),
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=GRACE_SECONDS,
        lifespan="on",
    )
    logging.getLogger("uvicorn.error").addFilter(_ShutdownNotes(env))
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C or SIGTERM it shut down on
        pass
    finally:
        for profile in profiles.values():
            profile.backend.close()  # a local model's memory goes back at once
    _say(env, "stopped")
    return 0


class _ShutdownNotes:
    """uvicorn's words when it stops requests still running after the grace period: one line of
    toolchat's instead of its error and a traceback per request (each client is answered 503, or
    its stream ends); and none for a stream cut off because its client stopped reading."""

    def __init__(self, env: Environment) -> None:
        self.env = env

    def filter(self, record: logging.LogRecord) -> bool:
        import asyncio

        if str(record.msg).startswith("Cancel %s running task(s)"):
            count = record.args[0] if isinstance(record.args, tuple) and record.args else "the"
            _say(self.env, f"stopping {count} request(s) still running after {GRACE_SECONDS} s")
            return False
        from toolchat.serve.routes import Cut  # a slow reader cut off: its access-log line says so

        quiet = record.exc_info is not None and isinstance(record.exc_info[1], (asyncio.CancelledError, Cut))
        return not (quiet and str(record.msg).startswith("Exception in ASGI application"))


def _say(env: Environment, message: str) -> None:
    (env.stderr or sys.stderr).write(f"toolchat serve: {clean(message)}\n")
    env.stderr.flush()
