"""`mi scan PATH`: pickle safety without executing anything."""

from __future__ import annotations

from typing import Annotated

import typer

from ..loaders.scanner import Allow
from .options import EndpointOpt, JsonOpt, MarkdownOpt, TokenOpt, one_format


def scan_cmd(
    paths: Annotated[
        list[str],
        typer.Argument(help="Model files or folders (scanned recursively), or URLs (hf://ORG/NAME, https://…)."),
    ],
    json: JsonOpt = False,
    markdown: MarkdownOpt = False,
    endpoint: EndpointOpt = None,
    token: TokenOpt = None,
    allow: Annotated[
        list[Allow] | None,
        typer.Option("--allow", help="Accept code a file ships on purpose: torchscript, remote-code (repeatable)."),
    ] = None,
) -> None:
    """Pickle safety: every global and call, found without running it.

    Lists every global a pickle would import and every call it would make, without executing anything.

    Exit 0 clean, 1 something dangerous or unknown (or code not accepted with --allow), 2 could not scan.
    safetensors, ONNX and GGUF files hold no pickle and scan clean once their header validates.

    A URL is scanned without downloading the weights: only the pickle bytes are fetched.

    Examples:

    \b
      mi scan downloads/model.pth
      mi scan models/ hf://org/name
    """
    one_format(json, markdown)
    from ..api.outcome import exit_code
    from ..api.scan import scan_paths
    from ..render.output import Output

    report = scan_paths(paths, endpoint=endpoint, token=token, allow=frozenset(a.value for a in allow or ()))
    out = Output()
    if json:
        from ..render.documents.scan import scan_document

        out.json(scan_document(report))
    else:
        from ..render.views.scan import scan_view

        out.show(*scan_view(report), markdown=markdown)
    for f in report.files:
        if f.status == "error":
            out.error(f"{f.path}: could not scan: {f.error}")
    code = exit_code(report)
    if code:
        raise typer.Exit(code)
