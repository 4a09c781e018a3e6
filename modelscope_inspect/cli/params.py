"""`mi params`: a model's parameter count from its hyperparameters or config.json, term by term."""

from __future__ import annotations

from typing import Annotated

import typer

from .options import (
    ARCH_HELP,
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


def params_cmd(
    vocab: VocabOpt = None,
    d_model: DModelOpt = None,
    layers: LayersOpt = None,
    d_ff: DFFOpt = None,
    heads: HeadsOpt = None,
    kv_heads: KVHeadsOpt = None,
    head_dim: HeadDimOpt = None,
    arch: Annotated[
        Arch | None,
        typer.Option("--arch", metavar="ARCH", help=ARCH_HELP),
    ] = None,
    tied: TiedOpt = None,
    bias: Annotated[bool | None, typer.Option("--bias/--no-bias", help="Linear biases (preset default).")] = None,
    max_positions: MaxPositionsOpt = None,
    encoder_layers: Annotated[
        int | None, typer.Option("--encoder-layers", metavar="N", help="Encoder depth (encoder-decoder presets).")
    ] = None,
    decoder_layers: Annotated[
        int | None, typer.Option("--decoder-layers", metavar="N", help="Decoder depth (encoder-decoder presets).")
    ] = None,
    num_experts: Annotated[int | None, typer.Option("--experts", metavar="N", help="MoE experts per layer.")] = None,
    experts_per_token: Annotated[
        int | None, typer.Option("--experts-per-token", metavar="K", help="MoE experts active per token.")
    ] = None,
    dtype: Annotated[
        str | None, typer.Option("--dtype", metavar="DTYPE", help="Parameter dtype for the bytes (default f32).")
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            metavar="PATH",
            help="An HF config.json, a folder holding one, or a URL (hf://ORG/NAME, https://…/config.json).",
        ),
    ] = None,
    exact: Annotated[
        bool,
        typer.Option(
            "--exact",
            help="Count through transformers on the meta device (any model type; needs torch + transformers).",
        ),
    ] = False,
    lora_r: Annotated[int | None, typer.Option("--lora-r", metavar="R", help="LoRA rank.")] = None,
    lora_targets: Annotated[
        str | None,
        typer.Option("--lora-targets", metavar="NAMES", help="Comma-separated module names, e.g. q_proj,v_proj."),
    ] = None,
    json: JsonOpt = False,
    markdown: MarkdownOpt = False,
    endpoint: EndpointOpt = None,
    token: TokenOpt = None,
) -> None:
    """Parameter count from sizes or a config.json, term by term.

    Pure arithmetic, with the bytes at the dtype; exact for each preset's reference implementation
    (torch.nn.Transformer, transformers).

    Examples:

    \b
      mi params --vocab 168283 --d-model 512 --layers 6
      mi params --arch torch-decoder --vocab 168283 --d-model 512 --layers 6 \\
        --heads 8 --d-ff 2048
      mi params --config config.json --lora-r 8 --lora-targets q_proj,v_proj
    """
    one_format(json, markdown)
    from ..api.params import params_report

    report = params_report(
        config=config,
        endpoint=endpoint,
        token=token,
        arch=arch.value if arch else None,
        dtype=dtype,
        lora_r=lora_r,
        lora_targets=lora_targets.split(",") if lora_targets is not None else None,
        exact=exact,
        vocab=vocab,
        d_model=d_model,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        d_ff=d_ff,
        max_positions=max_positions,
        tied=tied,
        bias=bias,
        encoder_layers=encoder_layers,
        decoder_layers=decoder_layers,
        num_experts=num_experts,
        experts_per_token=experts_per_token,
    )

    from ..render.output import Output

    out = Output()
    if json:
        from ..render.documents.params import params_document

        out.json(params_document(report))
    else:
        from ..render.views.params import params_view

        out.show(*params_view(report), markdown=markdown)
