"""`mi report`: a model on one self-contained, offline HTML page (`page.py`; the script and style in `assets.py`).

- `report_html(data)`: the page as a string (the graph drawn by Graphviz's `dot` when it is installed);
- `write_report(data, out, guard)`: the page written to `out` through `api.output.OutputGuard`.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import InspectError

if TYPE_CHECKING:
    from ...api.output import OutputGuard
    from ...api.report import ReportInput

__all__ = ["ReportResult", "default_output", "report_html", "write_report"]

GRAPH_TIMEOUT = 20.0  # seconds `dot` may take; past that the page goes without its graph (and says so)
GRAPH_MAX_NODES = 400  # a bigger graph is drawn at a smaller depth: a page, not a poster
GRAPH_MAX_BYTES = 1 << 20  # an SVG bigger than this is left out (the page must stay small)


@dataclass(frozen=True, slots=True)
class ReportResult:
    """A written page: where, how big, how long it took, and what was left out."""

    path: Path
    nbytes: int
    seconds: float
    graph: bool
    notes: tuple[str, ...]


def default_output(path: str) -> Path:
    """`./<name>.report.html` in the current folder (never next to, or over, the input)."""
    name = Path(path.rstrip("/\\")).name or "model"
    if "://" in path:
        name = path.rstrip("/").rsplit("/", 1)[-1] or "model"
    return Path(f"{name}.report.html")


def _graph_svg(data: ReportInput) -> tuple[str | None, str | None]:
    """The graph as SVG text, or None and why not."""
    if data.graph is None:
        return None, None
    from ..graph import build_graph
    from ..graph.render import dot_binary, render

    if dot_binary() is None:
        return None, "graph: Graphviz `dot` is not installed, so the page has no graph (apt-get install graphviz)"
    try:
        result = build_graph(data.graph)
        if result.nodes > GRAPH_MAX_NODES and result.kind == "structure":
            result = build_graph(data.graph, depth=2)
        with tempfile.TemporaryDirectory(prefix="mi-report-") as tmp:
            out = Path(tmp) / "graph.svg"
            render(result.dot, "svg", out, timeout=GRAPH_TIMEOUT, n_nodes=result.nodes)
            svg = out.read_text(encoding="utf-8")
    except InspectError as exc:
        return None, f"graph: {exc}"
    if len(svg.encode("utf-8")) > GRAPH_MAX_BYTES:
        return None, f"graph: {result.nodes:,} nodes make an SVG over {GRAPH_MAX_BYTES >> 20} MiB; use mi graph --svg"
    return svg, None


def report_html(data: ReportInput, *, graph: bool = True) -> tuple[str, str | None]:
    """The page, and a note when the graph could not be drawn."""
    from .page import report_page

    svg, note = _graph_svg(data) if graph else (None, None)
    return report_page(data, graph_svg=svg, graph_note=note), note


def write_report(data: ReportInput, out: Path, guard: OutputGuard, *, graph: bool = True) -> ReportResult:
    """Build the page and write it to `out` (checked by `guard` right before writing)."""
    start = time.perf_counter()
    html, note = report_html(data, graph=graph)
    raw = html.encode("utf-8")
    guard.check(out)
    out.write_bytes(raw)
    return ReportResult(out, len(raw), time.perf_counter() - start, "<img alt=\"model graph\"" in html,
                        tuple(n for n in (note,) if n))  # fmt: skip
