"""`mi fit` tables: the per-device terms, the answers, the speed bounds, then the assumptions."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text

from ...analysis.accelerators import CATALOGUE, GIB
from ...analysis.fit import FitReport, NeedReport
from ..layout import NBSP, Column, Table, bullets, grid


def _gib(n: int) -> str:
    return f"{n / GIB:,.2f} GiB"


def _tflops(x: float | None) -> str:
    return "—" if x is None else f"{x / 1e12:,.0f}"


def _rate(x: float | None) -> str:
    return "—" if x is None else f"{x:,.1f}"


def _secs(x: float | None) -> str:
    return "—" if x is None else (f"{x:,.3f} s" if x < 100 else f"{x:,.0f} s")


def fit_view(r: FitReport) -> list[RenderableType]:
    """The renderables `mi fit --gpu …` prints."""
    fo, o, d, a = r.options, r.options.opts, r.device, r.accelerator
    layout = f"{fo.devices} × {a.name}: TP {fo.tp}, PP {fo.pp}, EP {fo.ep}"
    if o.training:
        layout += f", DP {fo.dp}, ZeRO {fo.zero}"
    head = grid(
        [
            ("source", r.source),
            ("model", f"{r.arch}, {r.params:,} parameters"),
            ("layout", layout),
            ("shape", f"batch {o.batch} × seq{NBSP}{o.seq:,}; weights {r.weights_as or o.dtype}, KV cache {o.kv}"),
        ]
    )
    stage = f" (stage {d.stage + 1} of {fo.pp}, {d.layers} layers)" if fo.pp > 1 else ""
    t = Table(
        Column("per device" + stage, wrap=True, hang="  "), Column("bytes", "right"), Column("GiB", "right"), title=""
    )
    for sh in d.shards if not o.training else ():  # training: the ZeRO terms below hold the weights
        t.add_row(f"{sh.name} ({sh.rule})", f"{sh.bytes:,}", _gib(sh.bytes))
    for sh in d.training_terms:
        t.add_row(f"{sh.name} ({sh.rule})", f"{sh.bytes:,}", _gib(sh.bytes))
    rows = []
    if not o.training:
        rows.append(("weights", d.weights_bytes))
        rows.append((f"KV cache ({o.batch} × {o.seq:,} tokens)", d.kv_cache_bytes))
        rows.append(("activations (prefill chunk)", d.activation_bytes))
    else:
        rows.append(("weights, gradients, optimizer", d.training_bytes))
        rows.append(("activations", d.activation_bytes))
    rows.append(("runtime reserve", d.reserve_bytes))
    for name, b in rows:
        t.add_row(Text(name, style="bold"), f"{b:,}", _gib(b))
    t.add_row(
        Text("total", style="bold"), Text(f"{d.total_bytes:,}", style="bold"), Text(_gib(d.total_bytes), style="bold")
    )
    t.add_row(
        f"usable ({fo.utilization:g} × {a.usable_bytes / GIB:g} GiB)", f"{d.usable_bytes:,}", _gib(d.usable_bytes)
    )
    verdict = Text("fits" if r.fits else "does not fit", style="bold green" if r.fits else "bold red")
    ans: list[tuple[str | Text, ...]] = [("verdict", verdict)]
    if r.kv_bytes_per_token_per_device and r.kv_capacity_tokens is not None:
        heads = f", {r.kv_heads_per_device} KV head(s)" if r.kv_heads_per_device else ", MLA latent"
        ans.append(("KV per token", f"{r.kv_bytes_per_token_per_device:,} bytes per device{heads}"))
        ans.append(("KV capacity", f"{r.kv_capacity_tokens:,} tokens ({r.kv_capacity_blocks:,} blocks of 16)"))
        mp = r.max_positions
        limit = f" (the model's limit is {mp:,})" if mp and r.max_seq is not None and r.max_seq > mp else ""
        ans.append(("max context", f"{r.max_seq:,} tokens at batch {o.batch}{limit}"))
        ans.append(("max batch", f"{r.max_batch:,} at seq {o.seq:,}"))
    s = r.speed
    if s.bound != "unknown" and not o.training:
        ans.append(
            (
                "decode bound",
                f"{_rate(s.decode_tokens_per_s)} tokens/s per sequence, "
                f"{_rate(s.decode_aggregate_tokens_per_s)} in all ({s.bound} binds)",
            )
        )
        ans.append(("prefill bound", f"{_secs(s.prefill_seconds)} for {o.batch} × {o.seq:,} tokens"))
    if r.offload is not None:
        f = r.offload
        ram = "" if f.ram_bytes is None else f"; host RAM {'holds' if f.host_fits else 'cannot hold'} the rest"
        ans.append(
            (
                "offload",
                f"{f.gpu_layers} of {f.layers} layers on the GPU"
                f"{' and the output layer' if f.output_on_gpu else ''}, {_gib(f.host_bytes)} on the host{ram}",
            )
        )
    return [head, "", t, "", grid(ans), "", bullets(r.assumptions, title=Text("assumptions", style="bold"))]


def need_view(r: NeedReport) -> list[RenderableType]:
    """The "what do I need" table: the smallest count of each accelerator, by total memory."""
    o = r.options.opts
    head = grid(
        [
            ("source", r.source),
            ("model", f"{r.arch}, {r.params:,} parameters"),
            ("shape", f"batch {o.batch} × seq{NBSP}{o.seq:,}; weights {o.dtype}, KV cache {o.kv}"),
        ]
    )
    t = Table(
        Column("accelerator"),
        Column("count", "right"),
        Column("TP×PP", "right"),
        Column("memory", "right"),
        Column("KV tokens", "right"),
        Column("decode t/s", "right"),
    )
    for x in r.rows:
        if x.devices is None:
            t.add_row(x.accelerator.name, "—", "—", "—", "—", "—")
            continue
        t.add_row(
            x.accelerator.name,
            str(x.devices),
            f"{x.tp}×{x.pp}",
            f"{(x.total_memory_bytes or 0) / GIB:,.0f} GiB",
            f"{x.kv_capacity_tokens:,}" if x.kv_capacity_tokens is not None else "—",
            _rate(x.decode_tokens_per_s),
        )
    note = "decode t/s: roofline bound per sequence; —: not within 8 per node × 16 stages"
    return [head, t, note, "", bullets(r.assumptions, title=Text("assumptions", style="bold"))]


def catalogue_view() -> list[RenderableType]:
    """`mi fit --list-gpus`."""
    t = Table(
        Column("name"),
        Column("memory", "right"),
        Column("TB/s", "right"),
        Column("bf16", "right"),
        Column("fp16", "right"),
        Column("fp8", "right"),
        Column("int8", "right"),
    )
    for a in CATALOGUE:
        mem = f"{a.memory_bytes / GIB:,.0f} GiB" + ("*" if a.usable_fraction < 1 else "")
        t.add_row(
            a.name, mem, f"{a.bandwidth / 1e12:.2f}", _tflops(a.bf16), _tflops(a.fp16), _tflops(a.fp8), _tflops(a.int8)
        )
    notes = [
        "peaks in dense TFLOPS/TOPS (—: none published or no such math)",
        "*: unified memory, 75% usable by the GPU by default",
    ]
    srcs = sorted({a.source for a in CATALOGUE})
    return [t, *notes, "", bullets(srcs, title=Text("sources", style="bold"))]
