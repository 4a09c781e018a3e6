"""Pictures of model files without a browser: `mi graph`.

- `build_graph(source)`: the DOT text of a structure graph (any inventory: modules as nested clusters,
  repeated blocks folded), an ONNX computational graph, or a torchviz autograd graph of a rebuilt model.
- `write_graph(result, fmt, out)`: DOT text as is, or PNG/SVG through Graphviz's `dot` binary.
- `export_onnx(inv, out)`: a Netron-compatible ONNX model (`rebuild.py`).

Every file written passes `api.output.OutputGuard`: never over or inside an input, never over an existing
file unless `--force`.

Nothing here executes a model file: structure comes from `api.open_model` (headers only) and ONNX protobufs are
parsed, never run. Rebuilt models are built from a config.json or from tensor names and shapes, with
random or meta weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...api.output import OutputGuard

if TYPE_CHECKING:
    from ...api.graph import GraphInput

__all__ = ["GraphResult", "build_graph", "write_graph"]


@dataclass(frozen=True, slots=True)
class GraphResult:
    """A graph ready to write: its DOT text and what it shows."""

    kind: str  # "structure" | "onnx" | "torchviz"
    path: str
    dot: str
    nodes: int
    edges: int
    depth: int | None
    notes: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


def build_graph(
    source: GraphInput, *, depth: int | None = None, collapse: bool = True, torchviz: bool = False
) -> GraphResult:
    """The graph of a model: ONNX models get their computational graph, everything else its module structure;
    `torchviz=True` rebuilds the model (see `rebuild.py`) and draws its autograd graph.

    Example:
        >>> r = build_graph(graph_input("examples/tiny-gpt2"))  # doctest: +SKIP
        >>> r.kind, r.nodes  # doctest: +SKIP
        ('structure', 8)
    """
    path = source.path
    if source.onnx is not None:
        from .onnx_graph import onnx_graph

        og = onnx_graph(source.onnx, Path(path).name, depth=depth, collapse=collapse)
        return GraphResult(
            "onnx", path, og.graph.to_dot(), og.graph.n_nodes, len(og.graph.edges), og.depth, tuple(og.notes),
            {"operators": sum(og.ops.values()), "op_nodes": og.op_nodes, "collapsed_operators": og.folded_nodes,
             "constants_folded": og.constants_folded, "op_histogram": dict(og.ops.most_common())},
        )  # fmt: skip
    inv = source.inventory
    assert inv is not None
    if torchviz:
        from .rebuild import torchviz_dot

        text, info = torchviz_dot(inv)
        return GraphResult("torchviz", path, text, info["nodes"], info["edges"], None, tuple(info["notes"]), info)
    from .structure import structure_graph

    sg = structure_graph(inv, depth=depth, collapse=collapse)
    visible = [e for e in sg.graph.edges if e.attrs.get("style") != "invis"]
    return GraphResult(
        "structure", path, sg.graph.to_dot(), sg.graph.n_nodes, len(visible), sg.depth, tuple(sg.notes),
        {"format": inv.format, "tensors": sum(1 for t in inv.tensors if t.section == "model"),
         "tensor_rows": sg.tensors_shown, "tensors_covered": sg.tensors_covered, "total_params": inv.total_params},
    )  # fmt: skip


def default_output(path: str, fmt: str) -> Path:
    """`./<name>.graph.<fmt>` in the current folder (never next to, or over, the input)."""
    name = Path(path.rstrip("/\\")).name or "model"
    return Path(f"{name}.graph.{fmt}")


def write_graph(
    result: GraphResult,
    fmt: str,
    out: Path,
    *,
    progress: Callable[[str], None] | None = None,
    timeout: float | None = None,
    guard: OutputGuard | None = None,
) -> float:
    """Write `result` as `fmt` (dot, png, svg) to `out`; return the seconds spent rendering.

    `guard` (default: protect `result.path`, replace nothing) refuses an `out` that is, or is inside, an input
    or that exists without `--force` (`api.output`).
    """
    (guard or OutputGuard((result.path,))).check(out)
    if fmt == "dot":
        out.write_text(result.dot, encoding="utf-8")
        return 0.0
    from .render import DEFAULT_TIMEOUT, render

    return render(result.dot, fmt, out, timeout=timeout or DEFAULT_TIMEOUT, progress=progress, n_nodes=result.nodes)
