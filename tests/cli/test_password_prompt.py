"""`pledge user add` at a terminal: the password is asked twice, not echoed, and works.

The other CLI tests give the password on standard input (CliRunner has no terminal); this one
runs the real command under a pseudo-terminal, as an operator types at it."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time

from fastapi.testclient import TestClient

from pledge.runtime import Runtime
from pledge.web.app import create_app
from tests.conftest import login

TYPED = "Correct-Horse-Battery-9"
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def _become_controlling_terminal() -> None:
    """In the child, after setsid: the pseudo-terminal on stdin is its terminal (/dev/tty),
    the one getpass reads a hidden password from."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _run_at_a_terminal(args: list[str], answers: list[tuple[bytes, str]]) -> tuple[int, str]:
    """Run the CLI under a pseudo-terminal, typing each answer once its prompt shows; the exit
    code and everything the terminal showed (colours removed)."""
    master, slave = os.openpty()
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pledge.cli.main", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=_become_controlling_terminal,
    )
    os.close(slave)
    shown, answered_up_to = b"", 0
    pending = list(answers)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the command ended and the terminal closed
                break
            if not chunk:
                break
            shown += chunk
            if pending and pending[0][0] in shown[answered_up_to:]:
                prompt, answer = pending.pop(0)
                answered_up_to = shown.index(prompt, answered_up_to) + len(prompt)
                os.write(master, answer.encode() + b"\r")
        else:
            raise AssertionError(f"no end within 60 s; the terminal showed: {shown!r}")
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert not pending, f"never asked {pending[0][0]!r}; the terminal showed: {shown!r}"
    return code, ANSI.sub(b"", shown).decode()


def test_user_add_asks_for_the_password_twice_without_showing_it(
    runtime: Runtime, tenant: str, cli_env: dict[str, str]
) -> None:
    email = "typist@acme.example"
    code, shown = _run_at_a_terminal(
        ["user", "add", "-t", tenant, "--email", email],
        # Click writes the text, then getpass turns echo off and writes the prompt's last " ":
        # typed before that space, the answer would be shown and then thrown away.
        [(b"Password: ", TYPED), (b"Repeat for confirmation: ", TYPED)],
    )
    assert code == 0, shown
    assert f"added to {tenant} as agent" in " ".join(shown.split()), shown
    assert TYPED not in shown  # not echoed as it was typed
    login(TestClient(create_app(runtime)), tenant, email, TYPED)
