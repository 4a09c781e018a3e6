"""`mi inspect PATH`."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from .options import EndpointOpt, JsonOpt, MarkdownOpt, TokenOpt, one_format


class SortKey(StrEnum):
    file = "file"
    name = "name"
    params = "params"
    bytes = "bytes"


def inspect_cmd(
    path: Annotated[
        str, typer.Argument(help="Model file, sharded *.index.json, model folder, or URL (hf://ORG/NAME, https://…).")
    ],
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
) -> None:
    """What is inside a model file: parameters, bytes, dtypes, modules.

    The module tree shows each block's share of the parameters.

    Reads headers only and never runs code from the file.

    Examples:

    \b
      mi inspect model.safetensors --depth 2
      mi inspect model.pth --tensors --filter '*.attn.*'
      mi inspect hf://org/name --json
    """
    one_format(json, markdown)
    from ..api.model import open_model
    from ..api.params import adapter_report_for, cross_check_for
    from ..render.output import Output
    from ..render.progress import Reporter

    inv = open_model(path, endpoint=endpoint, token=token, progress=Reporter(), variant=variant)
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
