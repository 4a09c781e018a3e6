"""Runs several `mi` command lines in one process and prints one JSON line per command.

The hostile-input tests start this under a time limit and an address-space limit: one interpreter start per
corpus entry instead of one per command keeps the suite fast, and each command still gets a fresh rich
console, its own stdout/stderr and its own exit code (typer's CliRunner). Lines are flushed one by one, so a
crash (a segfault in C code, a kill at the time limit) shows which command was running.

Usage: python -m tests.hostile.driver '[["inspect", "x.pth"], ["scan", "x.pth"]]'
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    from typer.testing import CliRunner

    from modelscope_inspect.cli import app

    runner = CliRunner()
    for args in json.loads(sys.argv[1]):
        t0 = time.monotonic()
        r = runner.invoke(app, args, env={"COLUMNS": "100", "NO_COLOR": "1", "MI_DEBUG": ""})
        exc = r.exception
        leaked = None if exc is None or isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}"
        doc = {
            "args": args,
            "exit": r.exit_code,
            "stdout": r.stdout[-2000:],
            "stderr": r.stderr,
            "seconds": round(time.monotonic() - t0, 3),
            "leaked_exception": leaked,
        }
        sys.__stdout__.write(json.dumps(doc) + "\n")
        sys.__stdout__.flush()


if __name__ == "__main__":
    main()
