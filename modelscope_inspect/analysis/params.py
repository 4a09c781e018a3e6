"""Analytic parameter accounting: a model's parameter count from its hyperparameters, term by term.

Each preset reproduces one reference implementation exactly (tests compare against the real torch /
transformers modules built on the meta device): `torch-decoder` and `torch-encoder-decoder`
(`torch.nn.Transformer*` layers), `gpt2`, `bert`, `roberta`, `t5`, `llama`, `mistral`, `qwen2`, `gemma`,
`opt`, `phi`, `falcon`, `chatglm` (THUDM's modeling_chatglm.py) and the MoE families `mixtral` and
`qwen2_moe` (total and active-per-token counts). Without a preset (`seed`) the hand formula of the project's
seed notes is applied and what it leaves out is listed with its size.

Pure arithmetic on Python ints: nothing here imports torch, transformers or numpy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from .hparams import HParams

if TYPE_CHECKING:
    from ..inventory import TensorInventory

# The presets `--arch` accepts, in the order `mi params --help` lists them.
PRESETS: tuple[str, ...] = (
    "seed",
    "torch-decoder",
    "torch-encoder-decoder",
    "gpt2",
    "bert",
    "roberta",
    "t5",
    "llama",
    "mistral",
    "qwen2",
    "gemma",
    "opt",
    "phi",
    "falcon",
    "chatglm",
    "mixtral",
    "qwen2_moe",
    "qwen3",
    "qwen3_moe",
)


@dataclass(frozen=True, slots=True)
class ParamTerm:
    """One line of the accounting: `count` copies of a block of `each` parameters.

    `patterns` are regular expressions over state-dict names that this term accounts for (used by the
    cross-check against a file). `active_each` is set for MoE blocks: parameters used per token.
    """

    name: str
    each: int
    count: int = 1
    formula: str = ""
    patterns: tuple[str, ...] = ()
    active_each: int | None = None

    @property
    def params(self) -> int:
        return self.each * self.count

    @property
    def active(self) -> int:
        return (self.each if self.active_each is None else self.active_each) * self.count


@dataclass(frozen=True, slots=True)
class LinearSpec:
    """A weight matrix LoRA can adapt: module name as in the reference implementation, its in/out widths."""

    name: str
    d_in: int
    d_out: int
    count: int


@dataclass(frozen=True, slots=True)
class LoraReport:
    """Trainable LoRA adapter parameters: r·(in+out) per targeted matrix (A: in→r, B: r→out)."""

    r: int
    targets: tuple[str, ...]
    params: int
    matrices: int
    share: float  # of the base model's total


@dataclass(frozen=True, slots=True)
class ParamReport:
    """The result of `count_params`: terms, total, bytes at the dtype, assumptions, LoRA."""

    arch: str
    hparams: HParams
    terms: tuple[ParamTerm, ...]
    assumptions: tuple[str, ...]
    left_out: tuple[tuple[str, int], ...] = ()  # seed formula only: what it omits, with the size
    linears: tuple[LinearSpec, ...] = ()
    lora: LoraReport | None = None
    is_moe: bool = False

    @property
    def total_params(self) -> int:
        return sum(t.params for t in self.terms)

    @property
    def active_params(self) -> int:
        """Parameters used for one token (= total unless MoE)."""
        return sum(t.active for t in self.terms)

    @property
    def dtype(self) -> str:
        return self.hparams.dtype_name

    @property
    def nbytes(self) -> int:
        """Bytes of the parameters at `dtype`, from bits (a sub-byte dtype rounds up to whole bytes)."""
        from ..dtypes import lookup

        return (self.total_params * lookup(self.dtype).bits + 7) // 8


@dataclass
class _Build:
    terms: list[ParamTerm] = field(default_factory=list)
    linears: list[LinearSpec] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    left_out: list[tuple[str, int]] = field(default_factory=list)
    is_moe: bool = False

    def term(
        self,
        name: str,
        each: int,
        count: int = 1,
        formula: str = "",
        patterns: Iterable[str] = (),
        active_each: int | None = None,
        keep: bool = False,
    ) -> None:
        if count and (each or active_each or keep):
            self.terms.append(ParamTerm(name, each, count, formula, tuple(patterns), active_each))

    def linear(self, name: str, d_in: int, d_out: int, count: int) -> None:
        if count:
            self.linears.append(LinearSpec(name, d_in, d_out, count))


def _lin(d_in: int, d_out: int, bias: bool) -> int:
    """nn.Linear(d_in, d_out, bias): weight d_out×d_in, bias d_out."""
    return d_in * d_out + (d_out if bias else 0)


def _b(flag: bool, s: str) -> str:
    return s if flag else ""


def _layer(*parts: str) -> str:
    """Regex for a per-layer submodule: `<prefix>.<block>.<i>.<part>`."""
    return r"(^|\.)" + r"\.".join(parts) + r"\."


def _dff(hp: HParams, default: int) -> int:
    return hp.d_ff if hp.d_ff is not None else default


def _reject(hp: HParams, **flags: object) -> None:
    """Refuse switches the reference implementation does not have (instead of silently ignoring them)."""
    spelled = {"kv_heads": "--kv-heads", "head_dim": "--head-dim", "bias": "--bias/--no-bias", "tied": "--tied"}
    for name, value in flags.items():
        if value is not None:
            raise UsageError(
                f"--arch {hp.arch} has no {spelled.get(name, name)} option (its reference implementation fixes it)",
                path=hp.path,
                rule="arch-option",
            )


def _lm_head(b: _Build, hp: HParams, tied: bool, name: str = "lm_head", d: int | None = None, bias: int = 0) -> None:
    d = hp.d_model if d is None else d
    b.linear(name, d, hp.vocab, 1)  # an nn.Linear even when its weight is tied (LoRA can target it)
    pat = (rf"(^|\.){re.escape(name)}\.",)
    if tied:
        # Shown with 0 (its weight is the embedding's): a file that stores an untied copy differs on this row.
        b.term(name, bias, 1, "vocab (bias); weight tied" if bias else "tied to the embedding", pat, keep=True)
        b.assumptions.append(f"{name} weight tied to the token embedding (counted once)")
    else:
        b.term(name, hp.vocab * d + bias, 1, "vocab·d" + (" + vocab" if bias else ""), pat)


# ---- presets ------------------------------------------------------------------------------------------------


def _seed(hp: HParams, b: _Build) -> None:
    """The seed notes' formula: vocab×d + d + (4d² + 2·d·d_ff)×layers + vocab×d."""
    _reject(hp, kv_heads=hp.kv_heads, head_dim=hp.head_dim, bias=hp.bias, tied=hp.tied)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    ff = _dff(hp, 4 * d)
    b.term("embedding", v * d, 1, "vocab·d", (r"(^|\.)embedding\.",))
    b.term("+ d (as written in the seed)", d, 1, "d")
    b.term("attention", 4 * d * d, n, "4·d²", (_layer(r"\w+", r"\d+", "self_attn"),))
    b.term("mlp", 2 * d * ff, n, "2·d·d_ff", (_layer(r"\w+", r"\d+", r"linear[12]"),))
    b.term("output", v * d, 1, "vocab·d", (r"(^|\.)fc_out\.",))
    if hp.d_ff is None:
        b.assumptions.append(f"d_ff = 4·d = {ff:,} (give --d-ff to change)")
    b.assumptions.append("the seed's hand formula: self-attention and MLP weights only, untied output layer")
    # What nn.TransformerDecoder + embedding + fc_out (the seed's real model) adds, term by term.
    b.left_out.extend(
        [
            ("cross-attention weights (multihead_attn, 4·d² per layer)", 4 * d * d * n),
            (
                "Linear biases in the layers (2 attentions × 4d, d_ff + d in the MLP)",
                (2 * 4 * d + ff + d) * n,
            ),
            ("LayerNorms (norm1-3, 2d each per layer)", 3 * 2 * d * n),
            ("fc_out bias (vocab)", v),
            ("the formula's lone '+ d' (no such tensor)", -d),
        ]
    )


def _torch_attn(d: int, bias: bool) -> int:
    # nn.MultiheadAttention: in_proj_weight 3d×d (+ in_proj_bias 3d), out_proj Linear(d, d, bias).
    return 4 * d * d + (4 * d if bias else 0)


def _torch_common(hp: HParams, b: _Build) -> tuple[int, int, bool]:
    _reject(hp, kv_heads=hp.kv_heads, head_dim=hp.head_dim)
    d = hp.d_model
    ff = _dff(hp, 2048)
    bias = hp.bias if hp.bias is not None else True
    if hp.d_ff is None:
        b.assumptions.append("d_ff = 2048 (the torch.nn.Transformer*Layer default dim_feedforward)")
    if hp.heads is None:
        b.assumptions.append("heads do not change the count of nn.MultiheadAttention (any divisor of d_model)")
    b.assumptions.append(
        "post-norm layers as constructed by torch.nn; " + ("with biases" if bias else "bias=False everywhere")
    )
    return d, ff, bias


def _torch_decoder_layers(b: _Build, d: int, ff: int, bias: bool, n: int, prefix: str) -> None:
    b.term("self-attention", _torch_attn(d, bias), n, "4·d² + 4d", (_layer(prefix, r"\d+", "self_attn"),))
    b.term("cross-attention", _torch_attn(d, bias), n, "4·d² + 4d", (_layer(prefix, r"\d+", "multihead_attn"),))
    b.term(
        "mlp",
        _lin(d, ff, bias) + _lin(ff, d, bias),
        n,
        "2·d·d_ff" + _b(bias, " + d_ff + d"),
        (_layer(prefix, r"\d+", r"linear[12]"),),
    )
    b.term("norms", 3 * (2 * d if bias else d), n, "3 LayerNorm", (_layer(prefix, r"\d+", r"norm[123]"),))
    b.linear("out_proj", d, d, 2 * n)
    b.linear("linear1", d, ff, n)
    b.linear("linear2", ff, d, n)


def _torch_decoder(hp: HParams, b: _Build) -> None:
    """embedding + nn.TransformerDecoder(nn.TransformerDecoderLayer(d, heads, d_ff, bias=…), L) + fc_out."""
    d, ff, bias = _torch_common(hp, b)
    v, n = hp.vocab, hp.layers
    b.term("embedding", v * d, 1, "vocab·d", (r"(^|\.)embedding\.",))
    _torch_decoder_layers(b, d, ff, bias, n, r"layers")
    tied = bool(hp.tied)
    b.term(
        "fc_out",
        (0 if tied else v * d) + (v if bias else 0),
        1,
        ("" if tied else "vocab·d") + (" + vocab" if bias else ""),
        (r"(^|\.)fc_out\.",),
    )
    if tied:
        b.assumptions.append("fc_out.weight tied to embedding.weight (counted once)")
    b.linear("fc_out", d, v, 1)
    b.assumptions.append("nn.TransformerDecoder without a final norm (norm=None, its default)")


def _torch_encoder_decoder(hp: HParams, b: _Build) -> None:
    """embedding (shared by source and target) + nn.Transformer(d, heads, enc, dec, d_ff, bias=…) + fc_out."""
    d, ff, bias = _torch_common(hp, b)
    v = hp.vocab
    ne = hp.encoder_layers if hp.encoder_layers is not None else hp.layers
    nd = hp.decoder_layers if hp.decoder_layers is not None else hp.layers
    norm = 2 * d if bias else d
    b.term("embedding", v * d, 1, "vocab·d", (r"(^|\.)embedding\.",))
    b.term(
        "encoder self-attention",
        _torch_attn(d, bias),
        ne,
        "4·d² + 4d",
        (_layer("encoder", "layers", r"\d+", "self_attn"),),
    )
    b.term(
        "encoder mlp",
        _lin(d, ff, bias) + _lin(ff, d, bias),
        ne,
        "2·d·d_ff" + _b(bias, " + d_ff + d"),
        (_layer("encoder", "layers", r"\d+", r"linear[12]"),),
    )
    b.term("encoder norms", 2 * norm, ne, "2 LayerNorm", (_layer("encoder", "layers", r"\d+", r"norm[12]"),))
    b.term("encoder final norm", norm, 1, "LayerNorm", (r"(^|\.)encoder\.norm\.",))
    b.term(
        "decoder self-attention",
        _torch_attn(d, bias),
        nd,
        "4·d² + 4d",
        (_layer("decoder", "layers", r"\d+", "self_attn"),),
    )
    b.term(
        "decoder cross-attention",
        _torch_attn(d, bias),
        nd,
        "4·d² + 4d",
        (_layer("decoder", "layers", r"\d+", "multihead_attn"),),
    )
    b.term(
        "decoder mlp",
        _lin(d, ff, bias) + _lin(ff, d, bias),
        nd,
        "2·d·d_ff" + _b(bias, " + d_ff + d"),
        (_layer("decoder", "layers", r"\d+", r"linear[12]"),),
    )
    b.term("decoder norms", 3 * norm, nd, "3 LayerNorm", (_layer("decoder", "layers", r"\d+", r"norm[123]"),))
    b.term("decoder final norm", norm, 1, "LayerNorm", (r"(^|\.)decoder\.norm\.",))
    tied = bool(hp.tied)
    b.term(
        "fc_out",
        (0 if tied else v * d) + (v if bias else 0),
        1,
        ("" if tied else "vocab·d") + _b(bias, " + vocab"),
        (r"(^|\.)fc_out\.",),
    )
    b.linear("out_proj", d, d, ne + 2 * nd)
    b.linear("linear1", d, ff, ne + nd)
    b.linear("linear2", ff, d, ne + nd)
    b.linear("fc_out", d, v, 1)
    b.assumptions.append("one nn.Embedding shared by source and target; nn.Transformer's encoder and decoder norms")


def _gpt2(hp: HParams, b: _Build) -> None:
    """transformers GPT2LMHeadModel."""
    _reject(hp, kv_heads=hp.kv_heads, head_dim=hp.head_dim, bias=hp.bias)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    p = hp.max_positions if hp.max_positions is not None else 1024
    ff = _dff(hp, 4 * d)
    b.term("token embedding (wte)", v * d, 1, "vocab·d", (r"(^|\.)wte\.",))
    b.term("position embedding (wpe)", p * d, 1, "max_positions·d", (r"(^|\.)wpe\.",))
    b.term("attention", _lin(d, 3 * d, True) + _lin(d, d, True), n, "4·d² + 4d", (_layer("h", r"\d+", "attn"),))
    b.term("mlp", _lin(d, ff, True) + _lin(ff, d, True), n, "2·d·d_ff + d_ff + d", (_layer("h", r"\d+", "mlp"),))
    b.term("norms", 2 * 2 * d, n, "2 LayerNorm", (_layer("h", r"\d+", r"ln_[12]"),))
    b.term("final norm (ln_f)", 2 * d, 1, "LayerNorm", (r"(^|\.)ln_f\.",))
    _lm_head(b, hp, hp.tied if hp.tied is not None else True)
    if hp.max_positions is None:
        b.assumptions.append("max_positions = 1024 (GPT2Config default n_positions)")
    if hp.d_ff is None:
        b.assumptions.append(f"d_ff = 4·d = {ff:,} (n_inner unset)")
    b.linear("c_attn", d, 3 * d, n)
    b.linear("c_proj", d, d, n)  # attn.c_proj
    b.linear("c_proj", ff, d, n)  # mlp.c_proj (PEFT targets both by the name)
    b.linear("c_fc", d, ff, n)


def _bert_like(hp: HParams, b: _Build) -> None:
    """transformers BertModel / RobertaModel (with pooler), or the …ForMaskedLM / BertForPreTraining heads."""
    _reject(hp, kv_heads=hp.kv_heads, head_dim=hp.head_dim, bias=hp.bias)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    p = hp.max_positions if hp.max_positions is not None else 512
    ff = _dff(hp, 3072)
    tv = int(hp.get("type_vocab_size", 2))
    head = str(hp.get("head", "base"))
    b.term("token embedding", v * d, 1, "vocab·d", (r"embeddings\.word_embeddings\.",))
    b.term("position embedding", p * d, 1, "max_positions·d", (r"embeddings\.position_embeddings\.",))
    b.term("token-type embedding", tv * d, 1, "type_vocab·d", (r"embeddings\.token_type_embeddings\.",))
    b.term("embedding norm", 2 * d, 1, "LayerNorm", (r"embeddings\.LayerNorm\.",))
    b.term(
        "attention",
        4 * _lin(d, d, True),
        n,
        "4·d² + 4d",
        (_layer("layer", r"\d+", "attention", "self"), _layer("layer", r"\d+", "attention", "output", "dense")),
    )
    b.term(
        "mlp",
        _lin(d, ff, True) + _lin(ff, d, True),
        n,
        "2·d·d_ff + d_ff + d",
        (_layer("layer", r"\d+", "intermediate"), _layer("layer", r"\d+", "output", "dense")),
    )
    b.term("norms", 2 * 2 * d, n, "2 LayerNorm", (_layer("layer", r"\d+", r"(attention\.)?output", "LayerNorm"),))
    if head in ("base", "pretraining"):
        b.term("pooler", _lin(d, d, True), 1, "d² + d", (r"(^|\.)pooler\.",))
    if head in ("mlm", "pretraining"):
        tied = hp.tied if hp.tied is not None else True
        pats = (r"(^|\.)cls\.predictions\.", r"(^|\.)lm_head\.")
        b.term(
            "mlm transform",
            _lin(d, d, True) + 2 * d,
            1,
            "d² + d + LayerNorm",
            (r"predictions\.transform\.", r"lm_head\.(dense|layer_norm)\."),
        )
        b.term("mlm decoder", v + (0 if tied else v * d), 1, "vocab" + ("" if tied else " + vocab·d"), pats)
        if tied:
            b.assumptions.append("MLM decoder weight tied to the token embedding (counted once); its bias counted")
    if head == "pretraining":
        b.term("next-sentence head", _lin(d, 2, True), 1, "2d + 2", (r"seq_relationship\.",))
        b.linear("seq_relationship", d, 2, 1)
    if head in ("base", "pretraining"):
        b.linear("dense", d, d, 1)  # pooler.dense
    if head in ("mlm", "pretraining"):
        b.linear("dense", d, d, 1)  # the MLM transform's dense
        b.linear("decoder", d, v, 1)
    b.assumptions.append(
        {
            "base": f"{'BertModel' if hp.arch == 'bert' else 'RobertaModel'} with its pooler (no task head)",
            "mlm": "masked-LM head (…ForMaskedLM, no pooler)",
            "pretraining": "BertForPreTraining: pooler, MLM and next-sentence heads",
        }[head]
    )
    b.linear("query", d, d, n)
    b.linear("key", d, d, n)
    b.linear("value", d, d, n)
    b.linear("dense", d, d, n)  # attention.output.dense
    b.linear("dense", d, ff, n)  # intermediate.dense
    b.linear("dense", ff, d, n)  # output.dense


def _t5(hp: HParams, b: _Build) -> None:
    """transformers T5ForConditionalGeneration (v1.0 relu FF or v1.1 gated-gelu)."""
    _reject(hp, kv_heads=hp.kv_heads, bias=hp.bias)
    d, v = hp.d_model, hp.vocab
    h = hp.n_heads
    inner = h * hp.d_head
    ff = _dff(hp, 2048)
    ne = hp.encoder_layers if hp.encoder_layers is not None else hp.layers
    nd = hp.decoder_layers if hp.decoder_layers is not None else hp.layers
    gated = bool(hp.get("gated", False))
    buckets = int(hp.get("relative_attention_num_buckets", 32))
    attn = 4 * d * inner
    mlp = (3 if gated else 2) * d * ff
    b.term("shared embedding", v * d, 1, "vocab·d", (r"(^|\.)shared\.", r"embed_tokens\."))
    b.term(
        "relative position bias",
        buckets * h,
        (1 if ne else 0) + (1 if nd else 0),
        "buckets·heads (block 0)",
        (r"relative_attention_bias\.",),
    )
    b.term(
        "encoder self-attention",
        attn,
        ne,
        "4·d·heads·d_kv",
        (_layer("encoder", "block", r"\d+", "layer", "0", "SelfAttention"),),
    )
    b.term(
        "encoder mlp",
        mlp,
        ne,
        ("3" if gated else "2") + "·d·d_ff",
        (_layer("encoder", "block", r"\d+", "layer", "1", "DenseReluDense"),),
    )
    b.term(
        "encoder norms", 2 * d, ne, "2 RMS norms", (_layer("encoder", "block", r"\d+", "layer", r"\d", "layer_norm"),)
    )
    b.term("encoder final norm", d, 1, "d", (r"(^|\.)encoder\.final_layer_norm\.",))
    b.term(
        "decoder self-attention",
        attn,
        nd,
        "4·d·heads·d_kv",
        (_layer("decoder", "block", r"\d+", "layer", "0", "SelfAttention"),),
    )
    b.term(
        "decoder cross-attention",
        attn,
        nd,
        "4·d·heads·d_kv",
        (_layer("decoder", "block", r"\d+", "layer", "1", "EncDecAttention"),),
    )
    b.term(
        "decoder mlp",
        mlp,
        nd,
        ("3" if gated else "2") + "·d·d_ff",
        (_layer("decoder", "block", r"\d+", "layer", "2", "DenseReluDense"),),
    )
    b.term(
        "decoder norms", 3 * d, nd, "3 RMS norms", (_layer("decoder", "block", r"\d+", "layer", r"\d", "layer_norm"),)
    )
    b.term("decoder final norm", d, 1, "d", (r"(^|\.)decoder\.final_layer_norm\.",))
    _lm_head(b, hp, hp.tied if hp.tied is not None else True)
    if hp.get("untied_in_config"):
        b.assumptions.append(
            "config says tie_word_embeddings false, but transformers ≥ 5 ties T5's lm_head anyway; a file saved by "
            f"transformers 4 holds a separate lm_head (+{v * d:,})"
        )
    b.assumptions.append(f"{'gated-gelu (T5 v1.1)' if gated else 'relu (T5 v1.0)'} feed-forward, no biases")
    for name in ("q", "k", "v"):
        b.linear(name, d, inner, ne + 2 * nd)
    b.linear("o", inner, d, ne + 2 * nd)
    if gated:
        b.linear("wi_0", d, ff, ne + nd)
        b.linear("wi_1", d, ff, ne + nd)
    else:
        b.linear("wi", d, ff, ne + nd)
    b.linear("wo", ff, d, ne + nd)


def _llama_attention(hp: HParams, b: _Build, n: int, *, all_bias: bool, qkv_bias: bool, qk_norm: bool = False) -> None:
    d, q, kv = hp.d_model, hp.q_dim, hp.kv_dim
    attn = _lin(d, q, all_bias or qkv_bias) + 2 * _lin(d, kv, all_bias or qkv_bias) + _lin(q, d, all_bias)
    formula = "d·(2·heads + 2·kv_heads)·head_dim"
    if all_bias:
        formula += " + biases"
    elif qkv_bias:
        formula += " + q/k/v biases"
    if qk_norm:  # Qwen3: RMSNorm over head_dim on queries and keys
        attn += 2 * hp.d_head
        formula += " + q/k norms"
    b.term("attention", attn, n, formula, (_layer("layers", r"\d+", "self_attn"),))
    b.linear("q_proj", d, q, n)
    b.linear("k_proj", d, kv, n)
    b.linear("v_proj", d, kv, n)
    b.linear("o_proj", q, d, n)


def _llama_family(hp: HParams, b: _Build) -> None:
    """transformers LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, GemmaForCausalLM, Qwen3ForCausalLM."""
    d, v, n = hp.d_model, hp.vocab, hp.layers
    arch = hp.arch
    default_ff = {"llama": 11008, "mistral": 14336, "qwen2": 22016, "gemma": 24576, "qwen3": 22016}[arch]
    ff = _dff(hp, default_ff)
    if arch == "qwen2":
        _reject(hp, bias=hp.bias)
        all_bias, qkv_bias = False, True
    elif arch == "mistral":
        _reject(hp, bias=hp.bias)
        all_bias, qkv_bias = False, False
    else:
        all_bias, qkv_bias = bool(hp.bias), False
    mlp_bias = bool(hp.get("mlp_bias", False))
    if hp.d_ff is None:
        b.assumptions.append(f"d_ff = {ff:,} ({arch} config default intermediate_size)")
    b.term("embedding", v * d, 1, "vocab·d", (r"embed_tokens\.",))
    _llama_attention(hp, b, n, all_bias=all_bias, qkv_bias=qkv_bias, qk_norm=arch == "qwen3")
    b.term(
        "mlp",
        2 * _lin(d, ff, mlp_bias) + _lin(ff, d, mlp_bias),
        n,
        "3·d·d_ff" + _b(mlp_bias, " + biases"),
        (_layer("layers", r"\d+", "mlp"),),
    )
    b.term("norms", 2 * d, n, "2 RMSNorm", (_layer("layers", r"\d+", r"(input_layernorm|post_attention_layernorm)"),))
    b.term("final norm", d, 1, "RMSNorm", (r"(^|\.)norm\.weight$",))
    _lm_head(b, hp, hp.tied if hp.tied is not None else arch == "gemma")
    kvh = hp.n_kv_heads
    if kvh != hp.n_heads:
        b.assumptions.append(f"grouped-query attention: {hp.n_heads} query heads share {kvh} key/value heads")
    if hp.head_dim is not None and hp.head_dim * hp.n_heads != d:
        b.assumptions.append(f"head_dim {hp.head_dim} (heads·head_dim = {hp.q_dim:,} ≠ d_model)")
    b.linear("gate_proj", d, ff, n)
    b.linear("up_proj", d, ff, n)
    b.linear("down_proj", ff, d, n)


def _opt(hp: HParams, b: _Build) -> None:
    """transformers OPTForCausalLM."""
    _reject(hp, kv_heads=hp.kv_heads, head_dim=hp.head_dim)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    p = hp.max_positions if hp.max_positions is not None else 2048
    ff = _dff(hp, 3072)
    bias = hp.bias if hp.bias is not None else True
    wdim = int(hp.get("word_embed_proj_dim", d))
    affine = bool(hp.get("layer_norm_elementwise_affine", True))
    ln = 2 * d if affine else 0
    final = bool(hp.get("do_layer_norm_before", True)) and not bool(hp.get("remove_final_layer_norm", False))
    b.term(
        "token embedding", v * wdim, 1, "vocab·word_embed_proj_dim" if wdim != d else "vocab·d", (r"embed_tokens\.",)
    )
    b.term("position embedding", (p + 2) * d, 1, "(max_positions + 2)·d", (r"embed_positions\.",))
    if wdim != d:
        b.term("project in/out", 2 * wdim * d, 1, "2·word_embed_proj_dim·d", (r"(^|\.)project_(in|out)\.",))
        b.linear("project_in", wdim, d, 1)
        b.linear("project_out", d, wdim, 1)
    b.term("attention", 4 * _lin(d, d, bias), n, "4·d²" + _b(bias, " + 4d"), (_layer("layers", r"\d+", "self_attn"),))
    b.term(
        "mlp",
        _lin(d, ff, bias) + _lin(ff, d, bias),
        n,
        "2·d·d_ff" + _b(bias, " + d_ff + d"),
        (_layer("layers", r"\d+", r"fc[12]"),),
    )
    b.term("norms", 2 * ln, n, "2 LayerNorm", (_layer("layers", r"\d+", r"(self_attn_layer_norm|final_layer_norm)"),))
    if final:
        b.term("final norm", ln, 1, "LayerNorm", (r"decoder\.final_layer_norm\.",))
    _lm_head(b, hp, hp.tied if hp.tied is not None else True, d=wdim)
    b.assumptions.append("learned positions with OPT's offset of 2 rows")
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        b.linear(name, d, d, n)
    b.linear("fc1", d, ff, n)
    b.linear("fc2", ff, d, n)


def _phi(hp: HParams, b: _Build) -> None:
    """transformers PhiForCausalLM (phi-1, phi-1.5, phi-2)."""
    _reject(hp, bias=hp.bias)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    ff = _dff(hp, 8192)
    q, kv = hp.q_dim, hp.kv_dim
    qk_norm = bool(hp.get("qk_layernorm", False))
    b.term("embedding", v * d, 1, "vocab·d", (r"embed_tokens\.",))
    attn = _lin(d, q, True) + 2 * _lin(d, kv, True) + _lin(q, d, True)
    if qk_norm:
        attn += 2 * 2 * (d // hp.n_heads)
    b.term(
        "attention",
        attn,
        n,
        "d·(2·heads + 2·kv_heads)·head_dim + biases" + _b(qk_norm, " + q/k LayerNorm"),
        (_layer("layers", r"\d+", "self_attn"),),
    )
    b.term("mlp", _lin(d, ff, True) + _lin(ff, d, True), n, "2·d·d_ff + d_ff + d", (_layer("layers", r"\d+", "mlp"),))
    b.term(
        "norm",
        2 * d,
        n,
        "LayerNorm (shared by the parallel attention and MLP)",
        (_layer("layers", r"\d+", "input_layernorm"),),
    )
    b.term("final norm", 2 * d, 1, "LayerNorm", (r"final_layernorm\.",))
    _lm_head(b, hp, hp.tied if hp.tied is not None else False, bias=v)
    b.linear("q_proj", d, q, n)
    b.linear("k_proj", d, kv, n)
    b.linear("v_proj", d, kv, n)
    b.linear("dense", q, d, n)
    b.linear("fc1", d, ff, n)
    b.linear("fc2", ff, d, n)


def _falcon(hp: HParams, b: _Build) -> None:
    """transformers FalconForCausalLM (7B-style multi-query, 40B-style grouped KV, or classic MHA)."""
    _reject(hp, head_dim=hp.head_dim)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    h = hp.n_heads
    hd = d // h
    ff = _dff(hp, 4 * d)
    bias = bool(hp.bias)
    new_arch = hp.get("new_decoder_architecture")
    multi_query = hp.get("multi_query")
    kvh = hp.kv_heads
    if new_arch is None:  # from flags: infer the variant from --kv-heads
        new_arch = kvh is not None and kvh not in (1, h)
        multi_query = kvh is None or kvh == 1
    parallel = bool(hp.get("parallel_attn", True))
    n_ln = hp.get("num_ln_in_parallel_attn")
    if n_ln is None and new_arch:
        n_ln = 2
    if new_arch:
        kv = kvh if kvh is not None else h
        qkv_out = (2 * kv + h) * hd
        b.assumptions.append(f"new decoder architecture (Falcon-40B style): {kv} key/value heads")
    elif multi_query:
        qkv_out = d + 2 * hd
        b.assumptions.append("multi-query attention: one key/value head (Falcon-7B style)")
    else:
        qkv_out = 3 * d
        b.assumptions.append("multi-head attention (multi_query false)")
    if not parallel:
        norms, why = 2, "input and post-attention LayerNorm"
    elif n_ln == 2:
        norms, why = 2, "ln_attn and ln_mlp (parallel attention)"
    else:
        norms, why = 1, "one LayerNorm shared by the parallel attention and MLP"
    b.term("embedding", v * d, 1, "vocab·d", (r"word_embeddings\.",))
    b.term(
        "attention",
        _lin(d, qkv_out, bias) + _lin(d, d, bias),
        n,
        "d·(heads + 2·kv_heads)·head_dim + d²" + _b(bias, " + biases"),
        (_layer("h", r"\d+", "self_attention"),),
    )
    b.term(
        "mlp",
        _lin(d, ff, bias) + _lin(ff, d, bias),
        n,
        "2·d·d_ff" + _b(bias, " + biases"),
        (_layer("h", r"\d+", "mlp"),),
    )
    b.term(
        "norms",
        norms * 2 * d,
        n,
        why,
        (_layer("h", r"\d+", r"(input_layernorm|post_attention_layernorm|ln_attn|ln_mlp)"),),
    )
    b.term("final norm (ln_f)", 2 * d, 1, "LayerNorm", (r"(^|\.)ln_f\.",))
    _lm_head(b, hp, hp.tied if hp.tied is not None else True)
    b.linear("query_key_value", d, qkv_out, n)
    b.linear("dense", d, d, n)
    b.linear("dense_h_to_4h", d, ff, n)
    b.linear("dense_4h_to_h", ff, d, n)


def _chatglm(hp: HParams, b: _Build) -> None:
    """THUDM modeling_chatglm.py (ChatGLM2/3): ChatGLMForConditionalGeneration.

    query_key_value: d → heads·kv_channels + 2·groups·kv_channels (multi-query) with bias if add_qkv_bias or
    add_bias_linear; dense: heads·kv_channels → d; SwiGLU MLP d → 2·ffn → d; RMSNorm (weight only) before
    attention and MLP; final RMSNorm if post_layer_norm; output_layer d → padded_vocab, no bias, never tied.
    """
    _reject(hp, tied=True if hp.tied else None)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    ff = _dff(hp, 13696)
    q, kv = hp.q_dim, hp.kv_dim
    bias = bool(hp.bias)
    qkv_bias = bias or bool(hp.qkv_bias if hp.qkv_bias is not None else True)
    rms = bool(hp.get("rmsnorm", True))
    post = bool(hp.get("post_layer_norm", True))
    norm = d if rms else 2 * d
    qkv_out = q + 2 * kv
    b.term("embedding", v * d, 1, "padded_vocab·d", (r"word_embeddings\.",))
    b.term(
        "attention",
        _lin(d, qkv_out, qkv_bias) + _lin(q, d, bias),
        n,
        "d·(heads + 2·groups)·kv_channels + heads·kv_channels·d" + _b(qkv_bias, " + qkv bias"),
        (_layer("layers", r"\d+", "self_attention"),),
    )
    b.term(
        "mlp",
        _lin(d, 2 * ff, bias) + _lin(ff, d, bias),
        n,
        "3·d·ffn (SwiGLU)" + _b(bias, " + biases"),
        (_layer("layers", r"\d+", "mlp"),),
    )
    b.term(
        "norms",
        2 * norm,
        n,
        "2 RMSNorm" if rms else "2 LayerNorm",
        (_layer("layers", r"\d+", r"(input_layernorm|post_attention_layernorm)"),),
    )
    if post:
        b.term("final norm", norm, 1, "RMSNorm" if rms else "LayerNorm", (r"final_layernorm\.",))
    b.term("output layer", v * d, 1, "padded_vocab·d", (r"output_layer\.",))
    b.linear("output_layer", d, v, 1)
    if kv != q:
        b.assumptions.append(f"multi-query attention: {hp.n_kv_heads} key/value groups of {hp.d_head}")
    b.assumptions.append("rotary inv_freq is a buffer, not a parameter; no prefix encoder (pre_seq_len unset)")
    b.linear("query_key_value", d, qkv_out, n)
    b.linear("dense", q, d, n)
    b.linear("dense_h_to_4h", d, 2 * ff, n)
    b.linear("dense_4h_to_h", ff, d, n)


_MOE_LORA_NOTE = (
    "LoRA counts nn.Linear targets only; routed experts are fused 3-D parameters in transformers 5 and are not "
    "counted (PEFT may adapt them under names such as down_proj)"
)


def _mixtral(hp: HParams, b: _Build) -> None:
    """transformers MixtralForCausalLM: Mistral attention, sparse MoE feed-forward (top-k of E experts)."""
    _reject(hp, bias=hp.bias)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    ff = _dff(hp, 14336)
    e = hp.num_experts if hp.num_experts is not None else 8
    k = hp.experts_per_token if hp.experts_per_token is not None else 2
    if k > e:
        raise UsageError(f"experts_per_token ({k}) exceeds num_experts ({e})", rule="experts")
    expert = 3 * d * ff
    b.is_moe = True
    b.term("embedding", v * d, 1, "vocab·d", (r"embed_tokens\.",))
    _llama_attention(hp, b, n, all_bias=False, qkv_bias=False)
    b.term("router", e * d, n, "experts·d", (_layer("layers", r"\d+", r"(block_sparse_moe|mlp)", "gate"),))
    b.term(
        "experts",
        e * expert,
        n,
        f"experts·3·d·d_ff (active: {k} of {e})",
        (_layer("layers", r"\d+", r"(block_sparse_moe|mlp)", "experts"),),
        active_each=k * expert,
    )
    b.term("norms", 2 * d, n, "2 RMSNorm", (_layer("layers", r"\d+", r"(input_layernorm|post_attention_layernorm)"),))
    b.term("final norm", d, 1, "RMSNorm", (r"(^|\.)norm\.weight$",))
    _lm_head(b, hp, bool(hp.tied))
    b.assumptions.append(f"{e} experts per layer, {k} active per token; active count = total − unused experts")
    b.assumptions.append(_MOE_LORA_NOTE)


def _qwen2_moe(hp: HParams, b: _Build) -> None:
    """transformers Qwen2MoeForCausalLM: Qwen2 attention; sparse layers with routed experts + a shared expert."""
    _reject(hp, bias=hp.bias)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    ff = _dff(hp, 5632)
    e = hp.num_experts if hp.num_experts is not None else 60
    k = hp.experts_per_token if hp.experts_per_token is not None else 4
    moe_ff = int(hp.get("moe_intermediate_size", 1408))
    shared_ff = int(hp.get("shared_expert_intermediate_size", 5632))
    step = int(hp.get("decoder_sparse_step", 1))
    dense_only = set(hp.get("mlp_only_layers", ()))
    sparse = sum(1 for i in range(n) if i not in dense_only and e > 0 and (i + 1) % step == 0)
    qkv_bias = bool(hp.qkv_bias if hp.qkv_bias is not None else True)
    b.is_moe = True
    b.term("embedding", v * d, 1, "vocab·d", (r"embed_tokens\.",))
    _llama_attention(hp, b, n, all_bias=False, qkv_bias=qkv_bias)
    mlp_pat = _layer("layers", r"\d+", "mlp")
    b.term("dense mlp", 3 * d * ff, n - sparse, "3·d·d_ff", (mlp_pat + r"(gate|up|down)_proj\.",))
    b.term("router", e * d, sparse, "experts·d", (mlp_pat + r"gate\.",))
    b.term(
        "experts",
        e * 3 * d * moe_ff,
        sparse,
        f"experts·3·d·moe_d_ff (active: {k} of {e})",
        (mlp_pat + r"experts\.",),
        active_each=k * 3 * d * moe_ff,
    )
    b.term(
        "shared expert",
        3 * d * shared_ff + d,
        sparse,
        "3·d·shared_d_ff + d (its gate)",
        (mlp_pat + r"shared_expert(_gate)?\.",),
    )
    b.term("norms", 2 * d, n, "2 RMSNorm", (_layer("layers", r"\d+", r"(input_layernorm|post_attention_layernorm)"),))
    b.term("final norm", d, 1, "RMSNorm", (r"(^|\.)norm\.weight$",))
    _lm_head(b, hp, bool(hp.tied))
    b.assumptions.append(
        f"{sparse} sparse layers ({e} experts, {k} active, shared expert always active), {n - sparse} dense"
    )
    b.linear("gate_proj", d, ff, n - sparse)
    b.linear("up_proj", d, ff, n - sparse)
    b.linear("down_proj", ff, d, n - sparse)
    b.linear("gate_proj", d, shared_ff, sparse)  # shared_expert.gate_proj
    b.linear("up_proj", d, shared_ff, sparse)
    b.linear("down_proj", shared_ff, d, sparse)
    b.linear("shared_expert_gate", d, 1, sparse)


def _qwen3_moe(hp: HParams, b: _Build) -> None:
    """transformers Qwen3MoeForCausalLM: Qwen3 attention (q/k norms); sparse layers of routed experts only."""
    d, v, n = hp.d_model, hp.vocab, hp.layers
    ff = _dff(hp, 6144)
    e = hp.num_experts if hp.num_experts is not None else 128
    k = hp.experts_per_token if hp.experts_per_token is not None else 8
    moe_ff = int(hp.get("moe_intermediate_size", 768))
    step = int(hp.get("decoder_sparse_step", 1))
    dense_only = set(hp.get("mlp_only_layers", ()))
    sparse = sum(1 for i in range(n) if i not in dense_only and e > 0 and (i + 1) % step == 0)
    b.is_moe = True
    b.term("embedding", v * d, 1, "vocab·d", (r"embed_tokens\.",))
    _llama_attention(hp, b, n, all_bias=bool(hp.bias), qkv_bias=False, qk_norm=True)
    mlp_pat = _layer("layers", r"\d+", "mlp")
    b.term("dense mlp", 3 * d * ff, n - sparse, "3·d·d_ff", (mlp_pat + r"(gate|up|down)_proj\.",))
    b.term("router", e * d, sparse, "experts·d", (mlp_pat + r"gate\.",))
    b.term(
        "experts",
        e * 3 * d * moe_ff,
        sparse,
        f"experts·3·d·moe_d_ff (active: {k} of {e})",
        (mlp_pat + r"experts\.",),
        active_each=k * 3 * d * moe_ff,
    )
    b.term("norms", 2 * d, n, "2 RMSNorm", (_layer("layers", r"\d+", r"(input_layernorm|post_attention_layernorm)"),))
    b.term("final norm", d, 1, "RMSNorm", (r"(^|\.)norm\.weight$",))
    _lm_head(b, hp, bool(hp.tied))
    b.assumptions.append(f"{sparse} sparse layers ({e} experts, {k} active per token), {n - sparse} dense")
    b.assumptions.append(_MOE_LORA_NOTE)
    b.linear("gate_proj", d, ff, n - sparse)
    b.linear("up_proj", d, ff, n - sparse)
    b.linear("down_proj", ff, d, n - sparse)


_BUILDERS: dict[str, Callable[[HParams, _Build], None]] = {
    "seed": _seed,
    "torch-decoder": _torch_decoder,
    "torch-encoder-decoder": _torch_encoder_decoder,
    "gpt2": _gpt2,
    "bert": _bert_like,
    "roberta": _bert_like,
    "t5": _t5,
    "llama": _llama_family,
    "mistral": _llama_family,
    "qwen2": _llama_family,
    "gemma": _llama_family,
    "opt": _opt,
    "phi": _phi,
    "falcon": _falcon,
    "chatglm": _chatglm,
    "mixtral": _mixtral,
    "qwen2_moe": _qwen2_moe,
    "qwen3": _llama_family,
    "qwen3_moe": _qwen3_moe,
}
assert set(_BUILDERS) == set(PRESETS)


def count_params(hp: HParams, *, lora_r: int | None = None, lora_targets: Sequence[str] | None = None) -> ParamReport:
    """Every parameter of `hp.arch`'s reference implementation, term by term (and LoRA adapters if asked)."""
    builder = _BUILDERS.get(hp.arch)
    if builder is None:
        raise UsageError(f"unknown --arch {hp.arch!r}; known: {', '.join(PRESETS)}", rule="arch")
    b = _Build()
    builder(hp, b)
    for key in hp.defaults_used:
        b.assumptions.append(f"{key} not in config.json: transformers' default used")
    if hp.torch_dtype is None:
        b.assumptions.append("dtype f32 (not given; --dtype or the config's torch_dtype sets it)")
    report = ParamReport(
        arch=hp.arch,
        hparams=hp,
        terms=tuple(b.terms),
        assumptions=tuple(b.assumptions),
        left_out=tuple(b.left_out),
        linears=tuple(b.linears),
        is_moe=b.is_moe,
    )
    if lora_r is not None or lora_targets:
        report = _with_lora(report, lora_r, lora_targets)
    return report


def _with_lora(report: ParamReport, r: int | None, targets: Sequence[str] | None) -> ParamReport:
    from dataclasses import replace

    if r is None or r <= 0:
        raise UsageError("--lora-r must be a positive integer when LoRA targets are given", rule="lora")
    names = sorted({lin.name for lin in report.linears})
    if not names:  # the seed's hand formula counts weights, not modules: there is nothing to name
        raise UsageError(
            f"the {report.arch} formula has no named linear modules for LoRA to target; give --arch PRESET "
            "(torch-decoder, llama, …) or --config, with --lora-targets",
            rule="lora",
        )
    wanted = tuple(t.strip() for t in (targets or ()) if t.strip())
    if not wanted:
        raise UsageError(
            f"--lora-r needs --lora-targets: the linear modules of {report.arch} are {', '.join(names)}", rule="lora"
        )
    unknown = [t for t in wanted if t not in names]
    if unknown:
        raise UsageError(
            f"no module named {', '.join(unknown)} in {report.arch}; LoRA can target: {', '.join(names)}", rule="lora"
        )
    chosen = [lin for lin in report.linears if lin.name in wanted]
    params = sum(r * (lin.d_in + lin.d_out) * lin.count for lin in chosen)
    total = report.total_params or 1
    lora = LoraReport(r, wanted, params, sum(lin.count for lin in chosen), params / total)
    return replace(report, lora=lora)


# ---- JSON ---------------------------------------------------------------------------------------------------


# ---- cross-check against a file -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CrossCheck:
    """Analytic total (from config.json) vs the count in the file, explained term by term."""

    arch: str
    analytic: int
    file: int
    terms: tuple[tuple[str, int, int], ...]  # (term, analytic, in file)
    unmatched: tuple[tuple[str, int], ...]  # file tensors no term accounts for
    notes: tuple[str, ...]

    @property
    def difference(self) -> int:
        return self.file - self.analytic

    @property
    def matches(self) -> bool:
        return self.difference == 0


def cross_check(
    inv: TensorInventory, config: Mapping[str, Any] | None = None, *, path: str | None = None
) -> CrossCheck:
    """Compare `inv.total_params` with the analytic total from `config` (default: the folder's config.json).

    Each model tensor is assigned to the first term whose name pattern matches; the per-term sums show where
    a difference comes from (a tied head saved twice, a missing buffer, an extra task head).
    """
    cfg = config if config is not None else inv.config
    if cfg is None:
        raise UsageError("no config.json to cross-check against (give --config)", rule="cross-check")
    hp = HParams.from_config(cfg, path=path)
    report = count_params(hp)
    compiled = [(t, [re.compile(p) for p in t.patterns]) for t in report.terms]
    per_term: dict[str, int] = {t.name: 0 for t in report.terms}
    unmatched: list[tuple[str, int]] = []
    for rec in inv.tensors:
        if rec.section != "model":
            continue
        for term, pats in compiled:
            if any(p.search(rec.name) for p in pats):
                per_term[term.name] += rec.counted_numel
                break
        else:
            if rec.counted_numel:
                unmatched.append((rec.name, rec.counted_numel))
    rows = tuple((t.name, t.params, per_term[t.name]) for t in report.terms)
    notes: list[str] = []
    file_total = int(inv.total_params)
    diff = file_total - report.total_params
    if diff == 0:
        notes.append(f"the file holds exactly the {report.total_params:,} parameters the {hp.arch} config implies")
    else:
        for name, want, got in rows:
            if want != got:
                notes.append(f"{name}: config implies {want:,}, file has {got:,} ({got - want:+,})")
        if unmatched:
            extra = sum(n for _, n in unmatched)
            notes.append(f"{len(unmatched)} tensor(s) outside the {hp.arch} layout: {extra:+,}")
    return CrossCheck(hp.arch, report.total_params, file_total, rows, tuple(unmatched), tuple(notes))
