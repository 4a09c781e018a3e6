"""`mi graph PATH (--png | --svg | --dot | --onnx)`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .options import JsonOpt

if TYPE_CHECKING:
    from ..render.output import Output


def graph_cmd(
    path: Annotated[str, typer.Argument(help="Model file, sharded *.index.json, model folder, or .onnx file.")],
    png: Annotated[bool, typer.Option("--png", help="Write a PNG picture (the default).")] = False,
    svg: Annotated[bool, typer.Option("--svg", help="Write an SVG picture.")] = False,
    dot: Annotated[bool, typer.Option("--dot", help="Write Graphviz DOT text (stdout unless -o).")] = False,
    onnx: Annotated[
        bool, typer.Option("--onnx", help="Write a Netron-compatible ONNX model (rebuilt graph or structure).")
    ] = False,
    output: Annotated[
        str | None,
        typer.Option("-o", "--output", metavar="OUT", help="Output file (never an input, nor inside an input folder)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT when it exists.")] = False,
    depth: Annotated[
        int | None,
        typer.Option("--depth", min=1, max=64, help="Module levels drawn; deeper modules become one node each."),
    ] = None,
    collapse: Annotated[
        bool,
        typer.Option(
            "--collapse/--no-collapse",
            help="Fold repeated blocks (layers.0-31 ×32); for ONNX fold weights and constants into their consumer.",
        ),
    ] = True,
    torchviz: Annotated[
        bool, typer.Option("--torchviz", help="Rebuild the model, run one forward and draw its autograd graph.")
    ] = False,
    serve: Annotated[
        bool, typer.Option("--serve", help="Open the ONNX model in Netron (needs the netron package); prints the URL.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Draw a model: its module structure, ONNX graph or autograd graph.

    State dicts, safetensors and GGUF files give their module hierarchy (repeated blocks folded, share of
    each block); ONNX files give their operator graph. PNG and SVG need Graphviz's `dot`.

    Examples:

    \b
      mi graph examples/tiny-gpt2 --png -o tiny-gpt2.png
      mi graph model.onnx --svg
      mi graph model.pth --dot --depth 2
    """
    from ..api.graph import graph_input, input_paths
    from ..api.model import open_model
    from ..api.output import OutputGuard, model_inputs
    from ..errors import UsageError
    from ..render.documents import envelope
    from ..render.graph import build_graph, default_output, write_graph
    from ..render.output import Output

    out = Output()
    chosen = [name for name, flag in (("png", png), ("svg", svg), ("dot", dot), ("onnx", onnx)) if flag]
    if len(chosen) > 1:
        raise UsageError("choose one of --png, --svg, --dot, --onnx", rule="usage")
    if serve and not chosen:
        chosen = ["onnx"]
    fmt = chosen[0] if chosen else "png"
    if serve and fmt != "onnx":
        raise UsageError("--serve opens an ONNX model; use it alone or with --onnx", rule="usage")
    if torchviz and fmt == "onnx":
        raise UsageError("--torchviz draws a picture; use it with --png, --svg or --dot", rule="usage")
    progress = None if json else out.note
    doc: dict[str, Any] = envelope("graph", path=path, output_format=fmt)
    # One guard for every file written: the path typed is checked before the model is read (a refusal costs
    # nothing), then every file the model was read from and an existing OUT right before each write.
    guard = OutputGuard((path,), force)

    if fmt == "onnx":
        from ..api.graph import is_onnx_path
        from ..render.graph.rebuild import export_onnx, serve_netron

        target = Path(output) if output else default_output(path, "onnx")
        if is_onnx_path(path):
            raise UsageError("the input is already ONNX; open it in Netron directly or draw it with --png/--svg",
                             path=path, rule="usage")  # fmt: skip
        guard.check(target, existing=False)
        inv = open_model(path)
        res = export_onnx(inv, target, progress=progress, guard=guard.including(model_inputs(path, inv)))
        doc.update(kind=res.mode, output=str(res.path), architecture=res.architecture, notes=list(res.notes),
                   op_histogram=res.ops, nodes=sum(res.ops.values()), initializers=res.initializers)  # fmt: skip
        url = serve_netron(str(res.path)) if serve else None
        if url:
            doc["url"] = url
        if json:
            out.json(doc)
        else:
            for note in res.notes:
                out.note(f"note: {note}")
            _line(out, f"wrote {res.path} ({res.mode}: {res.architecture}, {sum(res.ops.values()):,} nodes)")
            if url:
                _line(out, f"Netron: {url}")
        if url:
            from ..render.graph.rebuild import wait_netron

            wait_netron()
        return

    to_file = not (fmt == "dot" and output in (None, "-"))
    target = Path(output) if output else default_output(path, fmt)
    if to_file:
        guard.check(target, existing=False)
    source = graph_input(path, operators=not torchviz)
    result = build_graph(source, depth=depth, collapse=collapse, torchviz=torchviz)
    doc.update(kind=result.kind, nodes=result.nodes, edges=result.edges, depth=result.depth,
               notes=list(result.notes), details=result.details)  # fmt: skip
    if not to_file:
        doc["output"] = "-"
        if json:
            doc["dot"] = result.dot
            out.json(doc)
        else:
            for note in result.notes:
                out.note(f"note: {note}")
            _raw(out, result.dot)
        return
    seconds = write_graph(result, fmt, target, progress=progress, guard=guard.including(input_paths(source)))
    doc.update(output=str(target), seconds=round(seconds, 3))
    if json:
        out.json(doc)
        return
    for note in result.notes:
        out.note(f"note: {note}")
    _line(out, f"wrote {target} ({result.kind} graph, {result.nodes:,} nodes, {result.edges:,} edges)")


def _line(out: Any, text: str) -> None:
    # One result line; never re-flowed to the terminal width (paths can be long).
    out.console.print(text, soft_wrap=True, markup=False)


def _raw(out: Output, text: str) -> None:
    # Plain text on stdout, unwrapped (DOT must not be re-flowed by rich).
    out.text(text)
