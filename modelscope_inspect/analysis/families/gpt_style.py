"""GPT-style decoder families of transformers: GPT-NeoX (Pythia), GPT-J, BLOOM, MPT, GPTBigCode (SantaCoder,
StarCoder) and StarCoder2, with the task heads transformers has for each.

All of them keep the GPT layout — token embedding, L blocks of LayerNorm-ed attention and a plain two-matrix MLP,
a final LayerNorm, an LM head — and differ in what the records below spell out: a fused qkv projection (NeoX, BLOOM,
MPT, GPTBigCode), which linears carry a bias, positions (rotary over part of each head for NeoX `rotary_pct` and
GPT-J `rotary_dim`, over all of it for StarCoder2; ALiBi for BLOOM and MPT, which has no parameters; a learned table
for GPTBigCode), one LayerNorm feeding a parallel block (GPT-J), multi-query attention (GPTBigCode), and a
bias-free LayerNorm (MPT). Module names follow transformers, so a file's tensors land on the terms that count them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ...errors import MalformedFileError, UsageError
from .base import Build, Family, MemoryFacts, dff, head_kind, layer_re, lin, lm_head, num_labels, reject, when
from .decoders import _decoder

if TYPE_CHECKING:
    from ..hparams import HParams

# ---- heads ------------------------------------------------------------------------------------------------------


def _head(
    hp: HParams,
    b: Build,
    *,
    tied_default: bool,
    lm_bias: int = 0,
    lm_names: tuple[str, ...] = ("lm_head",),
    tasks: tuple[str, ...] = ("seq-cls", "token-cls", "qa"),
) -> None:
    """The head `architectures` names, as these families' own classes build it (not transformers' Generic* ones):
    `lm_head` for …ForCausalLM; `score` (no bias) for …ForSequenceClassification; `classifier` (with bias) for
    …ForTokenClassification; `qa_outputs` (d → 2) for …ForQuestionAnswering; nothing for the base …Model.
    `tasks`: the task heads the family has; `lm_names`: the LM head's names in published files (Pythia's `embed_out`).
    """
    d = hp.d_model
    kind, name = head_kind(hp.architectures)
    if kind not in ("lm", "base", *tasks):
        b.assumptions.append(
            f"architectures names {name}, a head the {hp.arch} family does not know: counted as the base model "
            "without any head (mi params --exact counts it through transformers)"
        )
        kind = "base"
    labels = int(hp.get("num_labels", 2) or 2)
    if kind == "lm":
        lm_head(b, hp, hp.tied if hp.tied is not None else tied_default, bias=lm_bias)
        pats = tuple(rf"(^|\.){re.escape(n)}\." for n in lm_names)
        b.terms[-1] = replace(b.terms[-1], patterns=pats)
    elif kind == "base":
        b.assumptions.append(f"{name}: the base model, no language-model head")
    elif kind == "seq-cls":
        b.term("score", d * labels, 1, f"d·num_labels ({labels})", (r"(^|\.)score\.",))
        b.linear("score", d, labels, 1)
        b.assumptions.append(f"{name}: score head for {labels} labels, no bias")
    elif kind == "token-cls":
        b.term("classifier", lin(d, labels, True), 1, f"d·num_labels + num_labels ({labels})",
               (r"(^|\.)classifier\.",))  # fmt: skip
        b.linear("classifier", d, labels, 1)
        b.assumptions.append(f"{name}: token-classification head for {labels} labels")
    else:
        b.term("qa_outputs", lin(d, 2, True), 1, "2·d + 2 (start, end)", (r"(^|\.)qa_outputs\.",))
        b.linear("qa_outputs", d, 2, 1)
        b.assumptions.append(f"{name}: question-answering head (start and end logits)")


def _no_d_ff(hp: HParams) -> None:
    if hp.d_ff is not None:
        raise UsageError(
            f"--arch {hp.arch} has no --d-ff option (its MLP is 4·d_model whatever the config says)",
            path=hp.path,
            rule="arch-option",
        )


# ---- the families' builders -------------------------------------------------------------------------------------


def _gpt_neox(hp: HParams, b: Build) -> None:
    """transformers GPTNeoXForCausalLM (Pythia, GPT-NeoX-20B): fused query_key_value, two LayerNorms per layer
    (parallel residual or not: the same modules), `attention_bias` on both attention linears, MLP biases always."""
    reject(hp, kv_heads=hp.kv_heads, head_dim=hp.head_dim)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    ff = dff(hp, 24576)
    bias = hp.bias if hp.bias is not None else True
    b.term("embedding (embed_in)", v * d, 1, "vocab·d", (r"(^|\.)embed_in\.",))
    b.term("attention", lin(d, 3 * d, bias) + lin(d, d, bias), n, "4·d²" + when(bias, " + 4d"),
           (layer_re("layers", r"\d+", "attention"),))  # fmt: skip
    b.term("mlp", lin(d, ff, True) + lin(ff, d, True), n, "2·d·d_ff + d_ff + d", (layer_re("layers", r"\d+", "mlp"),))
    b.term("norms", 2 * 2 * d, n, "2 LayerNorm",
           (layer_re("layers", r"\d+", "(input_layernorm|post_attention_layernorm)"),))  # fmt: skip
    b.term("final norm", 2 * d, 1, "LayerNorm", (r"(^|\.)final_layer_norm\.",))
    _head(hp, b, tied_default=False, lm_names=("lm_head", "embed_out"))
    if hp.d_ff is None:
        b.assumptions.append(f"d_ff = {ff:,} (GPTNeoXConfig default intermediate_size)")
    if hp.get("use_parallel_residual", True):
        b.assumptions.append("parallel residual: attention and MLP read the layer input through their own LayerNorm")
    b.linear("query_key_value", d, 3 * d, n)
    b.linear("dense", d, d, n)
    b.linear("dense_h_to_4h", d, ff, n)
    b.linear("dense_4h_to_h", ff, d, n)


def _gptj(hp: HParams, b: Build) -> None:
    """transformers GPTJForCausalLM: bias-free q/k/v/out projections, one LayerNorm feeding the parallel attention
    and MLP, an LM head with a bias (kept when its weight is tied)."""
    reject(hp, kv_heads=hp.kv_heads, head_dim=hp.head_dim, bias=hp.bias)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    ff = dff(hp, 4 * d)
    b.term("token embedding (wte)", v * d, 1, "vocab·d", (r"(^|\.)wte\.",))
    b.term("attention", 4 * d * d, n, "4·d² (no biases)", (layer_re("h", r"\d+", "attn"),))
    b.term("mlp", lin(d, ff, True) + lin(ff, d, True), n, "2·d·d_ff + d_ff + d", (layer_re("h", r"\d+", "mlp"),))
    b.term("norm (ln_1)", 2 * d, n, "LayerNorm (shared by the parallel attention and MLP)",
           (layer_re("h", r"\d+", "ln_1"),))  # fmt: skip
    b.term("final norm (ln_f)", 2 * d, 1, "LayerNorm", (r"(^|\.)ln_f\.",))
    _head(hp, b, tied_default=False, lm_bias=v, tasks=("seq-cls", "qa"))
    if hp.d_ff is None:
        b.assumptions.append(f"d_ff = 4·d = {ff:,} (n_inner unset)")
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        b.linear(name, d, d, n)
    b.linear("fc_in", d, ff, n)
    b.linear("fc_out", ff, d, n)


def _bloom(hp: HParams, b: Build) -> None:
    """transformers BloomForCausalLM: a LayerNorm after the embedding, fused query_key_value, every linear with a
    bias, a 4·d MLP, ALiBi (no position parameters)."""
    reject(hp, kv_heads=hp.kv_heads, head_dim=hp.head_dim, bias=hp.bias)
    _no_d_ff(hp)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    ff = 4 * d
    b.term("embedding", v * d, 1, "vocab·d", (r"(^|\.)word_embeddings\.",))
    b.term("embedding norm", 2 * d, 1, "LayerNorm", (r"(^|\.)word_embeddings_layernorm\.",))
    b.term("attention", lin(d, 3 * d, True) + lin(d, d, True), n, "4·d² + 4d",
           (layer_re("h", r"\d+", "self_attention"),))  # fmt: skip
    b.term("mlp", lin(d, ff, True) + lin(ff, d, True), n, "8·d² + 5d (d_ff = 4·d)", (layer_re("h", r"\d+", "mlp"),))
    b.term("norms", 2 * 2 * d, n, "2 LayerNorm",
           (layer_re("h", r"\d+", "(input_layernorm|post_attention_layernorm)"),))  # fmt: skip
    b.term("final norm (ln_f)", 2 * d, 1, "LayerNorm", (r"(^|\.)ln_f\.",))
    _head(hp, b, tied_default=True)
    b.assumptions.append("ALiBi attention biases: no position parameters")
    b.linear("query_key_value", d, 3 * d, n)
    b.linear("dense", d, d, n)
    b.linear("dense_h_to_4h", d, ff, n)
    b.linear("dense_4h_to_h", ff, d, n)


def _mpt(hp: HParams, b: Build) -> None:
    """transformers MptForCausalLM: no bias anywhere (its LayerNorms have a weight only), fused Wqkv, a 4·d MLP,
    ALiBi (no position parameters)."""
    reject(hp, kv_heads=hp.kv_heads, head_dim=hp.head_dim, bias=hp.bias)
    _no_d_ff(hp)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    ff = 4 * d
    b.term("token embedding (wte)", v * d, 1, "vocab·d", (r"(^|\.)wte\.",))
    b.term("attention", 4 * d * d, n, "4·d² (no biases)", (layer_re("blocks", r"\d+", "attn"),))
    b.term("mlp", 2 * d * ff, n, "8·d² (d_ff = 4·d, no biases)", (layer_re("blocks", r"\d+", "ffn"),))
    b.term("norms", 2 * d, n, "2 LayerNorm without bias", (layer_re("blocks", r"\d+", "norm_[12]"),))
    b.term("final norm (norm_f)", d, 1, "LayerNorm without bias", (r"(^|\.)norm_f\.",))
    _head(hp, b, tied_default=True)
    b.assumptions.append("ALiBi attention biases: no position parameters")
    b.linear("Wqkv", d, 3 * d, n)
    b.linear("out_proj", d, d, n)
    b.linear("up_proj", d, ff, n)
    b.linear("down_proj", ff, d, n)


def _gpt_bigcode(hp: HParams, b: Build) -> None:
    """transformers GPTBigCodeForCausalLM (SantaCoder, StarCoder): GPT-2's block with multi-query attention — one
    fused c_attn of d + 2·kv_heads·head_dim outputs, one key/value head when `multi_query`."""
    reject(hp, head_dim=hp.head_dim, bias=hp.bias)
    d, v, n = hp.d_model, hp.vocab, hp.layers
    heads = hp.n_heads
    if hp.kv_heads is None:  # only from flags: a config's multi_query always decides
        raise UsageError(
            "--arch gpt_bigcode needs --kv-heads: 1 for multi-query attention (GPTBigCodeConfig's default "
            f"multi_query, StarCoder) or {heads} for multi-head",
            rule="arch-option",
        )
    if hp.n_kv_heads not in (1, heads):
        raise UsageError(
            f"--kv-heads must be 1 (multi_query) or {heads} (the heads) for --arch gpt_bigcode: transformers' "
            "GPTBigCode has no grouped-query attention",
            path=hp.path,
            rule="arch-option",
        )
    kv = hp.kv_dim
    p = hp.max_positions if hp.max_positions is not None else 1024
    ff = dff(hp, 4 * d)
    b.term("token embedding (wte)", v * d, 1, "vocab·d", (r"(^|\.)wte\.",))
    b.term("position embedding (wpe)", p * d, 1, "max_positions·d", (r"(^|\.)wpe\.",))
    mq = hp.n_kv_heads == 1
    b.term("attention", lin(d, d + 2 * kv, True) + lin(d, d, True), n,
           ("2·d² + 2·d·head_dim + biases" if mq else "4·d² + 4d"),
           (layer_re("h", r"\d+", "attn"),))  # fmt: skip
    b.term("mlp", lin(d, ff, True) + lin(ff, d, True), n, "2·d·d_ff + d_ff + d", (layer_re("h", r"\d+", "mlp"),))
    b.term("norms", 2 * 2 * d, n, "2 LayerNorm", (layer_re("h", r"\d+", r"ln_[12]"),))
    b.term("final norm (ln_f)", 2 * d, 1, "LayerNorm", (r"(^|\.)ln_f\.",))
    _head(hp, b, tied_default=True, tasks=("seq-cls", "token-cls"))
    if mq:
        b.assumptions.append(f"multi-query attention: {heads} query heads share one key/value head")
    if hp.max_positions is None:
        b.assumptions.append("max_positions = 1024 (GPTBigCodeConfig default n_positions)")
    if hp.d_ff is None:
        b.assumptions.append(f"d_ff = 4·d = {ff:,} (n_inner unset)")
    b.linear("c_attn", d, d + 2 * kv, n)
    b.linear("c_proj", d, d, n)  # attn.c_proj
    b.linear("c_proj", ff, d, n)  # mlp.c_proj (PEFT targets both by the name)
    b.linear("c_fc", d, ff, n)


def _starcoder2(hp: HParams, b: Build) -> None:
    """transformers Starcoder2ForCausalLM: the Llama layout with LayerNorms (weight and bias), a plain c_fc/c_proj
    MLP, and `use_bias` on every linear but the LM head; grouped-query attention, full rotary."""
    bias = hp.bias if hp.bias is not None else True
    _decoder(
        hp, b, default_ff=12288, tied_default=True, qkv_bias=bias, o_bias=bias, mlp="plain", mlp_bias=bias,
        norm_each=2 * hp.d_model, norm_desc="LayerNorm",
    )  # fmt: skip
    # The shared block names the plain MLP's linears up_proj/down_proj; StarCoder2's are c_fc/c_proj.
    names = {"up_proj": "c_fc", "down_proj": "c_proj"}
    b.linears[:] = [replace(x, name=names.get(x.name, x.name)) for x in b.linears]
    if hp.sliding_window:
        b.assumptions.append(f"every layer attends within a sliding window of {hp.sliding_window:,}")


# ---- config readers ---------------------------------------------------------------------------------------------


def _spelled(config: Mapping[str, Any], *keys: str) -> str:
    """The first of `keys` the config has (how the user's file spells it), else the first."""
    return next((k for k in keys if config.get(k) is not None), keys[0])


def _heads_divide(config: Mapping[str, Any], v: dict[str, Any], heads_keys: tuple[str, ...],
                  d_keys: tuple[str, ...], what: str) -> None:  # fmt: skip
    """These families split the width into d/heads-wide heads (no head_dim key): refuse heads that do not divide."""
    d, heads = v["d_model"], v["heads"]
    if isinstance(heads, int) and heads > 0 and isinstance(d, int) and d % heads:
        hk, dk = _spelled(config, *heads_keys), _spelled(config, *d_keys)
        raise UsageError(
            f"{hk} ({heads}) must divide {dk} ({d}): transformers' {what} splits {dk} into {hk} heads",
            path=v["path"],
            rule="heads-divide",
        )


def _labels(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    kind = head_kind(v["architectures"])[0]
    return {"num_labels": num_labels(config)} if kind in ("seq-cls", "token-cls") else {}


def _number(key: str, value: Any, path: str | None) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
        raise MalformedFileError(
            f"config key {key!r} must be a number between 0 and 1, got {value!r}", path=path, rule="config-key"
        )
    return float(value)


def _read_gpt_neox(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    _heads_divide(config, v, ("num_attention_heads",), ("hidden_size",), "GPTNeoXAttention")
    # GPTNeoXConfig: rope_parameters (or the legacy rope_scaling) wins; else rotary_pct; else 0.25.
    rope = config.get("rope_scaling") or config.get("rope_parameters")
    if isinstance(rope, dict) and "partial_rotary_factor" in rope:
        frac = _number("rope_parameters.partial_rotary_factor", rope["partial_rotary_factor"], v["path"])
    else:
        frac = _number("rotary_pct", config.get("rotary_pct", 0.25), v["path"])
    heads = v["heads"]
    extras = {
        "use_parallel_residual": bool(config.get("use_parallel_residual", True)),
        # GPTNeoXAttention: rotary_ndims = int(head_size · partial_rotary_factor).
        "rotary_dim": int(v["d_model"] // heads * frac) if heads else 0,
        **_labels(config, v),
    }
    return {"bias": bool(config.get("attention_bias", True)), "extras": extras}


def _read_gptj(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    _heads_divide(config, v, ("n_head", "num_attention_heads"), ("n_embd", "hidden_size"), "GPTJAttention")
    rotary = config.get("rotary_dim")  # null: GPT-J rotates the whole head
    if rotary is not None and (not isinstance(rotary, int) or isinstance(rotary, bool) or rotary < 0):
        raise MalformedFileError(
            f"config key 'rotary_dim' must be a non-negative integer or null, got {rotary!r}",
            path=v["path"],
            rule="config-key",
        )
    return {"extras": {"rotary_dim": rotary, **_labels(config, v)}}


def _read_bloom(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    _heads_divide(config, v, ("n_head", "num_attention_heads"), ("hidden_size", "n_embed"), "BloomAttention")
    return {"extras": _labels(config, v)}


# MPT switches transformers' MptForCausalLM does not implement (it always builds multi-head, bias-free, 4·d-MLP
# blocks with ALiBi): counting such a config as transformers builds it would not be the checkpoint's model.
_MPT_FIXED: tuple[tuple[str, object], ...] = (
    ("expansion_ratio", 4), ("no_bias", True), ("attn_config.attn_type", "multihead_attention"),
    ("attn_config.alibi", True), ("attn_config.qk_ln", False),
)  # fmt: skip


def _read_mpt(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    _heads_divide(config, v, ("n_heads", "num_attention_heads"), ("d_model", "hidden_size"), "MptAttention")
    attn = config.get("attn_config")
    if attn is None:  # MptConfig: null means MptAttentionConfig's defaults
        attn = {}
    if not isinstance(attn, dict):
        raise MalformedFileError(
            f"config key 'attn_config' must be an object, got {attn!r}", path=v["path"], rule="config-key"
        )
    # MptAttentionConfig's defaults for the keys attn_config omits.
    attn = {"attn_type": "multihead_attention", "alibi": True, "qk_ln": False, "attn_pdrop": 0, **attn}
    for key, fixed in _MPT_FIXED:
        value = attn.get(key.split(".", 1)[1]) if key.startswith("attn_config.") else config.get(key, fixed)
        if value is not None and value != fixed:  # null: transformers ignores the key, and so do we
            raise UsageError(
                f"config sets {key} = {value!r}; transformers' MptForCausalLM implements only {fixed!r} (the "
                "checkpoint's own modeling code would build other modules than transformers counts)",
                path=v["path"],
                rule="config-unsupported",
            )
    pdrop = attn.get("attn_pdrop")
    return {"extras": {"attn_pdrop": _number("attn_config.attn_pdrop", pdrop, v["path"]), **_labels(config, v)}}


def _read_gpt_bigcode(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    _heads_divide(config, v, ("n_head", "num_attention_heads"), ("n_embd", "hidden_size"), "GPTBigCodeAttention")
    # GPTBigCodeConfig derives num_key_value_heads from multi_query (the key itself is overwritten).
    multi_query = bool(config.get("multi_query", True))
    return {"kv_heads": 1 if multi_query else v["heads"], "extras": {"multi_query": multi_query, **_labels(config, v)}}


def _read_starcoder2(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    if v["head_dim"] is None:
        _heads_divide(config, v, ("num_attention_heads",), ("hidden_size",), "Starcoder2Attention")
    return {"bias": bool(config.get("use_bias", True))}


# ---- memory facts -----------------------------------------------------------------------------------------------


def _four_d(hp: HParams) -> int:
    return hp.d_ff if hp.d_ff is not None else 4 * hp.d_model


def _neox_rotary(hp: HParams) -> int:
    """The reader's rotary width; from flags, GPTNeoXConfig's default rotary_pct 0.25 of each head."""
    dim = hp.get("rotary_dim")
    return int(dim) if dim is not None else int(hp.d_head * 0.25)


def _gptj_rotary(hp: HParams) -> int:
    """The config's rotary_dim (null: the whole head, as GPTJAttention rotates); from flags, GPTJConfig's 64."""
    dim = hp.get("rotary_dim", 64)
    return hp.d_head if dim is None else int(dim)


_NONE: tuple[tuple[str, ...], float] = ((), 0.0)


def _facts(**kw: Any) -> MemoryFacts:
    """Every family here: LayerNorm, a plain MLP, eager softmax in fp32. `measured`: byte-exact to autograd's saved
    tensors but for a few bytes (tests/test_families_gpt_style.py); the others are within 10 %."""
    return MemoryFacts(norm="layernorm", mlp="plain", softmax_fp32=True, **kw)


# Heads: as the families' own classes build them (`_head`), but StarCoder2's Generic* ones (`apply_head`).
FAMILIES: tuple[Family, ...] = (
    Family(
        "gpt_neox", _gpt_neox, "transformers GPTNeoXForCausalLM (Pythia, GPT-NeoX-20B)", model_types=("gpt_neox",),
        architectures=("GPTNeoXForCausalLM", "GPTNeoXModel", "GPTNeoXForSequenceClassification",
                       "GPTNeoXForTokenClassification", "GPTNeoXForQuestionAnswering"),
        keys={"kv_heads": (), "head_dim": ()},  # GPTNeoXAttention: hidden_size // num_attention_heads
        defaults={"num_attention_heads": 64, "intermediate_size": 24576, "max_position_embeddings": 2048,
                  "attention_bias": True, "use_parallel_residual": True, "tie_word_embeddings": False},
        tied=False, read=_read_gpt_neox, heads="builder",
        # Dropouts: hidden_dropout on the embeddings and after attention and MLP.
        memory=_facts(act="gelu", rotary_dims=_neox_rotary, fused_qkv=True,
                      dropouts=((("hidden_dropout",), 0.0), (("attention_dropout",), 0.0),
                                (("hidden_dropout",), 0.0), _NONE)),
    ),
    Family(
        "gptj", _gptj, "transformers GPTJForCausalLM (GPT-J)", model_types=("gptj",),
        architectures=("GPTJForCausalLM", "GPTJModel", "GPTJForSequenceClassification", "GPTJForQuestionAnswering"),
        keys={"d_model": ("n_embd", "hidden_size"), "layers": ("n_layer", "num_hidden_layers"),
              "heads": ("n_head", "num_attention_heads"), "kv_heads": (), "head_dim": (), "d_ff": ("n_inner",),
              "max_positions": ("n_positions", "max_position_embeddings")},
        defaults={"n_head": 16, "n_positions": 2048, "rotary_dim": 64, "tie_word_embeddings": False},
        tied=False, read=_read_gptj, heads="builder",
        memory=_facts(act="gelu_new", rotary_dims=_gptj_rotary, d_ff=_four_d, norms_per_layer=lambda hp: 1,
                      measured=True,
                      dropouts=((("embd_pdrop",), 0.0), (("attn_pdrop",), 0.0), (("resid_pdrop",), 0.0), _NONE)),
    ),
    Family(
        "bloom", _bloom, "transformers BloomForCausalLM (BLOOM)", model_types=("bloom",),
        architectures=("BloomForCausalLM", "BloomModel", "BloomForSequenceClassification",
                       "BloomForTokenClassification", "BloomForQuestionAnswering"),
        keys={"d_model": ("hidden_size", "n_embed"), "layers": ("n_layer", "num_hidden_layers"),
              "heads": ("n_head", "num_attention_heads"), "kv_heads": (), "head_dim": (), "d_ff": (),
              "max_positions": ()},
        defaults={"n_head": 8, "tie_word_embeddings": True},
        tied=True, read=_read_bloom, heads="builder",
        # BloomGelu is an autograd Function saving its input (one d_ff tensor, as gelu); hidden_dropout after
        # attention and MLP, no embedding dropout.
        memory=_facts(act="gelu", rotary="none", d_ff=_four_d, fused_qkv=True,
                      dropouts=(_NONE, (("attention_dropout",), 0.0), (("hidden_dropout",), 0.0), _NONE)),
    ),
    Family(
        "mpt", _mpt, "transformers MptForCausalLM (MPT)", model_types=("mpt",),
        architectures=("MptForCausalLM", "MPTForCausalLM", "MptModel", "MptForSequenceClassification",
                       "MptForTokenClassification", "MptForQuestionAnswering"),
        keys={"d_model": ("d_model", "hidden_size"), "layers": ("n_layers", "num_hidden_layers"),
              "heads": ("n_heads", "num_attention_heads"), "kv_heads": (), "head_dim": (), "d_ff": (),
              "max_positions": ("max_seq_len",)},
        defaults={"n_heads": 16, "max_seq_len": 2048, "expansion_ratio": 4, "no_bias": True,
                  "tie_word_embeddings": True},
        # attn_config.attn_pdrop (its attention, residual and MLP dropout) is nested: the memory model reads no
        # dropout for MPT (the published configs have 0).
        tied=True, read=_read_mpt, heads="builder",
        memory=_facts(act="gelu", rotary="none", d_ff=_four_d, fused_qkv=True, measured=True),
    ),
    Family(
        "gpt_bigcode", _gpt_bigcode, "transformers GPTBigCodeForCausalLM (SantaCoder, StarCoder)",
        model_types=("gpt_bigcode",),
        architectures=("GPTBigCodeForCausalLM", "GPTBigCodeModel", "GPTBigCodeForSequenceClassification",
                       "GPTBigCodeForTokenClassification"),
        keys={"d_model": ("n_embd", "hidden_size"), "layers": ("n_layer", "num_hidden_layers"),
              "heads": ("n_head", "num_attention_heads"), "kv_heads": (), "head_dim": (), "d_ff": ("n_inner",),
              "max_positions": ("n_positions", "max_position_embeddings")},
        defaults={"n_head": 12, "n_positions": 1024, "multi_query": True, "tie_word_embeddings": True},
        tied=True, read=_read_gpt_bigcode, unsupported=("add_cross_attention",), heads="builder",
        memory=_facts(act="gelu_pytorch_tanh", rotary="none", learned_positions=0, d_ff=_four_d,
                      fused_qkv=True,
                      dropouts=((("embd_pdrop",), 0.1), (("attn_pdrop",), 0.1), (("resid_pdrop",), 0.1), _NONE)),
    ),
    Family(
        "starcoder2", _starcoder2, "transformers Starcoder2ForCausalLM (StarCoder2)", model_types=("starcoder2",),
        architectures=("Starcoder2ForCausalLM", "Starcoder2Model", "Starcoder2ForSequenceClassification",
                       "Starcoder2ForTokenClassification"),
        defaults={"num_attention_heads": 24, "num_key_value_heads": 2, "intermediate_size": 12288,
                  "max_position_embeddings": 4096, "use_bias": True, "tie_word_embeddings": True},
        # Its …ForSequenceClassification / …TokenClassification are transformers' Generic* heads (`score`).
        tied=True, read=_read_starcoder2,
        memory=_facts(act="gelu_pytorch_tanh", measured=True,
                      dropouts=((("embedding_dropout",), 0.0), (("attention_dropout",), 0.0),
                                (("residual_dropout",), 0.0), _NONE)),
    ),
)  # fmt: skip
