"""The typer app and its one error handler: an `InspectError` becomes one red line on stderr and its exit
code (2 unreadable input / usage, 1 a check or scan found a problem); `MI_DEBUG=1` shows the traceback instead.
The commands are registered in `cli/__init__.py`, from an explicit list.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Annotated, Any

import typer

from .._version import __version__
from ..errors import EXIT_UNREADABLE, InspectError

# `\b` keeps click from re-flowing the example lines (a flag must never break at its hyphen).
_EPILOG = """Examples:

\b
  mi inspect model.safetensors     parameters, bytes, dtypes, modules
  mi params --config config.json   parameter count, term by term
  mi memory --config config.json --seq 8192 --training
  mi check model.safetensors --max-size 800MB --forbid-pickle
  mi diff old.pth new.safetensors  what changed between two checkpoints
  mi scan downloads/model.pth      pickle safety, without running it

`mi COMMAND --help` lists each command's options; README.md has the details."""

_APP_SETTINGS: dict[str, Any] = {
    "name": "mi",
    "help": "modelscope-inspect: what is inside a model file and what it will cost. Never runs code from the file.",
    "epilog": _EPILOG,
    "add_completion": False,
    "no_args_is_help": True,
    "pretty_exceptions_enable": False,
    "rich_markup_mode": None,
    "context_settings": {"help_option_names": ["-h", "--help"]},
}
app = typer.Typer(**_APP_SETTINGS)


def _no_hyphen_breaks() -> None:
    """click wraps help text with `textwrap`, which also breaks after hyphens: `--arch torch-` / `decoder`,
    `--kv-` / `heads`. Our help names flags and presets everywhere, so lines break at spaces only. (typer
    vendors click, which keeps its wrapper in a private module; if it moves, help wraps as before.)"""
    import importlib
    import textwrap

    for name in ("typer._click._textwrap", "click._textwrap"):
        try:
            wrapper = importlib.import_module(name).TextWrapper
        except (ImportError, AttributeError):
            continue
        # textwrap splits with `wordsep_re` when break_on_hyphens is set (the default), with
        # `wordsep_simple_re` (whitespace only) otherwise.
        wrapper.wordsep_re = textwrap.TextWrapper.wordsep_simple_re
        return


_no_hyphen_breaks()


def _report(exc: BaseException, message: str, code: int) -> typer.Exit:
    from ..render.output import Output

    if os.environ.get("MI_DEBUG") == "1":
        raise exc
    Output().error(message)
    return typer.Exit(code)


def register(name: str, fn: Callable[..., Any]) -> None:
    """Add command `name` to `app`, wrapped in the one error handler."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except InspectError as exc:
            raise _report(exc, str(exc), exc.exit_code) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except RecursionError as exc:
            raise _report(exc, "input nests too deeply to read (recursion limit)", EXIT_UNREADABLE) from None
        except MemoryError as exc:
            raise _report(exc, "input needs more memory than is available", EXIT_UNREADABLE) from None
        except Exception as exc:  # a bug: still one line, but say so and how to get details
            msg = f"internal error: {type(exc).__name__}: {exc} (set MI_DEBUG=1 for the traceback and report it)"
            raise _report(exc, msg, EXIT_UNREADABLE) from None

    # The command list of `mi --help` shows this first line whole (click would cut a long first sentence
    # with "..."); each command's docstring starts with a line short enough for 80 columns.
    short = (fn.__doc__ or "").strip().split("\n", 1)[0].strip()
    app.command(name, short_help=short or None)(wrapper)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mi {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """modelscope-inspect: what is inside a model file and what it will cost. Never runs code from the file."""


def _app_for(argv: list[str]) -> typer.Typer:
    """The app to run for this command line: when it names one command, an app holding only that command.

    typer resolves the annotations of every registered command before it parses anything (about 3 ms per
    command); `mi inspect x.pth` has no use for the other commands' options. Help and unknown names get the
    full app, so listings and error messages are unchanged. The root callback keeps it a command group.
    """
    wanted = argv[1] if len(argv) > 1 else None
    chosen = [c for c in app.registered_commands if c.name == wanted]
    if not chosen:
        return app
    single = typer.Typer(**_APP_SETTINGS)
    single.registered_callback = app.registered_callback
    single.registered_commands = chosen
    return single


def main() -> None:
    """Console-script entry point."""
    import sys

    _app_for(sys.argv)()
