"""`mi memory` tables: every term with exact bytes and GiB (1024-based), then the assumptions."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text

from ...analysis.memory import BITS, GIB, MemoryOptions, MemoryReport, MemoryTerm, Precision
from ..layout import NBSP, Column, Table, bullets, grid


def gib(n: int) -> str:
    """Bytes as GiB (1024³), three decimals, labelled."""
    return f"{n / GIB:,.3f} GiB"


def _table(title: str, *, per_param: bool = False) -> Table:
    cols = [Column("term", wrap=True, hang="  "), Column("bytes", "right"), Column("GiB", "right")]
    if per_param:
        cols.append(Column("B/param", "right"))
    cols.append(Column("formula", wrap=True))
    return Table(*cols, title=title)


def _row(t: Table, term: MemoryTerm, *, per_param: bool = False, bold: bool = False, show_gib: bool = True) -> None:
    cells: list[str | Text] = [term.name, f"{term.bytes:,}", gib(term.bytes) if show_gib else ""]
    if per_param:
        cells.append("" if term.per_param is None else f"{term.per_param:g}")
    cells.append(term.formula)
    if bold:
        cells = [Text(str(c), style="bold") for c in cells]
    t.add_row(*cells)


def _dt_bytes(o: MemoryOptions) -> int:
    return BITS[o.act_dtype] // 8


def memory_view(r: MemoryReport) -> list[RenderableType]:
    """The renderables `mi memory` prints, top to bottom."""
    o = r.options
    rows = [
        ("source", r.source),
        ("model", f"{r.arch}, {r.params:,} parameters"),
        (
            "shape",
            f"batch {o.batch} × seq{NBSP}{o.seq}; weights {o.dtype}, activations {o.act_dtype}, KV cache {o.kv}; "
            f"attention {o.attention}",
        ),
    ]
    if o.training:
        rows.append(
            (
                "training",
                f"{o.optimizer}, {'mixed precision' if o.mixed_precision else 'pure ' + o.dtype.value}, "
                f"recompute {o.recompute}, device {o.device}",
            )
        )
    out: list[RenderableType] = [grid(rows), ""]

    w = Table(
        Column("precision", wrap=True, hang="  "), Column("bytes", "right"), Column("GiB", "right"), title="weights"
    )
    for p in Precision:
        n = r.weights_by_precision[p.value]
        mark = " ◀" if p == o.dtype else ""
        w.add_row(f"{p.value}{mark}", f"{n:,}", gib(n))
    if r.stored:
        w.add_row(f"as stored ({r.stored['dtypes']})", f"{r.stored['bytes']:,}", gib(r.stored["bytes"]))
    out += [w, ""]
    if r.stored and "bytes_read" in r.stored:
        from ..units import network_line

        out += [network_line(r.stored["bytes_read"]), ""]

    kv = _table("KV cache")
    latent = r.kv.expanded_per_token is not None
    name = "per token, all layers" + (" (the latent)" if latent else "")
    _row(kv, MemoryTerm(name, r.kv.per_token, r.kv.per_token_formula), show_gib=False)
    if r.kv.expanded_per_token is not None:
        term = MemoryTerm("per-head k and v per token (rebuilt, not cached)", r.kv.expanded_per_token,
                          r.kv.expanded_formula)  # fmt: skip
        _row(kv, term, show_gib=False)
    sliding = any(t not in (o.seq, 0) for t in r.kv.tokens_per_layer)
    formula = "Σ layers: cached tokens × per-layer bytes × b" if sliding else "per token × s × b"
    _row(kv, MemoryTerm(f"batch {o.batch} × seq{NBSP}{o.seq}", r.kv.bytes, formula))
    out += [kv, ""]
    if r.state is not None:
        st = _table("state (Mamba layers, independent of seq)")
        _row(st, MemoryTerm("conv state, one layer, one sequence", r.state.conv_bytes, "in the activation dtype"),
             show_gib=False)  # fmt: skip
        _row(st, MemoryTerm("ssm state, one layer, one sequence", r.state.ssm_bytes, "fp32"), show_gib=False)
        _row(st, MemoryTerm(f"batch {o.batch} × {r.state.layers} layers", r.state.bytes, "per layer × L × b"))
        out += [st, ""]

    L = r.hparams.get("layers")
    title = f"activations, {r.activation_kind}"
    if o.training:
        title += f" (T = b·s, L = {L}, dt = {_dt_bytes(o)} B)"
    act = _table(title)
    for term in r.activation_terms:
        _row(act, term)
    _row(act, MemoryTerm("total", r.activation_bytes, "sum"), bold=True)
    if o.training:
        _row(act, MemoryTerm("Korthikanti et al. 2022", r.korthikanti_bytes, r.korthikanti_formula))
    out += [act, ""]

    if o.training and r.training_bytes is not None:
        tr = _table("training", per_param=True)
        for term in r.training_terms:
            _row(tr, term, per_param=True)
        _row(tr, MemoryTerm("total", r.training_bytes, "sum"), per_param=True, bold=True)
        out += [tr, ""]
    else:
        inf = _table("inference")
        what = "weights + KV cache + state + working set" if r.state is not None else "weights + KV cache + working set"
        _row(inf, MemoryTerm(what, r.inference_bytes, "sum"), bold=True)
        out += [inf, ""]

    fl = Table(
        Column("term", wrap=True, hang="  "), Column("value", "right"), Column("formula", wrap=True), title="FLOPs"
    )
    for term in r.flops_terms:
        fl.add_row(term.name, f"{term.bytes:,}", term.formula)
    out += [fl, ""]

    out.append(bullets(r.assumptions, "•  ", title=Text("assumptions", style="table.title")))
    return out
