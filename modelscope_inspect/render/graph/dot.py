"""A small DOT writer: nested clusters, HTML-like table labels, edges. No graphviz package needed.

Graph builders (`structure.py`, `onnx_graph.py`) describe *what* to draw with `DotGraph`; this module owns
*how* it looks (fonts, colours) so every picture `mi graph` makes shares one style.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

FONT = "Helvetica"
# Fill colours for parameter nodes by share of the model (light → strong), ColorBrewer OrRd.
SHARE_COLOURS = ("#fff7ec", "#fee8c8", "#fdd49e", "#fdbb84", "#fc8d59")
# Cluster backgrounds by nesting depth (blue-grey tints, so nested modules stay distinguishable).
CLUSTER_COLOURS = ("#f4f7fb", "#e8eef6", "#dde6f1", "#d2deec", "#c7d6e7")


def html_escape(text: str) -> str:
    """Escape text for a graphviz HTML-like label."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\n", "<BR/>")
    )


def quote(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def share_colour(share: float) -> str:
    """Fill colour for a node holding `share` of the model's parameters."""
    for limit, colour in zip((0.01, 0.05, 0.15, 0.35), SHARE_COLOURS, strict=False):
        if share < limit:
            return colour
    return SHARE_COLOURS[-1]


@dataclass(slots=True)
class Node:
    """One drawn node. `label` is an HTML-like label body (without the outer `<>`) or plain text."""

    id: str
    label: str
    html: bool = True
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Edge:
    src: str
    dst: str
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Cluster:
    """A subgraph drawn as a box around its nodes and sub-clusters."""

    id: str
    label: str
    depth: int
    nodes: list[Node] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class DotGraph:
    """A whole picture: a root cluster (not drawn as a box), edges, and a title."""

    title: str
    root: Cluster = field(default_factory=lambda: Cluster("root", "", -1))
    edges: list[Edge] = field(default_factory=list)
    rankdir: str = "TB"
    rows: list[list[str]] = field(default_factory=list)  # node ids kept on one rank, left to right

    def walk_nodes(self) -> Iterator[Node]:
        stack = [self.root]
        while stack:
            c = stack.pop()
            yield from c.nodes
            stack.extend(reversed(c.clusters))

    @property
    def n_nodes(self) -> int:
        return sum(1 for _ in self.walk_nodes())

    def to_dot(self) -> str:
        """The DOT text `dot` renders."""
        out: list[str] = [
            "digraph mi_graph {",
            f"  graph [rankdir={self.rankdir}, compound=true, newrank=true, nodesep=0.25, ranksep=0.35, "
            f'fontname="{FONT}", fontsize=16, labelloc=t, labeljust=l, pad=0.3, bgcolor=white, '
            f"label={quote(self.title)}];",
            f'  node [fontname="{FONT}", fontsize=10, shape=plain, penwidth=0.8];',
            f'  edge [fontname="{FONT}", fontsize=8, color="#555555", arrowsize=0.6, penwidth=0.8];',
        ]
        self._emit_cluster(self.root, out, "  ")
        for e in self.edges:
            out.append(f"  {e.src} -> {e.dst}{_attrs(e.attrs)};")
        for row in self.rows:
            if len(row) > 1:
                out.append(f"  {{rank=same; {' -> '.join(row)} [style=invis]}}")
        out.append("}")
        return "\n".join(out) + "\n"

    def _emit_cluster(self, c: Cluster, out: list[str], pad: str) -> None:
        inner = pad
        if c.depth >= 0:
            colour = CLUSTER_COLOURS[min(c.depth, len(CLUSTER_COLOURS) - 1)]
            out.append(f"{pad}subgraph {c.id} {{")
            inner = pad + "  "
            attrs = {
                "label": f"<{c.label}>",
                "style": "rounded,filled",
                "fillcolor": colour,
                "color": "#8899aa",
                "fontsize": "11",
                "labeljust": "l",
                "margin": "10",
            }
            attrs.update(c.attrs)
            out.append(f"{inner}graph{_attrs(attrs)};")
        for n in c.nodes:
            label = f"<{n.label}>" if n.html else quote(n.label)
            out.append(f"{inner}{n.id}{_attrs({'label': label, **n.attrs})};")
        for sub in c.clusters:
            self._emit_cluster(sub, out, inner)
        if c.depth >= 0:
            out.append(f"{pad}}}")


def _attrs(attrs: dict[str, str]) -> str:
    if not attrs:
        return ""
    parts = []
    for k, v in attrs.items():
        # Only labels are HTML (<...>, built here from escaped text) and go in as they are; everything else is
        # quoted, whatever it looks like: a tooltip is a tensor name, and `<a>, URL="javascript:…", x=<b>` as
        # one would otherwise add attributes (a link in the SVG).
        raw = k == "label" and v.startswith("<") and v.endswith(">")
        parts.append(f"{k}={v}" if raw else f"{k}={quote(v)}")
    return " [" + ", ".join(parts) + "]"


def table(
    header: str,
    subtitle: str,
    rows: list[tuple[str, ...]],
    *,
    fill: str,
    kind: str = "",
    row_ids: list[str] | None = None,
    dashed: bool = False,
) -> str:
    """An HTML-like table label: a bold header (and italic kind), a grey subtitle, then one row per tensor."""
    width = max((len(r) for r in rows), default=1)
    style = ' STYLE="ROUNDED,DASHED"' if dashed else ' STYLE="ROUNDED"'
    parts = [
        f'<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3" BGCOLOR="{fill}" COLOR="#666666"{style}>'
    ]
    kind_html = f' <FONT COLOR="#1f4e79"><I>{html_escape(kind)}</I></FONT>' if kind else ""
    parts.append(f'<TR><TD COLSPAN="{width}" ALIGN="LEFT"><B>{html_escape(header)}</B>{kind_html}</TD></TR>')
    if subtitle:
        parts.append(
            f'<TR><TD COLSPAN="{width}" ALIGN="LEFT"><FONT POINT-SIZE="8" COLOR="#555555">'
            f"{html_escape(subtitle)}</FONT></TD></TR>"
        )
    if rows:
        parts.append("<HR/>")
    for i, row in enumerate(rows):
        rid = f' ID="{row_ids[i]}"' if row_ids else ""
        cells = []
        for j, cell in enumerate(row):
            align = "LEFT" if j == 0 else "RIGHT"
            ident = rid if j == 0 else ""
            # graphviz rejects an empty <FONT></FONT>, so empty cells stay bare
            body = f'<FONT POINT-SIZE="9">{html_escape(cell)}</FONT>' if cell else ""
            cells.append(f'<TD ALIGN="{align}"{ident}>{body}</TD>')
        if len(row) < width:
            cells.append(f'<TD COLSPAN="{width - len(row)}"></TD>')
        parts.append("<TR>" + "".join(cells) + "</TR>")
    parts.append("</TABLE>")
    return "".join(parts)
