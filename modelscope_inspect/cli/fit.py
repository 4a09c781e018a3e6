"""`mi fit`: will a model run on given GPUs, with which layout, how long a context, how fast (bounds)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import UsageError
from .options import (
    DFFOpt,
    DModelOpt,
    EndpointOpt,
    HeadDimOpt,
    HeadsOpt,
    JsonOpt,
    KVHeadsOpt,
    LayersOpt,
    TokenOpt,
    VocabOpt,
)

_PRECISIONS = "fp32, fp16, bf16, fp8, int8, int4"


def _gpu_count(text: str) -> tuple[str, int]:
    """`H100x8` / `H100*8` / `8xH100` → ("H100", 8); `H100` → ("H100", 1)."""
    t = text.strip()
    for sep in ("x", "X", "*", "×"):
        head, _, tail = t.rpartition(sep)
        if head and tail.isdigit():
            return head, int(tail)
        lead, _, rest = t.partition(sep)
        if rest and lead.isdigit():
            return rest, int(lead)
    return t, 1


def _size(text: str) -> int:
    # `mi check`'s size parser, imported only when a size is given (it brings the check module along).
    from ..analysis.check import parse_size

    return parse_size(text)


def fit_cmd(
    path: Annotated[
        str | None, typer.Argument(help="Model file, folder or URL (a GGUF: its header and real tensor sizes).")
    ] = None,
    config: Annotated[
        str | None, typer.Option("--config", metavar="PATH", help="An HF config.json, a folder, a .gguf or a URL.")
    ] = None,
    gpu: Annotated[
        str | None,
        typer.Option(
            "--gpu",
            metavar="NAME[xN]",
            help="Accelerator and count (H100x8); see --list-gpus. Without "
            "it (and --gpu-memory): the smallest count of every catalogued one.",
        ),
    ] = None,
    gpu_memory: Annotated[
        str | None, typer.Option("--gpu-memory", metavar="SIZE", help="Any device by its memory (80GiB).")
    ] = None,
    tp: Annotated[
        int | None, typer.Option("--tp", metavar="N", help="Tensor-parallel size (default: N of --gpu).")
    ] = None,
    pp: Annotated[int, typer.Option("--pp", metavar="N", help="Pipeline-parallel stages.")] = 1,
    ep: Annotated[int, typer.Option("--ep", metavar="N", help="Expert-parallel size (MoE).")] = 1,
    dtype: Annotated[
        str | None,
        typer.Option(
            "--dtype", metavar="DTYPE", help=f"Weights: {_PRECISIONS} (default: a file's own bytes, else bf16)."
        ),
    ] = None,
    kv_dtype: Annotated[
        str | None, typer.Option("--kv-dtype", metavar="DTYPE", help="KV-cache dtype (default: activations').")
    ] = None,
    batch: Annotated[int, typer.Option("--batch", "-b", metavar="B", help="Concurrent sequences.")] = 1,
    seq: Annotated[int, typer.Option("--seq", "-s", metavar="S", help="Tokens per sequence.")] = 8192,
    utilization: Annotated[
        float | None,
        typer.Option("--utilization", metavar="F", help="Memory cap (default: vLLM's 0.9; 1 with --training)."),
    ] = None,
    reserve: Annotated[
        str | None, typer.Option("--reserve", metavar="SIZE", help="Runtime reserve per device (default 1GiB).")
    ] = None,
    prefill_chunk: Annotated[
        int, typer.Option("--prefill-chunk", metavar="T", help="Prefill chunk tokens (vLLM's default 8192).")
    ] = 8192,
    ram: Annotated[
        str | None, typer.Option("--ram", metavar="SIZE", help="Host RAM for partial offload (llama.cpp style).")
    ] = None,
    training: Annotated[bool, typer.Option("--training", help="Training: gradients, optimizer, activations.")] = False,
    zero: Annotated[int | None, typer.Option("--zero", metavar="0-3", help="With --training: ZeRO stage.")] = None,
    fsdp: Annotated[bool, typer.Option("--fsdp", help="With --training: FSDP full shard (= ZeRO 3).")] = False,
    dp: Annotated[
        int | None, typer.Option("--dp", metavar="N", help="With --training: data-parallel size (default: the rest).")
    ] = None,
    mixed_precision: Annotated[
        bool, typer.Option("--mixed-precision", help="With --training: fp32 master weights and states.")
    ] = False,
    list_gpus: Annotated[bool, typer.Option("--list-gpus", help="List the accelerator catalogue and exit.")] = False,
    arch: Annotated[str | None, typer.Option("--arch", metavar="PRESET", help="Preset, as in mi memory.")] = None,
    vocab: VocabOpt = None,
    d_model: DModelOpt = None,
    layers: LayersOpt = None,
    d_ff: DFFOpt = None,
    heads: HeadsOpt = None,
    kv_heads: KVHeadsOpt = None,
    head_dim: HeadDimOpt = None,
    json: JsonOpt = False,
    endpoint: EndpointOpt = None,
    token: TokenOpt = None,
) -> None:
    """Will it run on my GPUs: per-device memory, max context and batch, speed bounds.

    TP/PP/EP placement as vLLM does it, KV heads replicated past their count, the engine's memory cap, a
    prefill chunk's activations and a runtime reserve, each term printed. Exit 0 when it fits, 1 when not.

    Examples:

    \b
      mi fit --config examples/configs/llama-3-8b.json --gpu L4
      mi fit --config examples/configs/llama-3-70b.json --gpu H100x2 --seq 32768
      mi fit --config examples/configs/llama-3-70b.json          # what do I need?
      mi fit --list-gpus
    """
    from ..analysis.accelerators import custom_accelerator, find_accelerator
    from ..analysis.fit import DEFAULT_RESERVE, FitOptions, FitReport
    from ..analysis.memory import MemoryOptions, Precision, parse_precision
    from ..render.output import Output

    out = Output()
    if list_gpus:
        if json:
            from ..render.documents.fit import catalogue_document

            out.json(catalogue_document())
        else:
            from ..render.views.fit import catalogue_view

            out.show(*catalogue_view())
        return
    if gpu is not None and gpu_memory is not None:
        raise UsageError("give --gpu or --gpu-memory, not both", rule="options")
    count = 1
    acc = None
    if gpu is not None:
        name, count = _gpu_count(gpu)
        if count <= 0:
            raise UsageError(f"--gpu {gpu!r}: the count must be positive", rule="options")
        acc = find_accelerator(name)
    elif gpu_memory is not None:
        acc = custom_accelerator(_size(gpu_memory))
    if not training and (zero is not None or fsdp or dp is not None or mixed_precision):
        raise UsageError("--zero, --fsdp, --dp and --mixed-precision only apply with --training", rule="options")
    stage = 3 if fsdp else (zero or 0)
    if fsdp and zero not in (None, 3):
        raise UsageError("--fsdp is ZeRO 3; drop --zero", rule="options")
    tp_ = tp if tp is not None else (count // (pp * (dp or 1)) if not training else 1)
    tp_ = max(tp_, 1)
    dp_ = dp if dp is not None else (max(count // (tp_ * pp), 1) if training else 1)
    opts = MemoryOptions(
        batch=batch,
        seq=seq,
        dtype=parse_precision(dtype) if dtype else Precision.bf16,
        kv_dtype=parse_precision(kv_dtype, option="--kv-dtype") if kv_dtype else None,
        training=training,
        mixed_precision=mixed_precision,
    )
    fo = FitOptions(
        opts=opts,
        tp=tp_,
        pp=pp,
        ep=ep,
        utilization=utilization if utilization is not None else (1.0 if training else 0.9),
        reserve_bytes=_size(reserve) if reserve else DEFAULT_RESERVE,
        prefill_chunk=prefill_chunk,
        zero=stage,
        dp=dp_,
        ram_bytes=_size(ram) if ram else None,
        use_stored_bytes=dtype is None,
    )
    if acc is not None and gpu is not None and fo.devices != count:
        raise UsageError(
            f"--gpu {gpu} names {count} device(s) but the layout uses {fo.devices} "
            f"(TP {fo.tp} × PP {fo.pp}" + (f" × DP {fo.dp})" if training else f" × attention DP {fo.attention_dp})"),
            rule="layout-count",
        )
    from ..api.fit import fit_report

    hp = None
    if path is None and config is None:
        from .memory import _hparams

        sizes = {
            "--vocab": vocab,
            "--d-model": d_model,
            "--layers": layers,
            "--d-ff": d_ff,
            "--heads": heads,
            "--kv-heads": kv_heads,
            "--head-dim": head_dim,
            "--max-positions": None,
            "--tied/--untied": None,
            "--experts": None,
            "--experts-per-token": None,
        }
        hp = _hparams(arch, sizes)
    report = fit_report(
        path, config=config, hparams=hp, arch=arch, accelerator=acc, options=fo, endpoint=endpoint, token=token
    )
    from ..api.outcome import exit_code

    if json:
        from ..render.documents.fit import fit_document, need_document

        out.json(fit_document(report) if isinstance(report, FitReport) else need_document(report))
    else:
        from ..render.views.fit import fit_view, need_view

        out.show(*(fit_view(report) if isinstance(report, FitReport) else need_view(report)))
    code = exit_code(report)
    if code:
        raise typer.Exit(code)
