"""`mi scan PATH`: pickle safety without executing anything."""

from __future__ import annotations

from typing import Annotated

import typer

from .batch import AllowOpt, FromOpt, JobsOpt, JsonlOpt, ResumeOpt
from .options import EndpointOpt, JsonOpt, MarkdownOpt, TokenOpt, one_format


def scan_cmd(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Model files or folders (scanned recursively), or URLs (hf://ORG/NAME, https://…)."),
    ] = None,
    json: JsonOpt = False,
    markdown: MarkdownOpt = False,
    endpoint: EndpointOpt = None,
    token: TokenOpt = None,
    allow: AllowOpt = None,
    from_file: FromOpt = None,
    jsonl: JsonlOpt = False,
    jobs: JobsOpt = 4,
    resume: ResumeOpt = None,
) -> None:
    """Pickle safety: every global and call, found without running it.

    Lists every global a pickle would import and every call it would make, without executing anything.

    Exit 0 clean, 1 something dangerous or unknown (or code not accepted with --allow), 2 could not scan.
    safetensors, ONNX and GGUF files hold no pickle and scan clean once their header validates.

    A URL is scanned without downloading the weights: only the pickle bytes are fetched.

    A folder's Python files and config auto_map entries (remote code) are findings of severity code.

    With --jsonl (or --from, --resume) each target is scanned on its own and printed as one JSON record when
    it finishes; the exit code is the worst of the targets (1 found, else 2 unreadable, else 0).

    Examples:

    \b
      mi scan downloads/model.pth
      mi scan models/ hf://org/name
      mi scan --from targets.txt --jsonl --jobs 8 > scan.jsonl
    """
    one_format(json, markdown)
    from ..api.outcome import exit_code
    from ..api.scan import scan_paths
    from ..render.output import Output
    from .batch import run_batch, targets_of

    allowed = tuple(a.value for a in allow or ())
    targets = targets_of(paths, from_file)
    if jsonl or from_file is not None or resume is not None:
        from ..batch import record

        def one(t: str) -> dict[str, object]:
            return record(t, "scan", allow=allowed, endpoint=endpoint, token=token)

        run_batch(targets, one, jobs=jobs, resume=resume)
        return
    report = scan_paths(targets, endpoint=endpoint, token=token, allow=allowed)
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
