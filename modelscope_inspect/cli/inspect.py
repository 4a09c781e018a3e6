"""`mi inspect PATH`."""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum
from typing import Annotated

import typer

from .batch import FromOpt, JobsOpt, JsonlOpt, ResumeOpt
from .options import EndpointOpt, JsonOpt, MarkdownOpt, TokenOpt, one_format


class SortKey(StrEnum):
    file = "file"
    name = "name"
    params = "params"
    bytes = "bytes"


def inspect_cmd(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Model file, sharded *.index.json, model folder, or URL (hf://ORG/NAME, https://…); several with "
            "--jsonl.",
            metavar="PATH",
        ),
    ] = None,
    json: JsonOpt = False,
    markdown: MarkdownOpt = False,
    depth: Annotated[int, typer.Option("--depth", min=1, max=64, help="Module-tree depth.")] = 3,
    tensors: Annotated[bool, typer.Option("--tensors", help="Also list every tensor.")] = False,
    sort: Annotated[SortKey, typer.Option("--sort", help="Order of the tensor list.")] = SortKey.file,
    filter: Annotated[
        str | None, typer.Option("--filter", metavar="GLOB", help="Only tensors whose name matches GLOB.")
    ] = None,
    endpoint: EndpointOpt = None,
    token: TokenOpt = None,
    config: Annotated[
        str | None,
        typer.Option(
            "--config", metavar="PATH", help="Cross-check the count with an HF config.json (auto in folders)."
        ),
    ] = None,
    variant: Annotated[
        str | None,
        typer.Option(
            "--variant", metavar="NAME", help="diffusers pipelines: the weight variant (default fp16 if any)."
        ),
    ] = None,
    base: Annotated[
        str | None,
        typer.Option("--base", metavar="CONFIG", help="PEFT adapters: the base model's config.json, folder or URL."),
    ] = None,
    from_file: FromOpt = None,
    jsonl: JsonlOpt = False,
    jobs: JobsOpt = 4,
    resume: ResumeOpt = None,
) -> None:
    """What is inside a model file: parameters, bytes, dtypes, modules.

    The module tree shows each block's share of the parameters.

    Reads headers only and never runs code from the file.

    Examples:

    \b
      mi inspect model.safetensors --depth 2
      mi inspect model.pth --tensors --filter '*.attn.*'
      mi inspect hf://org/name --json
      mi inspect --from targets.txt --jsonl
    """
    one_format(json, markdown)
    from ..api.model import open_model
    from ..api.params import adapter_report_for, cross_check_for
    from ..api.remote_code import remote_code_warning
    from ..errors import UsageError
    from ..render.output import Output
    from ..render.progress import Reporter
    from .batch import run_batch, targets_of

    targets = targets_of(paths, from_file)
    if jsonl or from_file is not None or resume is not None:
        from ..batch import record

        def one(t: str) -> dict[str, object]:
            return record(t, "inspect", endpoint=endpoint, token=token)

        run_batch(targets, one, jobs=jobs, resume=resume)
        return
    if len(targets) > 1:
        raise UsageError("several targets need --jsonl (one record each)")
    path = targets[0]
    inv = open_model(path, endpoint=endpoint, token=token, progress=Reporter(), variant=variant)
    warning = remote_code_warning(path, endpoint=endpoint, token=token)
    if warning is not None:  # one line among the inventory's warnings, in the tables and in --json
        inv = replace(inv, warnings=(*inv.warnings, warning))
    cc = None
    if config is not None or inv.config is not None:  # the analytic cross-check needs a config.json
        cc = cross_check_for(inv, config, endpoint=endpoint, token=token)
    adapter = adapter_report_for(inv, base, endpoint=endpoint, token=token)
    out = Output()
    if json:
        from ..render.documents.inspect import inspect_document

        doc = inspect_document(inv, depth=depth, pattern=filter, sort=sort.value)
        if cc is not None:
            from ..render.documents.params import cross_check_document

            doc["cross_check"] = cross_check_document(cc)
        if adapter is not None:
            from ..render.documents.params import adapter_document

            doc["adapter"] = adapter_document(adapter)
        out.json(doc)
    else:
        from ..render.views.inspect import inspect_view

        view = inspect_view(
            inv, depth=depth, show_tensors=tensors, pattern=filter, sort=sort.value, cross_check=cc, adapter=adapter
        )
        out.show(*view, markdown=markdown)
