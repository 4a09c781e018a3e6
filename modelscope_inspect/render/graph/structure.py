"""The module-hierarchy graph of any inventory (state dicts, safetensors, GGUF, …).

Modules are nested clusters; a module whose children are all tensors is one node listing its tensors with
shape, dtype and parameter count; repeated numbered blocks are folded (`layers.0-31 ×32`, from
`analysis.tree.module_tree`). Node colour follows the share of the model's parameters.

Edges in this graph are not data flow (a state dict does not record any): modules are stacked in file
order with invisible edges, and a dashed edge marks a tensor stored in another tensor's storage (tied weights).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath

from ...analysis.tree import Group, module_tree
from ...inventory import TensorInventory, TensorRecord
from ..units import human_bytes, human_count
from .dot import Cluster, DotGraph, Edge, Node, share_colour, table

MAX_NODES = 1500  # above this, an automatic --depth is chosen (dot slows down sharply past a few thousand)
ROW = 4  # sibling nodes placed side by side before starting a new row

_SPAN = re.compile(r"^(\d+)-(\d+)$")


@dataclass(slots=True)
class StructureGraph:
    """A drawn structure graph and what it shows."""

    graph: DotGraph
    depth: int
    tensors_shown: int  # distinct tensor rows (a folded row stands for several tensors)
    tensors_covered: int  # tensors represented by rows and collapsed nodes; equals the section's tensor count
    notes: list[str] = field(default_factory=list)


def shape_text(shape: tuple[int, ...]) -> str:
    """`(4096, 11008)` → `4096×11008`; a scalar is `scalar`."""
    return "×".join(str(d) for d in shape) if shape else "scalar"


def first_block(name: str) -> str:
    """The name of the first block a folded group stands for: `layers.0-31.mlp` → `layers.0.mlp`."""
    parts = []
    for part in name.split("."):
        m = _SPAN.match(part)
        parts.append(m.group(1) if m else part)
    return ".".join(parts)


def _plain_tree(inv: TensorInventory, max_depth: int, section: str = "model") -> Group:
    """The module tree without folding (`--no-collapse`): every block drawn on its own."""
    records = [t for t in inv.tensors if t.section == section]
    total = sum(t.counted_numel for t in records)

    @dataclass(slots=True)
    class _N:
        children: dict[str, _N] = field(default_factory=dict)
        tensor: TensorRecord | None = None

    root = _N()
    for rec in records:
        node = root
        parts = rec.name.split(".") if rec.name else ["<unnamed>"]
        for part in parts[:-1]:
            node = node.children.setdefault(part, _N())
        key = parts[-1]
        if key in node.children:
            if node.children[key].tensor is None:
                node.children[key].tensor = rec
                continue
            key = f"{key}#{len(node.children)}"
        node.children[key] = _N(tensor=rec)

    def build(n: _N, name: str, label: str, depth: int) -> Group:
        kids = (
            [build(c, f"{name}.{k}" if name else k, k, depth + 1) for k, c in n.children.items()]
            if depth < max_depth
            else []
        )
        params = nbytes = count = 0
        stack = [n]
        while stack:
            x = stack.pop()
            if x.tensor is not None:
                params += x.tensor.counted_numel
                nbytes += x.tensor.counted_nbytes
                count += 1
            stack.extend(x.children.values())
        tensor = n.tensor if not n.children else None
        return Group(name, label, params, nbytes, params / total if total else 0.0, 1, count, tuple(kids), tensor)

    return build(root, "", "(all)", 0)


@dataclass(slots=True)
class _Item:
    tops: list[str]
    bottoms: list[str]


class _Builder:
    def __init__(self, inv: TensorInventory, module_types: Mapping[str, str]) -> None:
        self.inv = inv
        self.by_name = {t.name: t for t in inv.tensors}
        self.module_types = module_types
        self.graph = DotGraph(title="")
        self.n = 0
        self.rows = 0
        self.covered = 0
        self.row_node: dict[str, str] = {}  # tensor name (first block) → node id drawing it
        self.shared: list[tuple[str, str, str]] = []  # (node id, tensor name, owner name)

    def new_id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def tensor_of(self, g: Group) -> TensorRecord | None:
        if g.tensor is not None:
            return g.tensor
        if g.children:
            return None
        return self.by_name.get(first_block(g.name))

    def kind_of(self, g: Group) -> str:
        qual = self.module_types.get(first_block(g.name), "")
        kind = qual.rsplit(".", 1)[-1] if qual else ""
        head, _, last = g.name.rpartition(".")
        if kind and _SPAN.match(last):  # folded blocks: the container they sit in (ModuleList) is not drawn
            container = self.module_types.get(first_block(head), "")
            if container:
                kind += f" in {container.rsplit('.', 1)[-1]}"
        return kind

    def paramless_children(self, g: Group) -> list[tuple[str, str]]:
        """Submodules the pickle names (Dropout, activations, …) that hold no tensors, so no tree node."""
        if not self.module_types:
            return []
        prefix = first_block(g.name)
        have = set()
        for c in g.children:
            rel = first_block(c.name)[len(prefix) + 1 :] if prefix else first_block(c.name)
            have.add(rel.split(".", 1)[0])
        out = []
        for path, qual in self.module_types.items():
            if prefix and not path.startswith(prefix + "."):
                continue
            rel = path[len(prefix) + 1 :] if prefix else path
            if rel and "." not in rel and rel not in have:
                out.append((rel, qual.rsplit(".", 1)[-1]))
        return out

    def subtitle(self, g: Group, mult: int) -> str:
        per = human_count(g.params // mult) if mult > 1 else human_count(g.params)
        times = f" ×{mult}" if mult > 1 else ""
        return f"{per}{times} params · {human_bytes(g.nbytes // mult)}{times} · {g.share:.1%}"

    def tensor_rows(self, groups: list[Group], node_id: str) -> tuple[list[tuple[str, ...]], list[str]]:
        rows: list[tuple[str, ...]] = []
        ids: list[str] = []
        for g in groups:
            rec = self.tensor_of(g)
            assert rec is not None
            if rec.shared_with is not None:
                count = f"tied → {rec.shared_with}"
                self.shared.append((node_id, rec.name, rec.shared_with))
            else:
                count = human_count(rec.numel)
            rows.append((g.label, shape_text(rec.shape), rec.dtype, count))
            n = max(g.n_tensors, 1)
            ids.append(f"t{len(self.row_node)}_{n}")
            self.row_node[rec.name] = node_id
            self.rows += 1
            self.covered += n
        return rows, ids

    def module_node(self, cluster: Cluster, g: Group, tensors: list[Group], mult: int, header: str) -> str:
        nid = self.new_id("m")
        rows, ids = self.tensor_rows(tensors, nid)
        if not tensors:  # a module below --depth: drawn collapsed, with its totals
            self.covered += g.n_tensors
            label = table(
                header, f"{g.n_tensors} tensors · " + self.subtitle(g, mult), [],
                fill=share_colour(g.share), kind=self.kind_of(g), dashed=True,
            )  # fmt: skip
            cluster.nodes.append(Node(nid, label, attrs={"id": f"c{nid}_{g.n_tensors}", "tooltip": g.name}))
            return nid
        label = table(
            header, self.subtitle(g, mult), rows, fill=share_colour(g.share), kind=self.kind_of(g), row_ids=ids
        )
        cluster.nodes.append(Node(nid, label, attrs={"tooltip": g.name or "(top level)"}))
        return nid

    def fill(self, cluster: Cluster, g: Group, mult: int) -> _Item | None:
        """Draw the children of `g` inside `cluster`; return the top/bottom anchors of what was drawn."""
        tensors = [c for c in g.children if self.tensor_of(c) is not None and not c.children]
        tensor_ids = {id(c) for c in tensors}
        modules = [c for c in g.children if id(c) not in tensor_ids]
        items: list[_Item] = []
        pending: list[str] = []  # node ids waiting to be placed in a row

        def flush() -> None:
            for i in range(0, len(pending), ROW):
                row = pending[i : i + ROW]
                items.append(_Item(row, row))
                self.graph.rows.append(row)
            pending.clear()

        if tensors:
            header = "(parameters)" if g.name else "(top-level tensors)"
            pending.append(self.module_node(cluster, g, tensors, mult, header))
        for m in modules:
            m_mult = mult * m.repeat
            sub_tensors = [c for c in m.children if self.tensor_of(c) is not None and not c.children]
            if not m.children or len(sub_tensors) == len(m.children):
                pending.append(self.module_node(cluster, m, sub_tensors, m_mult, m.label))
                continue
            flush()
            sub = Cluster(self.new_id("cluster_"), "", cluster.depth + 1)
            kind = self.kind_of(m)
            kind_html = f' <FONT COLOR="#1f4e79"><I>{_esc(kind)}</I></FONT>' if kind else ""
            sub.label = (
                f'<B>{_esc(m.label)}</B>{kind_html}<BR ALIGN="LEFT"/>'
                f'<FONT POINT-SIZE="8" COLOR="#555555">{_esc(self.subtitle(m, m_mult))}</FONT><BR ALIGN="LEFT"/>'
            )
            sub.attrs["tooltip"] = m.name
            item = self.fill(sub, m, m_mult)
            cluster.clusters.append(sub)
            if item is not None:
                items.append(item)
        paramless = self.paramless_children(g)
        if paramless:
            nid = self.new_id("p")
            rows: list[tuple[str, ...]] = [(name, cls) for name, cls in paramless]
            label = table("(no parameters)", "", rows, fill="#f8f9f9")
            cluster.nodes.append(Node(nid, label, attrs={"tooltip": "submodules without tensors"}))
            pending.append(nid)
        flush()
        if not items:
            return None
        for a, b in itertools.pairwise(items):
            for top in b.tops:
                self.graph.edges.append(Edge(a.bottoms[0], top, {"style": "invis", "weight": "4"}))
        return _Item(items[0].tops, items[-1].bottoms)


def _esc(text: str) -> str:
    from .dot import html_escape

    return html_escape(text)


def _max_depth(inv: TensorInventory, section: str) -> int:
    return max((t.name.count(".") + 1 for t in inv.tensors if t.section == section), default=1)


def structure_graph(
    inv: TensorInventory,
    *,
    depth: int | None = None,
    collapse: bool = True,
    max_nodes: int = MAX_NODES,
    section: str = "model",
) -> StructureGraph:
    """Draw the module hierarchy of `inv`. `depth=None` shows everything unless that is more than
    `max_nodes` nodes, in which case the deepest depth that fits is chosen (and said in `notes`).

    Example:
        >>> g = structure_graph(load("examples/tiny-gpt2"))  # doctest: +SKIP
        >>> g.graph.to_dot()[:20]  # doctest: +SKIP
    """
    notes: list[str] = []
    deepest = _max_depth(inv, section)
    d = min(depth, deepest) if depth is not None else deepest
    while True:
        built = _build(inv, d, collapse, section)
        if depth is not None or built.graph.n_nodes <= max_nodes or d <= 1:
            break
        d -= 1
    if depth is None and d < deepest:
        notes.append(f"graph limited to --depth {d} to stay under {max_nodes} nodes; pass --depth to choose")
    built.notes.extend(notes)
    if depth is not None:
        built.depth = depth
    return built


def _build(inv: TensorInventory, depth: int, collapse: bool, section: str) -> StructureGraph:
    root = module_tree(inv, max_depth=depth, section=section) if collapse else _plain_tree(inv, depth, section)
    types = inv.torch.module_types if inv.torch is not None else None
    module_types: Mapping[str, str] = types if isinstance(types, Mapping) else {}
    b = _Builder(inv, module_types)
    b.fill(b.graph.root, root, 1)
    for nid, _name, owner in b.shared:
        target = b.row_node.get(owner)
        if target is not None and target != nid:
            b.graph.edges.append(
                Edge(nid, target, {"style": "dashed", "color": "#c0392b", "label": "shares storage",
                                   "fontcolor": "#c0392b", "constraint": "false"})
            )  # fmt: skip
    if b.graph.n_nodes == 0:  # an empty file or one without model weights (optimizer-only, …)
        b.graph.root.nodes.append(Node("empty", table("no model tensors", "nothing to draw", [], fill="#f8f9f9")))
    model_cls = module_types.get("", "")
    n_tensors = sum(1 for t in inv.tensors if t.section == section)
    name = PurePath(inv.path).name or inv.path
    head = f"{name}{' (' + model_cls.rsplit('.', 1)[-1] + ')' if model_cls else ''}"
    b.graph.title = (
        f"{head} — {inv.format} · {inv.total_params:,} params · {human_bytes(inv.total_bytes)} · "
        f"{n_tensors} tensors{' (repeated blocks folded)' if collapse else ''}"
    )
    return StructureGraph(b.graph, depth, b.rows, b.covered)
