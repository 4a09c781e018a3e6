"""The computational graph of an ONNX file: operator nodes, tensor edges with shapes, clusters per layer.

Needs the `onnx` package (optional extra). The protobuf is parsed without loading external data; nothing in
the file is executed. Initializers (weights) and `Constant` outputs are folded into the node that consumes
them (`--collapse`, like Netron) or drawn as parameter nodes (`--no-collapse`). Nodes are grouped into
clusters by the module scope the exporter recorded (`pkg.torch.onnx.name_scopes` metadata from the torch
dynamo exporter, or `/model/layers.0/attn/MatMul`-style names from the TorchScript exporter); `--depth N`
draws every scope deeper than N as one node, with its operator histogram.
"""

from __future__ import annotations

import ast
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ...api.graph import require_onnx
from ...dtypes import ONNX_DTYPES
from ..units import human_count
from .dot import Cluster, DotGraph, Edge, Node, html_escape, table

MAX_NODES = 1500
FANOUT = 4  # a tensor with more readers than this gets one edge; the others list it as an input row


@dataclass(slots=True)
class OnnxGraph:
    graph: DotGraph
    depth: int | None
    op_nodes: int  # ONNX nodes drawn one by one
    folded_nodes: int  # ONNX nodes drawn inside a collapsed scope node
    constants_folded: int  # Constant nodes folded into their consumers
    ops: Counter[str]
    notes: list[str] = field(default_factory=list)


def _dims(t: Any) -> str:
    """Shape text of a ValueInfo's tensor type: `1×8×4096`, symbolic dims by name, `?` when unknown."""
    tt = t.type.tensor_type
    if not tt.HasField("shape"):
        return ""
    out = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            out.append(str(d.dim_value))
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append("?")
    return "×".join(out) if out else "scalar"


def _scope(node: Any) -> tuple[str, ...]:
    """The module path of a node: dynamo metadata first, then `/a/b/Op`-style names."""
    for p in node.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = ast.literal_eval(p.value)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                break
            if isinstance(scopes, list) and all(isinstance(s, str) for s in scopes):
                # ['', 'm', 'm.model', 'm.model.layers.0', ..., 'opname']: the last entry is the op itself.
                mods = [s for s in scopes[:-1] if s]
                out: list[str] = []
                prev = ""
                for s in mods:
                    rel = s[len(prev) + 1 :] if prev and s.startswith(prev + ".") else s
                    out.append(rel)
                    prev = s
                return tuple(out)
    if node.name.startswith("/") and node.name.count("/") >= 2:
        return tuple(p for p in node.name.split("/")[1:-1] if p)
    return ()


def _shapes(model: Any) -> dict[str, tuple[str, str]]:
    """tensor name → (shape text, dtype) from inputs, outputs, value_info and initializers; shape inference
    fills in what the exporter did not record (skipped when it fails: shapes are then partly unknown)."""
    g = model.graph
    infos = [*g.input, *g.output, *g.value_info]
    if len(g.value_info) < len(g.node) // 2:
        try:
            onnx = require_onnx()
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
            infos.extend(inferred.graph.value_info)
        except Exception:  # inference is a nicety: an unknown shape is shown blank
            pass
    out: dict[str, tuple[str, str]] = {}
    for vi in infos:
        if vi.type.HasField("tensor_type"):
            out.setdefault(vi.name, (_dims(vi), ONNX_DTYPES.get(vi.type.tensor_type.elem_type, "?")))
    for init in g.initializer:
        out[init.name] = ("×".join(str(d) for d in init.dims) or "scalar", ONNX_DTYPES.get(init.data_type, "?"))
    return out


def _numel(dims: Any) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


def onnx_graph(
    model: Any, name: str, *, depth: int | None = None, collapse: bool = True, max_nodes: int = MAX_NODES
) -> OnnxGraph:
    """Draw the computational graph of an ONNX model (a ModelProto read by `api.graph.open_onnx`) named `name`.

    Example:
        >>> g = onnx_graph(open_onnx("model.onnx"), "model.onnx", depth=2)  # doctest: +SKIP
        >>> g.ops.most_common(3)  # doctest: +SKIP
    """
    g = model.graph
    scopes = [_scope(n) for n in g.node]
    deepest = max((len(s) for s in scopes), default=0)
    notes: list[str] = []
    d = depth
    if d is None and len(g.node) > max_nodes and deepest:
        # The deepest scope level that keeps the drawing under max_nodes nodes.
        d = deepest
        while d > 0 and len({s[: d + 1] if len(s) > d else (i,) for i, s in enumerate(scopes)}) > max_nodes:
            d -= 1
        notes.append(f"{len(g.node):,} operators: scopes deeper than --depth {d} drawn as one node each")
    return _draw(model, scopes, d, collapse, name, notes)


def _draw(model: Any, scopes: list[tuple[str, ...]], depth: int | None, collapse: bool, name: str,
          notes: list[str]) -> OnnxGraph:  # fmt: skip
    g = model.graph
    shapes = _shapes(model)
    inits = {i.name: i for i in g.initializer}
    graph_inputs = [i for i in g.input if i.name not in inits]
    const_out: dict[str, int] = {}
    if collapse:
        for i, n in enumerate(g.node):
            if n.op_type == "Constant" and len(n.output) == 1:
                const_out[n.output[0]] = i

    dg = DotGraph(title="")
    clusters: dict[tuple[str, ...], Cluster] = {(): dg.root}

    def cluster_for(scope: tuple[str, ...]) -> Cluster:
        if scope in clusters:
            return clusters[scope]
        parent = cluster_for(scope[:-1])
        c = Cluster(f"cluster_{len(clusters)}", f"<B>{html_escape(scope[-1])}</B>", len(scope) - 1)
        c.attrs["tooltip"] = ".".join(scope)
        parent.clusters.append(c)
        clusters[scope] = c
        return c

    producer: dict[str, str] = {}  # tensor name → drawn node id
    for i, vi in enumerate(graph_inputs):
        nid = f"in{i}"
        shape, dtype = shapes.get(vi.name, ("", ""))
        dg.root.nodes.append(Node(nid, table(vi.name, f"input · {dtype} {shape}".strip(), [], fill="#d5f5e3"),
                                  attrs={"id": f"input:{i}"}))  # fmt: skip
        producer[vi.name] = nid

    # Where each ONNX node is drawn: its own node, or (deeper than `depth`) one node per scope prefix.
    ops: Counter[str] = Counter(n.op_type for n in g.node)
    groups: dict[tuple[str, ...], list[int]] = {}
    dst_of: dict[int, str] = {}
    for i, n in enumerate(g.node):
        if n.output and const_out.get(n.output[0]) == i:
            continue  # a Constant folded into its consumers
        s = scopes[i]
        if depth is not None and len(s) > depth:
            members = groups.setdefault(s[: depth + 1], [])  # drawn inside the cluster of s[:depth]
            members.append(i)
            dst_of[i] = f"s{len(groups) - 1}"
        else:
            dst_of[i] = f"n{i}"
        for o in n.output:
            producer[o] = dst_of[i]
    if not collapse:
        for j, iname in enumerate(inits):
            producer[iname] = f"w{j}"

    # Edges, deduplicated per (source, destination). A tensor read by many nodes far apart (rotary tables,
    # attention masks: 32 consumers in a 32-layer model) would make dot route hundreds of long edges and take
    # minutes; past FANOUT consumers it gets one edge, and the other consumers list it as an input row.
    consumers: dict[str, list[str]] = {}
    for i, n in enumerate(g.node):
        dst = dst_of.get(i)
        if dst is None:
            continue
        for x in n.input:
            if not x or (collapse and (x in inits or x in const_out)):
                continue
            src = producer.get(x)
            if src is None or src == dst:
                continue
            lst = consumers.setdefault(x, [])
            if dst not in lst:
                lst.append(dst)
    stub_rows: dict[str, list[tuple[str, ...]]] = {}
    seen: set[tuple[str, str]] = set()
    for x, dsts in consumers.items():
        src = producer[x]
        shape, dtype = shapes.get(x, ("", ""))
        many = len(dsts) > FANOUT
        for k, dst in enumerate(dsts):
            if many and k > 0:
                stub_rows.setdefault(dst, []).append((f"⇠ {_short(x, 28)}", shape, dtype))
                continue
            if (src, dst) in seen:
                continue
            seen.add((src, dst))
            label = f" {shape}" + (f" (+{len(dsts) - 1} more readers)" if many else "")
            dg.edges.append(Edge(src, dst, {"label": label} if label.strip() else {}))

    folded = 0
    for k, (key, members) in enumerate(groups.items()):
        nid = f"s{k}"
        hist = Counter(g.node[i].op_type for i in members)
        top = ", ".join(f"{op}×{c}" if c > 1 else op for op, c in hist.most_common(6))
        more = f", +{len(hist) - 6} kinds" if len(hist) > 6 else ""
        params = sum(_numel(inits[x].dims) for i in members for x in g.node[i].input if x in inits)
        sub = f"{len(members)} ops · {human_count(params)} params"
        label = table(key[-1], sub, [(top + more,), *stub_rows.get(nid, [])], fill="#eaf2f8", dashed=True)
        cluster_for(key[:-1]).nodes.append(
            Node(nid, label, attrs={"id": f"scope:{len(members)}", "tooltip": ".".join(key)})
        )
        folded += len(members)

    drawn = 0
    for i, n in enumerate(g.node):
        nid = dst_of.get(i, "")
        if not nid.startswith("n"):
            continue
        rows: list[tuple[str, ...]] = []
        for x in n.input:
            if collapse and x in inits:
                t = inits[x]
                shape = "×".join(str(d) for d in t.dims) or "scalar"
                rows.append((_short(x), shape, ONNX_DTYPES.get(t.data_type, "?")))
            elif x in const_out:
                shape, dtype = shapes.get(x, ("", ""))
                rows.append(("const", shape, dtype))
        rows.extend(stub_rows.get(nid, []))
        label = table(n.op_type, _short(n.name) if n.name else "", rows, fill=_op_colour(n.op_type))
        cluster_for(scopes[i]).nodes.append(Node(nid, label, attrs={"id": f"op:{i}", "tooltip": n.name or n.op_type}))
        drawn += 1

    if not collapse:
        for j, (iname, t) in enumerate(inits.items()):
            shape = "×".join(str(d) for d in t.dims) or "scalar"
            label = table(_short(iname), f"{shape} {ONNX_DTYPES.get(t.data_type, '?')}", stub_rows.get(f"w{j}", []),
                          fill="#fdebd0")  # fmt: skip
            dg.root.nodes.append(Node(f"w{j}", label, attrs={"id": f"init:{j}"}))

    for k, vi in enumerate(g.output):
        nid = f"out{k}"
        shape, dtype = shapes.get(vi.name, ("", ""))
        dg.root.nodes.append(Node(nid, table(vi.name, f"output · {dtype} {shape}".strip(), [], fill="#fadbd8"),
                                  attrs={"id": f"output:{k}"}))  # fmt: skip
        src = producer.get(vi.name)
        if src is not None:
            dg.edges.append(Edge(src, nid, {"label": f" {shape}"} if shape else {}))

    n_params = sum(_numel(t.dims) for t in inits.values())
    opset = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
    dg.title = (f"{name} — ONNX ({opset}) · {len(g.node):,} operators · {human_count(n_params)} params in "
                f"{len(inits)} initializers" + (f" · scopes below depth {depth} collapsed" if depth is not None
                                                 and groups else ""))  # fmt: skip
    return OnnxGraph(dg, depth, drawn, folded, len(const_out), ops, notes)


def _short(name: str, limit: int = 40) -> str:
    return name if len(name) <= limit else "…" + name[-(limit - 1) :]


_COLOURS = {
    "MatMul": "#fdebd0", "Gemm": "#fdebd0", "Conv": "#fdebd0", "Gather": "#e8daef", "Softmax": "#d6eaf8",
    "Add": "#f2f3f4", "Mul": "#f2f3f4", "Sub": "#f2f3f4", "Div": "#f2f3f4", "Reshape": "#fcf3cf",
    "Transpose": "#fcf3cf", "Concat": "#fcf3cf", "Slice": "#fcf3cf", "Unsqueeze": "#fcf3cf", "Squeeze": "#fcf3cf",
    "LayerNormalization": "#d1f2eb", "ReduceMean": "#d1f2eb",
}  # fmt: skip


def _op_colour(op: str) -> str:
    return _COLOURS.get(op, "#ffffff")
