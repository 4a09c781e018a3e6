"""`mi check [PATH ...]`: size, parameter and dtype budgets for CI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .options import EndpointOpt, JsonOpt, MarkdownOpt, TokenOpt, one_format


def check_cmd(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Model files, folders or URLs (hf://ORG/NAME, https://…). Default: the files [tool.mi.check] "
            "globs match."
        ),
    ] = None,
    max_size: Annotated[
        str | None, typer.Option("--max-size", metavar="SIZE", help="File bytes at most, e.g. 800MB, 1.5GiB.")
    ] = None,
    max_params: Annotated[
        str | None, typer.Option("--max-params", metavar="N", help="Parameters at most, e.g. 200M, 1.5B.")
    ] = None,
    min_params: Annotated[str | None, typer.Option("--min-params", metavar="N", help="Parameters at least.")] = None,
    allow_dtypes: Annotated[
        str | None, typer.Option("--allow-dtypes", metavar="LIST", help="Only these dtypes, e.g. fp16,bf16.")
    ] = None,
    forbid_pickle: Annotated[
        bool, typer.Option("--forbid-pickle", help="Fail on any pickle-based file (.pth, .bin, .ckpt …).")
    ] = False,
    expect_params: Annotated[
        str | None,
        typer.Option("--expect-params", metavar="N±TOL", help="Parameter count within a tolerance: 124M±1%."),
    ] = None,
    max_share: Annotated[
        list[str] | None,
        typer.Option(
            "--max-share",
            metavar="GROUP=FRACTION",
            help="Share of parameters a group may hold (embedding, attention, mlp, norm, a module prefix or "
            "a glob); repeatable.",
        ),
    ] = None,
    allow_empty_share: Annotated[
        bool,
        typer.Option(
            "--allow-empty-share", help="A --max-share group may match no tensor (else that is an error, exit 2)."
        ),
    ] = False,
    vocab_consistent: Annotated[
        bool,
        typer.Option(
            "--vocab-consistent", help="Fail when tokenizer ids would index past the embedding or lm_head rows."
        ),
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", metavar="FILE", help="pyproject.toml to read [tool.mi.check] from.")
    ] = None,
    no_config: Annotated[bool, typer.Option("--no-config", help="Ignore pyproject.toml budgets.")] = False,
    json: JsonOpt = False,
    markdown: MarkdownOpt = False,
    endpoint: EndpointOpt = None,
    token: TokenOpt = None,
) -> None:
    """Check model files against CI budgets: size, params, dtypes, pickle.

    Budgets come from flags and from [tool.mi.check] in the nearest pyproject.toml. A folder's size and
    pickle rules count every model file in it. Exit 0 every rule passes, 1 a budget is breached, 2 a file
    cannot be read, a share group matches no tensor, or a pyproject glob matches no file.

    Examples:

    \b
      mi check model.safetensors --max-size 800MB --max-params 200M
      mi check model.safetensors --allow-dtypes bf16,f16 --forbid-pickle
      mi check models/ --expect-params 124M±1% --max-share embedding=0.3
    """
    from ..analysis.check import Budget, dtypes_list, parse_count, parse_expect, parse_share, parse_size
    from ..api.check import check_paths
    from ..api.outcome import exit_code
    from ..errors import InspectError
    from ..render.output import Output

    out = Output()
    try:
        one_format(json, markdown)  # inside: --json still prints its error document
        flags = Budget(
            max_size=parse_size(max_size) if max_size is not None else None,
            max_params=parse_count(max_params) if max_params is not None else None,
            min_params=parse_count(min_params) if min_params is not None else None,
            allow_dtypes=dtypes_list(allow_dtypes) if allow_dtypes is not None else None,
            forbid_pickle=forbid_pickle,
            expect_params=parse_expect(expect_params) if expect_params is not None else None,
            max_share=tuple(parse_share(s) for s in max_share or ()),
            allow_empty_share=allow_empty_share,
            vocab_consistent=vocab_consistent,
        )
        report = check_paths(list(paths or []), flags, config, use_config=not no_config, endpoint=endpoint, token=token)
    except InspectError as exc:
        if json:  # CI reads stdout: a document in every case, the one-line error on stderr as always
            from ..render.documents.check import error_document

            out.json(error_document(exc))
        raise
    if json:
        from ..render.documents.check import check_document

        out.json(check_document(report))
    else:
        from ..render.views.check import check_view

        out.show(*check_view(report), markdown=markdown)
    for r in report.results:
        if r.error:
            out.error(r.error)
    code = exit_code(report)
    if code:
        raise typer.Exit(code)
