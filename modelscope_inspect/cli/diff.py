"""`mi diff A B`: what changed between two checkpoints, across formats."""

from __future__ import annotations

from typing import Annotated

import typer

from .options import EndpointOpt, JsonOpt, MarkdownOpt, TokenOpt, one_format


def diff_cmd(
    a: Annotated[str, typer.Argument(help="First model file, folder or URL (hf://ORG/NAME, https://…).")],
    b: Annotated[str, typer.Argument(help="Second model file, folder or URL (any format).")],
    values: Annotated[
        bool, typer.Option("--values", help="Also compare tensor contents (reads the data; progress on stderr).")
    ] = False,
    json: JsonOpt = False,
    markdown: MarkdownOpt = False,
    endpoint: EndpointOpt = None,
    token: TokenOpt = None,
) -> None:
    """What changed between two checkpoints, across formats.

    Added, removed, reshaped and retyped tensors, and the parameter and byte deltas.

    Works across formats (a .pth against its .safetensors). Exit 0 identical, 1 different, 2 unreadable.

    Examples:

    \b
      mi diff old/model.pth new/model.safetensors
      mi diff a.safetensors b.safetensors --values
    """
    one_format(json, markdown)
    from ..api.diff import diff_paths
    from ..api.outcome import exit_code
    from ..render.output import Output
    from ..render.progress import Reporter

    report = diff_paths(a, b, values=values, progress=Reporter() if values else None, endpoint=endpoint, token=token)
    out = Output()
    if json:
        from ..render.documents.diff import diff_document

        out.json(diff_document(report))
    else:
        from ..render.views.diff import diff_view

        out.show(*diff_view(report), markdown=markdown)
    code = exit_code(report)
    if code:
        raise typer.Exit(code)
