"""`mi memory`: weights at every precision, KV cache, activations, training state and FLOPs, each assumption shown."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import UsageError
from .options import (
    Arch,
    DFFOpt,
    DModelOpt,
    EndpointOpt,
    HeadDimOpt,
    HeadsOpt,
    JsonOpt,
    KVHeadsOpt,
    LayersOpt,
    MarkdownOpt,
    MaxPositionsOpt,
    TiedOpt,
    TokenOpt,
    VocabOpt,
    one_format,
)

if TYPE_CHECKING:
    from ..analysis.hparams import HParams

# Choices are plain strings validated by the library, so `--help` stays importable without the analysis code.
_PRECISIONS = "fp32, fp16, bf16, fp8, int8, int4"


def _choice(value: str, allowed: tuple[str, ...], option: str) -> str:
    v = value.strip().lower()
    if v not in allowed:
        raise UsageError(f"{option}: unknown value {value!r}; choose one of {', '.join(allowed)}", rule="options")
    return v


def memory_cmd(
    path: Annotated[
        str | None,
        typer.Argument(
            help="Model file, folder or URL (hf://ORG/NAME …): its folder's config.json (a GGUF: its header) gives "
            "the hyperparameters."
        ),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            metavar="PATH",
            help="An HF config.json, a folder holding one, a .gguf, or a URL (hf://ORG/NAME …); beside a model PATH "
            "it replaces the folder's config.",
        ),
    ] = None,
    batch: Annotated[int, typer.Option("--batch", "-b", metavar="B", help="Sequences per step.")] = 1,
    seq: Annotated[int, typer.Option("--seq", "-s", metavar="S", help="Tokens per sequence (context length).")] = 2048,
    dtype: Annotated[str, typer.Option("--dtype", metavar="DTYPE", help=f"Weight dtype: {_PRECISIONS}.")] = "fp16",
    kv_dtype: Annotated[
        str | None,
        typer.Option("--kv-dtype", metavar="DTYPE", help=f"KV-cache dtype (default: activation dtype): {_PRECISIONS}."),
    ] = None,
    training: Annotated[
        bool, typer.Option("--training", help="Training: gradients, optimizer, saved activations.")
    ] = False,
    optimizer: Annotated[
        str | None,
        typer.Option(
            "--optimizer", metavar="NAME", help="With --training: adamw (default), adam or sgd (no momentum)."
        ),
    ] = None,
    mixed_precision: Annotated[
        bool,
        typer.Option(
            "--mixed-precision", help="With --training: fp16/bf16 compute, an fp32 master copy and fp32 states."
        ),
    ] = False,
    recompute: Annotated[
        str | None,
        typer.Option(
            "--recompute",
            metavar="MODE",
            help="With --training: activation recomputation none (default), selective, full.",
        ),
    ] = None,
    attention: Annotated[
        str, typer.Option("--attention", metavar="KIND", help="eager (keeps s×s probabilities), sdpa or flash.")
    ] = "sdpa",
    device: Annotated[
        str,
        typer.Option(
            "--device", metavar="DEVICE", help="gpu (fused dropout, 1-byte masks) or cpu (dtype-sized dropout noise)."
        ),
    ] = "gpu",
    group_size: Annotated[
        int | None, typer.Option("--group-size", metavar="G", help="int8/int4 group quantization: scale per G.")
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(
            "--arch",
            metavar="PRESET",
            help="Preset, as in mi params (" + ", ".join(a.value for a in Arch) + "). Default: from the config; "
            "seed with size flags.",
        ),
    ] = None,
    vocab: VocabOpt = None,
    d_model: DModelOpt = None,
    layers: LayersOpt = None,
    d_ff: DFFOpt = None,
    heads: HeadsOpt = None,
    kv_heads: KVHeadsOpt = None,
    head_dim: HeadDimOpt = None,
    max_positions: MaxPositionsOpt = None,
    tied: TiedOpt = None,
    num_experts: Annotated[int | None, typer.Option("--experts", metavar="N", help="MoE experts per layer.")] = None,
    experts_per_token: Annotated[
        int | None, typer.Option("--experts-per-token", metavar="K", help="MoE experts active per token.")
    ] = None,
    json: JsonOpt = False,
    markdown: MarkdownOpt = False,
    endpoint: EndpointOpt = None,
    token: TokenOpt = None,
) -> None:
    """Memory for inference and training, with every assumption.

    Weights at every precision, KV cache, activations, optimizer states and FLOPs.

    From a model file or folder (its folder's config.json; a GGUF's own header), a config.json, or the same
    size flags as `mi params`. `--config` beside a PATH overrides the folder's config; parameters and bytes as
    stored still come from the file.
    Exact bytes in --json; GiB (1024-based) in the tables. Never imports torch.

    Examples:

    \b
      mi memory examples/tiny-gpt2 --seq 8192
      mi memory --config config.json --dtype bf16 --seq 8192
      mi memory --config config.json --training --mixed-precision
    """
    one_format(json, markdown)
    from ..analysis.memory import (
        Attention,
        Device,
        MemoryOptions,
        Optimizer,
        Recompute,
        estimate_for,
        parse_precision,
    )
    from ..api.memory import memory_spec
    from ..render.output import Output

    sizes = {
        "--vocab": vocab, "--d-model": d_model, "--layers": layers, "--d-ff": d_ff, "--heads": heads,
        "--kv-heads": kv_heads, "--head-dim": head_dim, "--max-positions": max_positions, "--tied/--untied": tied,
        "--experts": num_experts, "--experts-per-token": experts_per_token,
    }  # fmt: skip
    given = [k for k, v in sizes.items() if v is not None]
    if (path is not None or config is not None) and given:
        raise UsageError(f"the config gives the sizes; drop {', '.join(given)}", rule="options")

    # Training-only flags without --training would change nothing the tables show but the FLOPs line: refuse
    # them rather than ignore them.
    training_only = [
        flag
        for flag, given_ in (("--optimizer", optimizer), ("--mixed-precision", mixed_precision or None),
                             ("--recompute", recompute))
        if given_ is not None
    ]  # fmt: skip
    if training_only and not training:
        raise UsageError(f"{', '.join(training_only)} only apply with --training: add --training or drop them",
                         rule="options")  # fmt: skip
    opts = MemoryOptions(
        batch=batch,
        seq=seq,
        dtype=parse_precision(dtype),
        kv_dtype=parse_precision(kv_dtype, option="--kv-dtype") if kv_dtype is not None else None,
        training=training,
        optimizer=Optimizer(_choice(optimizer or "adamw", tuple(Optimizer), "--optimizer")),
        mixed_precision=mixed_precision,
        recompute=Recompute(_choice(recompute or "none", tuple(Recompute), "--recompute")),
        attention=Attention(_choice(attention, tuple(Attention), "--attention")),
        device=Device(_choice(device, tuple(Device), "--device")),
        group_size=group_size,
    )
    opts.validate()  # before reading anything: bad options fail fast
    if path is not None or config is not None:
        spec = memory_spec(path, config=config, arch=arch, endpoint=endpoint, token=token)
    else:
        spec = memory_spec(hparams=_hparams(arch, sizes))
    report = estimate_for(spec, opts)
    out = Output()
    if json:
        from ..render.documents.memory import memory_document

        out.json(memory_document(report))
    else:
        from ..render.views.memory import memory_view

        out.show(*memory_view(report), markdown=markdown)


def _hparams(arch: str | None, sizes: Mapping[str, object]) -> HParams:
    """The size flags as hyperparameters (the seed's formula unless --arch names a preset)."""
    from ..analysis.hparams import HParams

    missing = [k for k in ("--vocab", "--d-model", "--layers", "--heads") if sizes[k] is None]
    if missing:
        raise UsageError(f"give a model PATH, --config config.json, or {', '.join(missing)}", rule="options")

    def _int(key: str) -> int | None:
        v = sizes[key]
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    tied = sizes["--tied/--untied"]
    return HParams.from_options(
        arch=arch or "seed",
        vocab=_int("--vocab") or 0,
        d_model=_int("--d-model") or 0,
        layers=_int("--layers") or 0,
        heads=_int("--heads"),
        kv_heads=_int("--kv-heads"),
        head_dim=_int("--head-dim"),
        d_ff=_int("--d-ff"),
        max_positions=_int("--max-positions"),
        tied=tied if isinstance(tied, bool) else None,
        num_experts=_int("--experts"),
        experts_per_token=_int("--experts-per-token"),
    )
