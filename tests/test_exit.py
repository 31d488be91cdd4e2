"""How the `toolchat` process ends: it skips Python's module-by-module teardown (40-60 ms), so what
that teardown would have done must still happen: output flushed, atexit handlers run, threads
that are not daemons waited for, the exit code kept."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.support.fakeserver import FakeServer, sse, text_stream


def test_a_long_answer_piped_out_arrives_whole(cli):
    answer = "".join(f"line {n:05d} of a long answer\n" for n in range(20000))  # ~560 KB
    with FakeServer(models=["fake"]) as server:
        server.add(sse(text_stream(answer, pieces=400)))
        done = cli("ask", "--base-url", server.url, "-m", "fake", "-q", "write a lot")
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip("\n") == answer.rstrip("\n")


def quick_exit(body: str, tmp_path) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent("""
        import atexit, sys, threading, time
        from pathlib import Path
        from toolchat.process import exit_quickly
        folder = Path(sys.argv[1])
    """) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=60)


def test_buffered_output_and_atexit_handlers_are_not_lost(tmp_path):
    done = quick_exit(
        """
        atexit.register(lambda: (folder / "atexit-ran").write_text("yes"))
        sys.stdout.write("no newline, still buffered")
        sys.stderr.write("and on stderr")
        exit_quickly(5)
    """,
        tmp_path,
    )
    assert done.returncode == 5
    assert done.stdout == "no newline, still buffered" and done.stderr == "and on stderr"
    assert (tmp_path / "atexit-ran").read_text() == "yes"


def test_a_thread_that_is_not_a_daemon_is_waited_for(tmp_path):
    done = quick_exit(
        """
        def late():
            time.sleep(0.5)
            (folder / "late").write_text("finished")
        threading.Thread(target=late).start()
        exit_quickly(3)
    """,
        tmp_path,
    )
    assert done.returncode == 3, done.stderr
    assert (tmp_path / "late").read_text() == "finished"


def test_a_reader_that_went_away_costs_no_traceback(tmp_path):
    done = quick_exit(
        """
        import os
        r, w = os.pipe()
        os.close(r)
        sys.stdout = open(w, "w")
        sys.stdout.write("nobody reads this")
        exit_quickly(0)
    """,
        tmp_path,
    )
    assert done.returncode == 0 and done.stderr == ""


def test_a_closed_stderr_or_stdout_keeps_the_exit_code_and_prints_no_traceback(isolated_env, tmp_path):
    # a cron job or script may start toolchat with a descriptor closed (`2>&-`): Python then has no
    # sys.stderr at all, and the exit code must still be toolchat's own
    def run(shell: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", "-c", shell, "sh", sys.executable],
            cwd=tmp_path,
            env=isolated_env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    version = run('exec "$1" -m toolchat --version 2>&-')
    assert version.returncode == 0
    assert version.stdout.startswith("toolchat ")
    usage = run('exec "$1" -m toolchat ask --no-such-option 2>&-')
    assert usage.returncode == 2
    listed = run('exec "$1" -m toolchat tools list >&-')
    assert "Traceback" not in listed.stderr
    assert listed.returncode == 0
