"""`mi report PATH [-o report.html]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .options import EndpointOpt, TokenOpt


def report_cmd(
    path: Annotated[
        str, typer.Argument(help="Model file, sharded *.index.json, model folder, or URL (hf://ORG/NAME, https://…).")
    ],
    output: Annotated[
        str | None,
        typer.Option(
            "-o", "--output", metavar="OUT", help="The page to write (default ./NAME.report.html; never an input)."
        ),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(
            "--config", metavar="PATH", help="An HF config.json for the memory section (auto in HF folders and GGUF)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT when it exists.")] = False,
    graph: Annotated[
        bool, typer.Option("--graph/--no-graph", help="Embed the structure or ONNX graph (needs Graphviz `dot`).")
    ] = True,
    endpoint: EndpointOpt = None,
    token: TokenOpt = None,
) -> None:
    """One page to look at: treemap, tensors, memory, scan, graph.

    Writes one self-contained HTML file that opens offline in any browser and makes no network request:
    a zoomable treemap of where the bytes go, the tensor table (sortable, filterable), memory against
    context length with GPU sizes, the scan verdict and the graph. Readable with JavaScript off.

    Reads headers only and never runs code from the file.

    Examples:

    \b
      mi report examples/tiny-gpt2 -o tiny-gpt2.html
      mi report model.gguf
      mi report hf://org/name --config config.json
    """
    from ..api.output import OutputGuard, model_inputs
    from ..api.report import report_input
    from ..render.output import Output
    from ..render.report import default_output, write_report
    from ..render.units import human_bytes

    target = Path(output) if output else default_output(path)
    guard = OutputGuard((path,), force)
    guard.check(target, existing=False)  # refused before anything is read
    data = report_input(path, config=config, endpoint=endpoint, token=token, graph=graph)
    res = write_report(data, target, guard.including(model_inputs(path, data.inventory)), graph=graph)
    out = Output()
    for note in res.notes:
        out.note(f"note: {note}")
    out.console.print(
        f"wrote {res.path} ({human_bytes(res.nbytes)}, {len(data.inventory.tensors):,} tensors)",
        soft_wrap=True,
        markup=False,
    )
