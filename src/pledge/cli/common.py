"""What every CLI command shares: opening the runtime, a tenant context, error reporting."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import wraps
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pledge.access.context import TenantContext
from pledge.core.config import get_settings
from pledge.core.errors import NotInitialised, PledgeError
from pledge.migrations import is_current
from pledge.runtime import Runtime
from pledge.subjects.importer import ImportInvalid

console = Console()
errors = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str, code: int = 1) -> typer.Exit:
    # Escaped: a message may quote a column name or file path, which is not style markup.
    # soft_wrap: one line however long, not cut at 80 columns when stderr is a log or a pipe.
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def fail_listing(exc: ImportInvalid) -> typer.Exit:
    """Every bad row of a file, one line each in line order, then the count last, where the
    eye lands: the operator fixes the whole file in one go (a page shows only the first rows).
    Printed as they are: a reason may quote a value holding `[`, `:` or a line break."""
    rows = "\n".join(" ".join(str(e).splitlines()) for e in exc.errors)
    if rows:
        errors.print(rows, markup=False, emoji=False, highlight=False, soft_wrap=True)
    return fail(exc.summary)


def reports_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Domain errors become a one-line message and a non-zero exit, not a traceback."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ImportInvalid as exc:
            raise fail_listing(exc) from None
        except PledgeError as exc:
            raise fail(exc.detail) from None

    return wrapper


def open_runtime() -> Runtime:
    settings = get_settings()
    runtime = Runtime.open(settings)
    if not is_current("datastore", runtime.engine):
        runtime.close()
        raise NotInitialised(
            f"the data store at {settings.home_dir} is not initialised or not migrated; "
            "run `pledge init`"
        )
    return runtime


def operator_context(runtime: Runtime, slug: str) -> AbstractContextManager[TenantContext]:
    return runtime.tenant_context(slug)


def read_secret(prompt: str, from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise fail("expected the password on standard input")
        return line
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=True))


def progress_bar(description: str, total: int, *, transient: bool = False) -> Progress:
    """The bar long CLI work shows (`total` is set on the task the caller adds).
    `transient`: gone once done, for work that prints its own line of outcome — and nothing
    at all where the output is not a terminal (a log has no use for a finished bar)."""
    return Progress(
        TextColumn(f"[bold]{description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )
