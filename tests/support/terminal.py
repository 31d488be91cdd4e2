"""The REPL (or any toolchat command) in a real pseudo-terminal, driven as a person would: one way
to start it (`spawn`), and the few moves a test makes (`see`, `say`, `press`).

`spawn` gives the child a pty of the size asked for and the environment given, minus COLUMNS and
LINES (the pty's size is the terminal's size, as for a user, and a resize is seen), with
prompt-toolkit's cursor-position request off, unless `cpr=True`: then the emulator answers it as a
real terminal does, and prompt-toolkit draws its bottom toolbar (it draws none until it knows how
many rows are below the cursor). What the child writes
is fed to a pyte terminal emulator, `child.screen`, that keeps the rows scrolled off the top: a
test can assert what the user sees, cell by cell, not only the bytes."""

from __future__ import annotations

import re
import subprocess
import sys
import termios
import time
from pathlib import Path

import pexpect
import pyte

TOOLCHAT = [sys.executable, "-m", "toolchat"]

WEATHER = [("get_weather", {"city": "Singapore"})]
QUESTION = r"Run get_weather\? \[y\]es \[n\]o \[a\]lways \[e\]dit \[\?\]"


class Screen:
    """What the user sees: everything the child writes, fed to a terminal emulator that keeps the
    rows scrolled off the top."""

    def __init__(self, child: pexpect.spawn, rows: int, columns: int, answers: bool = False) -> None:
        self.child = child
        self.screen = pyte.HistoryScreen(columns, rows, history=100_000)
        if answers:  # the cursor-position report (ESC [ 6 n) is answered, as by a real terminal
            self.screen.write_process_input = child.send
        self.stream = pyte.Stream(self.screen)

    def write(self, data: str) -> None:  # pexpect's logfile_read: every character it reads
        self.stream.feed(data)

    def flush(self) -> None:
        pass

    def resize(self, rows: int, columns: int) -> None:
        self.child.setwinsize(rows, columns)
        self.screen.resize(rows, columns)

    def shown(self) -> list[str]:
        """The display now."""
        return [line.rstrip() for line in self.screen.display]

    def transcript(self) -> list[str]:
        """Every row ever shown, scrolled off or on the screen, in order."""
        width = self.screen.columns
        history = ["".join(line[x].data for x in range(width)).rstrip() for line in self.screen.history.top]
        return history + self.shown()

    def cells(self) -> list[list[tuple[str, str, str, bool]]]:
        """Every row ever shown, as (character, foreground, background, bold) per cell."""
        lines = [*self.screen.history.top, *(self.screen.buffer[y] for y in range(self.screen.lines))]
        width = self.screen.columns
        return [[(line[x].data, line[x].fg, line[x].bg, line[x].bold) for x in range(width)] for line in lines]

    def count(self, word: str) -> int:
        return sum(len(re.findall(rf"\b{word}\b", line)) for line in self.transcript())


def spawn(
    *args: str,
    env: dict[str, str],
    cwd: Path,
    rows: int = 40,
    columns: int = 120,
    timeout: float = 30,
    command: list[str] = TOOLCHAT,
    color: bool = False,
    screen: bool = True,
    maxread: int = 2000,
    cpr: bool = False,
) -> pexpect.spawn:
    """`toolchat ARGS...` (or `command ARGS...`) in a `rows` x `columns` pty, in `cwd`, with `env`.
    `color` drops NO_COLOR and sets TERM=xterm (as a colour terminal); `screen=False` skips the
    emulator (a benchmark that reads the pty itself); `cpr` has the emulator answer cursor-position
    requests (the bottom toolbar is drawn)."""
    clean = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES", "PROMPT_TOOLKIT_NO_CPR")}
    if not (cpr and screen):
        clean["PROMPT_TOOLKIT_NO_CPR"] = "1"
    if color:
        clean.pop("NO_COLOR", None)
        clean["TERM"] = "xterm"
    child = pexpect.spawn(
        command[0],
        [*command[1:], *args],
        env=clean,
        cwd=str(cwd),
        encoding="utf-8",
        timeout=timeout,
        dimensions=(rows, columns),
        maxread=maxread,
    )
    if screen:
        child.screen = Screen(child, rows, columns, answers=cpr)
        child.logfile_read = child.screen
    return child


ANSI = r"(?:\x1b\[[0-9;?]*[A-Za-z]|\s)*"


def see(child: pexpect.spawn, text: str) -> None:
    """Expect `text`, whatever styling escapes or spacing Rich puts between its words."""
    child.expect(ANSI.join(re.escape(word) for word in text.split()))


def reading_keys(child: pexpect.spawn) -> bool:
    """prompt-toolkit has the terminal: the child's pty is in its raw mode (no line editing, keys
    are not signals). A turn's silenced echo also turns line editing off but keeps Ctrl-C a signal,
    so it does not count; nor does a pty that is gone."""
    try:
        local_modes = termios.tcgetattr(child.child_fd)[3]  # the master fd reads the child's side
    except (termios.error, OSError):
        return False
    return not local_modes & (termios.ICANON | termios.ISIG)


def settle(child: pexpect.spawn, most: float = 0.3) -> None:
    """Wait, at most `most` seconds, until prompt-toolkit has taken the terminal, as a person waits
    for the prompt before typing. Where nothing takes it (a key typed ahead while a turn runs, a
    Ctrl-C meant for the turn), the keys go after the whole wait, as before this wait was a condition."""
    deadline = time.monotonic() + most
    while not reading_keys(child) and time.monotonic() < deadline:
        time.sleep(0.005)


def say(child: pexpect.spawn, text: str) -> None:
    settle(child)
    child.send(text + "\r")


def press(child: pexpect.spawn, key: str) -> None:
    settle(child)
    child.send(key)


def spawn_ask(env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen:
    """`toolchat ask ARGS...` without a terminal (its own session, stdin closed), for a test that signals it."""
    return subprocess.Popen(
        [*TOOLCHAT, "ask", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
