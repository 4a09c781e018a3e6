"""Batch mode of `mi scan` and `mi inspect`: the options, and the one loop that prints a record per target."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from ..loaders.scanner import Allow

AllowOpt = Annotated[
    list[Allow] | None,
    typer.Option(
        "--allow",
        help="Accept on purpose (repeatable): torchscript (archive code), remote-code (a folder's Python files).",
    ),
]
FromOpt = Annotated[
    str | None,
    typer.Option("--from", metavar="FILE", help="Targets, one per line (# comments and blank lines skipped; - stdin)."),
]
JsonlOpt = Annotated[
    bool, typer.Option("--jsonl", help="One JSON record per target, printed as each finishes (batch mode).")
]
JobsOpt = Annotated[
    int, typer.Option("--jobs", min=1, max=256, metavar="N", help="Targets read at once in batch mode (threads).")
]
ResumeOpt = Annotated[
    str | None,
    typer.Option(
        "--resume",
        metavar="FILE",
        help="Skip targets recorded in this JSONL file and append the new records to it (implies --jsonl).",
    ),
]


def targets_of(paths: list[str] | None, from_file: str | None) -> list[str]:
    """The targets named on the command line, then those of `--from`; at least one."""
    from ..api.batch import read_targets
    from ..errors import UsageError

    targets = list(paths or [])
    if from_file is not None:
        targets += read_targets(from_file)
    if not targets:
        raise UsageError("name at least one PATH or URL, or --from FILE")
    return list(dict.fromkeys(targets))  # a target named twice is read once


def run_batch(targets: list[str], record: Callable[[str], dict[str, Any]], *, jobs: int, resume: str | None) -> None:
    """Print (or append to `resume`) one record per target as it finishes; exit with the worst code."""
    from ..api.batch import Appender, read_done, run, worst
    from ..render.output import Output

    out = Output()
    done = read_done(resume) if resume is not None else {}
    todo = [t for t in targets if t not in done]
    codes = [rec["exit_code"] for t, rec in done.items() if t in targets]
    sink = Appender(resume, targets) if resume is not None else None
    try:
        for rec in run(todo, record, jobs):
            if sink is not None:
                sink.write(rec)
            else:
                out.jsonl(rec)
            codes.append(rec["exit_code"])
    finally:
        if sink is not None:
            sink.close()
    if resume is not None:
        out.note(f"{len(todo):,} targets read, {len(targets) - len(todo):,} already in {resume}")
    code = worst(codes)
    if code:
        raise typer.Exit(code)
