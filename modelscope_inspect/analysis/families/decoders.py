"""Dense decoder families of transformers: Gemma 2, Gemma 3 (text), Phi-3 / Phi-4, Cohere (Command-R), Granite,
Nemotron, StableLM, OLMo, OLMo 2, SmolLM3, GLM-4 and InternLM3 (their `…ForCausalLM`).

They share one layout — token embedding, L decoder layers of self-attention and MLP with norms, a final norm and an
LM head — and differ in the details one block builder takes as arguments: fused or separate projections, which
projections carry a bias, q/k norms (per head, or over the full width), norm kind and how many per layer (none for
OLMo, one for Cohere's parallel block, four for the Gemma 2/3 and GLM-4 sandwiches), gated or plain MLP, tying.
Each reader turns that family's config spellings into `HParams` fields, including the per-layer attention types
(`layer_types`) transformers derives when the config does not list them, so sliding-window layers bound the KV
cache by their window.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ...errors import MalformedFileError, UsageError
from .base import Build, Family, MemoryFacts, dff, layer_re, lin, lm_head, reject, when

if TYPE_CHECKING:
    from ..hparams import HParams

_SLIDING, _FULL = "sliding_attention", "full_attention"

# ---- the shared block -------------------------------------------------------------------------------------------


def _decoder(
    hp: HParams,
    b: Build,
    *,
    default_ff: int,
    tied_default: bool,
    qkv_bias: bool,
    o_bias: bool,
    fused_qkv: bool = False,
    qk_norm: str | None = None,  # "head": one head_dim norm shared by all heads; "width": heads·head_dim weights
    qk_norm_desc: str = "",
    mlp: str = "gated",  # "gated" (gate/up/down), "fused" (gate_up/down), "plain" (up/down)
    mlp_bias: bool = False,
    norms: tuple[str, ...] = ("input_layernorm", "post_attention_layernorm"),
    norm_each: int | None = None,  # parameters of one norm (default d: an RMSNorm weight)
    norm_desc: str = "RMSNorm",
) -> None:
    """Embedding, `hp.layers` × (attention, MLP, norms), final norm, LM head: the `…ForCausalLM` of the families here.

    Module names are transformers': `model.embed_tokens`, `model.layers.N.self_attn.{q,k,v,o}_proj` (or `qkv_proj`),
    `model.layers.N.mlp.*`, the per-layer norms named in `norms`, `model.norm`, `lm_head`.
    """
    d, v, n = hp.d_model, hp.vocab, hp.layers
    q, kv, hd = hp.q_dim, hp.kv_dim, hp.d_head
    ff = dff(hp, default_ff)
    norm = d if norm_each is None else norm_each

    b.term("embedding", v * d, 1, "vocab·d", (r"embed_tokens\.",))

    attn = lin(d, q, qkv_bias) + 2 * lin(d, kv, qkv_bias) + lin(q, d, o_bias)
    formula = "d·(2·heads + 2·kv_heads)·head_dim"
    if qkv_bias and o_bias:
        formula += " + biases"
    elif qkv_bias:
        formula += " + q/k/v biases"
    if qk_norm == "head":
        attn += 2 * hd
        formula += " + q/k norms (head_dim each)"
    elif qk_norm == "width":
        attn += q + kv
        formula += " + q/k norms (heads·head_dim, kv_heads·head_dim)"
    if qk_norm_desc:
        formula += f" ({qk_norm_desc})"
    b.term("attention", attn, n, formula, (layer_re("layers", r"\d+", "self_attn"),))

    gated = mlp in ("gated", "fused")
    b.term(
        "mlp",
        (2 * lin(d, ff, mlp_bias) if gated else lin(d, ff, mlp_bias)) + lin(ff, d, mlp_bias),
        n,
        ("3·d·d_ff" if gated else "2·d·d_ff") + when(mlp_bias, " + biases"),
        (layer_re("layers", r"\d+", "mlp"),),
    )
    if norms and norm:
        b.term(
            "norms",
            len(norms) * norm,
            n,
            f"{len(norms)} {norm_desc}",
            (layer_re("layers", r"\d+", "(" + "|".join(norms) + ")"),),
        )
        b.term("final norm", norm, 1, norm_desc, (r"(^|\.)norm\.(weight|bias)$",))
    lm_head(b, hp, hp.tied if hp.tied is not None else tied_default)

    if hp.d_ff is None:
        b.assumptions.append(f"d_ff = {ff:,} ({hp.arch} config default intermediate_size)")
    if hp.n_kv_heads != hp.n_heads:
        b.assumptions.append(f"grouped-query attention: {hp.n_heads} query heads share {hp.n_kv_heads} key/value heads")
    if hp.head_dim is not None and hp.head_dim * hp.n_heads != d:
        b.assumptions.append(f"head_dim {hp.head_dim} (heads·head_dim = {q:,} ≠ d_model)")
    if fused_qkv:
        b.linear("qkv_proj", d, q + 2 * kv, n)
    else:
        b.linear("q_proj", d, q, n)
        b.linear("k_proj", d, kv, n)
        b.linear("v_proj", d, kv, n)
    b.linear("o_proj", q, d, n)
    if mlp == "fused":
        b.linear("gate_up_proj", d, 2 * ff, n)
    elif mlp == "gated":
        b.linear("gate_proj", d, ff, n)
        b.linear("up_proj", d, ff, n)
    else:
        b.linear("up_proj", d, ff, n)
    b.linear("down_proj", ff, d, n)


def _flag(hp: HParams, key: str, default: bool) -> bool:
    value = hp.get(key)
    return default if value is None else bool(value)


# ---- the families' builders -------------------------------------------------------------------------------------

_SANDWICH = ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm")


def _gemma2(hp: HParams, b: Build) -> None:
    """transformers Gemma2ForCausalLM: pre/post norms around attention and MLP (four per layer)."""
    bias = bool(hp.bias)
    _decoder(hp, b, default_ff=9216, tied_default=True, qkv_bias=bias, o_bias=bias, norms=_SANDWICH)
    _window_note(hp, b)


def _gemma3_text(hp: HParams, b: Build) -> None:
    """transformers Gemma3ForCausalLM (Gemma 3 1B, and the text model of 4B/12B/27B): Gemma 2 plus q/k norms."""
    bias = bool(hp.bias)
    _decoder(hp, b, default_ff=9216, tied_default=True, qkv_bias=bias, o_bias=bias, qk_norm="head", norms=_SANDWICH)
    _window_note(hp, b)


def _phi3(hp: HParams, b: Build) -> None:
    """transformers Phi3ForCausalLM (Phi-3, Phi-3.5, Phi-4): fused qkv_proj and gate_up_proj, no biases."""
    reject(hp, bias=hp.bias)
    _decoder(hp, b, default_ff=8192, tied_default=False, qkv_bias=False, o_bias=False, fused_qkv=True, mlp="fused")
    _window_note(hp, b)


def _cohere(hp: HParams, b: Build) -> None:
    """transformers CohereForCausalLM (Command-R): one bias-free LayerNorm feeding parallel attention and MLP."""
    bias = bool(hp.bias)
    qk = _flag(hp, "use_qk_norm", False)
    _decoder(
        hp, b, default_ff=22528, tied_default=True, qkv_bias=bias, o_bias=bias,
        qk_norm="width" if qk else None, qk_norm_desc=when(qk, "LayerNorm weights per head"),
        norms=("input_layernorm",), norm_desc="LayerNorm without bias (shared by the parallel attention and MLP)",
    )  # fmt: skip
    b.assumptions.append("parallel block: attention and MLP read one LayerNorm output; no bias in any norm")


def _granite(hp: HParams, b: Build) -> None:
    """transformers GraniteForCausalLM: the Llama layout with embedding, residual, attention and logit multipliers."""
    bias = bool(hp.bias)
    _decoder(
        hp, b, default_ff=11008, tied_default=False, qkv_bias=bias, o_bias=bias, mlp_bias=_flag(hp, "mlp_bias", False)
    )


def _nemotron(hp: HParams, b: Build) -> None:
    """transformers NemotronForCausalLM: LayerNorm1P with bias, a plain relu² MLP (up/down only), partial rotary."""
    bias = bool(hp.bias)
    _decoder(
        hp, b, default_ff=24576, tied_default=False, qkv_bias=bias, o_bias=bias, mlp="plain",
        mlp_bias=_flag(hp, "mlp_bias", False), norm_each=2 * hp.d_model, norm_desc="LayerNorm1P (weight + bias)",
    )  # fmt: skip


def _stablelm(hp: HParams, b: Build) -> None:
    """transformers StableLmForCausalLM: LayerNorms with bias, q/k/v bias `use_qkv_bias`, per-head q/k LayerNorms
    `qk_layernorm`, one shared norm with `use_parallel_residual`."""
    reject(hp, head_dim=hp.head_dim)
    qk = _flag(hp, "qk_layernorm", False)
    parallel = _flag(hp, "use_parallel_residual", False)
    _decoder(
        hp, b, default_ff=6912, tied_default=False, qkv_bias=bool(hp.bias), o_bias=False,
        qk_norm="width" if qk else None, qk_norm_desc=when(qk, "one bias-free LayerNorm per head"),
        norms=("input_layernorm",) if parallel else ("input_layernorm", "post_attention_layernorm"),
        norm_each=2 * hp.d_model, norm_desc="LayerNorm",
    )  # fmt: skip
    if parallel:
        b.assumptions.append("parallel residual: attention and MLP read one LayerNorm output")


def _olmo(hp: HParams, b: Build) -> None:
    """transformers OlmoForCausalLM: non-parametric LayerNorms (no weight, no bias)."""
    bias = bool(hp.bias)
    _decoder(hp, b, default_ff=11008, tied_default=False, qkv_bias=bias, o_bias=bias, norms=())
    b.assumptions.append("OLMo's LayerNorms have no parameters (no weight, no bias)")


def _olmo2(hp: HParams, b: Build) -> None:
    """transformers Olmo2ForCausalLM: RMSNorm after attention and after the MLP; q/k norms over the full width."""
    bias = bool(hp.bias)
    _decoder(
        hp, b, default_ff=11008, tied_default=False, qkv_bias=bias, o_bias=bias, qk_norm="width",
        norms=("post_attention_layernorm", "post_feedforward_layernorm"),
    )  # fmt: skip


def _smollm3(hp: HParams, b: Build) -> None:
    """transformers SmolLM3ForCausalLM: the Llama layout; every 4th layer without rotary (no parameters differ)."""
    bias = bool(hp.bias)
    _decoder(
        hp, b, default_ff=11008, tied_default=True, qkv_bias=bias, o_bias=bias, mlp_bias=_flag(hp, "mlp_bias", False)
    )
    _window_note(hp, b)


def _glm4(hp: HParams, b: Build) -> None:
    """transformers Glm4ForCausalLM: q/k/v bias, fused gate_up_proj, post-attention and post-MLP norms (four)."""
    _decoder(
        hp, b, default_ff=13696, tied_default=False, qkv_bias=hp.bias if hp.bias is not None else True, o_bias=False,
        mlp="fused", norms=("input_layernorm", "post_attention_layernorm", "post_self_attn_layernorm",
                            "post_mlp_layernorm"),
    )  # fmt: skip


def _internlm3(hp: HParams, b: Build) -> None:
    """transformers' InternLM3 (InternLM3Config built as LlamaForCausalLM): one bias switch for attention and MLP."""
    bias = bool(hp.bias)
    _decoder(hp, b, default_ff=10240, tied_default=False, qkv_bias=bias, o_bias=bias, mlp_bias=bias)


def _window_note(hp: HParams, b: Build) -> None:
    kinds = hp.attention_layer_types
    n = sum(1 for k in kinds if k == _SLIDING)
    if hp.sliding_window and n:
        b.assumptions.append(f"{n} of {len(kinds)} layers attend within a sliding window of {hp.sliding_window:,}")


# ---- config readers ---------------------------------------------------------------------------------------------


def _heads_divide(config: Mapping[str, Any], v: dict[str, Any]) -> None:
    """Gemma 2/3 and InternLM3 configs refuse a width the heads do not divide, even with an explicit head_dim."""
    d, heads = v["d_model"], v["heads"]
    if heads and d % heads:
        raise UsageError(
            f"num_attention_heads ({heads}) must divide hidden_size ({d}) (transformers refuses this config)",
            path=v["path"],
            rule="heads-divide",
        )


def _layer_types(config: Mapping[str, Any], v: dict[str, Any], derive: Callable[[int], bool]) -> tuple[str, ...]:
    """The config's `layer_types` (checked), else transformers' derivation: layer i slides when `derive(i)`."""
    layers = v["layers"]
    raw = config.get("layer_types")
    if raw is None:
        return tuple(_SLIDING if derive(i) else _FULL for i in range(layers))
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        raise MalformedFileError(
            "config key 'layer_types' must be a list of strings", path=v["path"], rule="config-key"
        )
    if len(raw) != layers:
        raise MalformedFileError(
            f"config key 'layer_types' has {len(raw)} entries for {layers} layers", path=v["path"], rule="config-key"
        )
    # transformers' legacy spelling "attention" is full attention.
    return tuple(_FULL if t == "attention" else t for t in raw)


def _read_attention_bias(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    return {"bias": bool(config.get("attention_bias", False)), "extras": {"mlp_bias": bool(config.get("mlp_bias"))}}


def _read_gemma2(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    _heads_divide(config, v)
    # Gemma2Config: odd layers (1st, 3rd, …) slide, even ones attend globally.
    types = _layer_types(config, v, lambda i: bool((i + 1) % 2))
    return {"bias": bool(config.get("attention_bias", False)), "layer_types": types}


def _read_gemma3_text(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    _heads_divide(config, v)
    pattern = config.get("sliding_window_pattern", 6)
    if not isinstance(pattern, int) or isinstance(pattern, bool) or pattern <= 0:
        raise MalformedFileError(
            f"config key 'sliding_window_pattern' must be a positive integer, got {pattern!r}",
            path=v["path"],
            rule="config-key",
        )
    # Gemma3TextConfig: every `sliding_window_pattern`-th layer is global, the others slide.
    out: dict[str, Any] = {
        "bias": bool(config.get("attention_bias", False)),
        "layer_types": _layer_types(config, v, lambda i: bool((i + 1) % pattern)),
    }
    window = config.get("sliding_window")
    if config.get("use_bidirectional_attention") and isinstance(window, int) and window > 0:
        out["sliding_window"] = window // 2 + 1  # what Gemma3TextConfig keeps (its exclusive bound)
    return out


def _read_cohere(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    return {
        "bias": bool(config.get("attention_bias", False)),
        "extras": {"use_qk_norm": bool(config.get("use_qk_norm", False))},
    }


def _read_nemotron(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    if v["kv_heads"] is None:
        # NemotronConfig leaves num_key_value_heads None and NemotronAttention then fails: no model to count.
        raise MalformedFileError(
            "config.json has no 'num_key_value_heads', which transformers' Nemotron needs (its default None does "
            "not build)",
            path=v["path"],
            rule="config-key",
        )
    return _read_attention_bias(config, v)


def _read_stablelm(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    return {
        "bias": bool(config.get("use_qkv_bias", False)),
        "extras": {
            "qk_layernorm": bool(config.get("qk_layernorm", False)),
            "use_parallel_residual": bool(config.get("use_parallel_residual", False)),
        },
    }


def _read_smollm3(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    layers = v["layers"]
    raw = config.get("no_rope_layers")
    if raw is None:
        interval = config.get("no_rope_layer_interval", 4)
        if not isinstance(interval, int) or isinstance(interval, bool) or interval <= 0:
            raise MalformedFileError(
                f"config key 'no_rope_layer_interval' must be a positive integer, got {interval!r}",
                path=v["path"],
                rule="config-key",
            )
        has_rope = [int((i + 1) % interval != 0) for i in range(layers)]
    elif isinstance(raw, list) and len(raw) == layers:
        has_rope = [int(bool(x)) for x in raw]
    else:
        raise MalformedFileError(
            f"config key 'no_rope_layers' must list one 0/1 per layer ({layers})", path=v["path"], rule="config-key"
        )
    # SmolLM3Config: with use_sliding_window, the layers without rotary slide; the cache follows layer_types.
    windowed = bool(config.get("use_sliding_window", False)) and config.get("sliding_window") is not None
    types = _layer_types(config, v, lambda i: windowed and not has_rope[i])
    return {**_read_attention_bias(config, v), "layer_types": types}


def _read_glm4(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    return {"bias": bool(config.get("attention_bias", True))}


def _read_internlm3(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    _heads_divide(config, v)
    # InternLM3Config maps `qkv_bias` onto attention_bias and `bias` onto mlp_bias (the published configs' spelling).
    attn = config.get("attention_bias", config.get("qkv_bias", False))
    mlp = config.get("mlp_bias", config.get("bias", False))
    if bool(attn) != bool(mlp):
        raise UsageError(
            f"config sets qkv_bias/attention_bias ({attn!r}) ≠ bias/mlp_bias ({mlp!r}); transformers' InternLM3 "
            "(the Llama implementation) has one bias setting for attention and MLP",
            path=v["path"],
            rule="config-key",
        )
    return {"bias": bool(attn)}


# ---- memory facts -----------------------------------------------------------------------------------------------

_ATTN_DROP: tuple[tuple[str, ...], float] = (("attention_dropout",), 0.0)
_NONE: tuple[tuple[str, ...], float] = ((), 0.0)
# Gemma's RMSNorm (fp32, times 1 + weight), four per layer, and the tanh softcapping of attention scores and logits
# (Gemma2Config caps both by default, Gemma3TextConfig neither).
_GEMMA_MEMORY = MemoryFacts(act="gelu_pytorch_tanh", act_keys=("hidden_activation",), softmax_fp32=True,
                            norms_per_layer=lambda hp: 4, norm_impl="gemma", softcap=(None, None))  # fmt: skip
# Checked against autograd's saved tensors (tests/test_families_decoders.py): the Llama layout's activations.
_LLAMA_LIKE = MemoryFacts(softmax_fp32=True, measured=True)

FAMILIES: tuple[Family, ...] = (
    Family(
        "gemma2", _gemma2, "transformers Gemma2ForCausalLM", model_types=("gemma2",),
        architectures=("Gemma2ForCausalLM",),
        defaults={"num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "intermediate_size": 9216,
                  "max_position_embeddings": 8192, "attention_bias": False, "sliding_window": 4096,
                  "tie_word_embeddings": True},
        tied=True, read=_read_gemma2,
        memory=dataclasses.replace(_GEMMA_MEMORY, softcap=(50.0, 30.0), measured=True),
    ),
    Family(
        "gemma3_text", _gemma3_text, "transformers Gemma3ForCausalLM (Gemma 3 text)", model_types=("gemma3_text",),
        architectures=("Gemma3ForCausalLM",),
        defaults={"num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "intermediate_size": 9216,
                  "max_position_embeddings": 131072, "attention_bias": False, "sliding_window": 4096,
                  "sliding_window_pattern": 6, "tie_word_embeddings": True},
        tied=True, read=_read_gemma3_text, memory=dataclasses.replace(_GEMMA_MEMORY, qk_norm="head", measured=True),
    ),
    Family(
        "phi3", _phi3, "transformers Phi3ForCausalLM (Phi-3, Phi-3.5, Phi-4)", model_types=("phi3",),
        architectures=("Phi3ForCausalLM",),
        defaults={"num_attention_heads": 32, "intermediate_size": 8192, "max_position_embeddings": 4096,
                  "tie_word_embeddings": False},
        tied=False,
        # Phi3Model has no embedding dropout (embd_pdrop is unused); resid_pdrop after attention and after the MLP.
        memory=MemoryFacts(rotary="partial", rotary_default=1.0, softmax_fp32=True, fused_qkv=True,
                           fused_gate_up=True,
                           dropouts=(_NONE, _ATTN_DROP, (("resid_pdrop",), 0.0), _NONE), measured=True),
    ),
    Family(
        "cohere", _cohere, "transformers CohereForCausalLM (Command-R)", model_types=("cohere",),
        architectures=("CohereForCausalLM",),
        defaults={"num_attention_heads": 64, "intermediate_size": 22528, "max_position_embeddings": 8192,
                  "attention_bias": False, "use_qk_norm": False, "tie_word_embeddings": True},
        # CohereLayerNorm is Python in fp32 (mean, centre, rsqrt, weight): see memory._norm_saved.
        tied=True, read=_read_cohere,
        memory=MemoryFacts(norm="layernorm", softmax_fp32=True, norms_per_layer=lambda hp: 1, norm_impl="cohere",
                           measured=True),
    ),
    Family(
        "granite", _granite, "transformers GraniteForCausalLM", model_types=("granite",),
        architectures=("GraniteForCausalLM",),
        defaults={"num_attention_heads": 32, "intermediate_size": 11008, "max_position_embeddings": 2048,
                  "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False},
        tied=False, read=_read_attention_bias, memory=_LLAMA_LIKE,
    ),
    Family(
        "nemotron", _nemotron, "transformers NemotronForCausalLM", model_types=("nemotron",),
        architectures=("NemotronForCausalLM",),
        defaults={"num_attention_heads": 48, "intermediate_size": 24576, "max_position_embeddings": 4096,
                  "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False},
        tied=False, read=_read_nemotron,
        memory=MemoryFacts(norm="layernorm", mlp="plain", act="relu2", rotary="partial", rotary_default=0.5,
                           softmax_fp32=True, measured=True),
    ),
    Family(
        "stablelm", _stablelm, "transformers StableLmForCausalLM", model_types=("stablelm",),
        architectures=("StableLmForCausalLM",),
        keys={"head_dim": ()},  # StableLmAttention always uses hidden_size // num_attention_heads
        defaults={"num_attention_heads": 32, "num_key_value_heads": 32, "intermediate_size": 6912,
                  "max_position_embeddings": 4096, "use_qkv_bias": False, "qk_layernorm": False,
                  "use_parallel_residual": False, "tie_word_embeddings": False},
        tied=False, read=_read_stablelm,
        # hidden_dropout drops the MLP output only (the memory model's residual term counts two masks per layer).
        memory=MemoryFacts(norm="layernorm", rotary="partial", rotary_default=0.25, softmax_fp32=True,
                           norms_per_layer=lambda hp: 1 if hp.get("use_parallel_residual") else 2,
                           dropouts=(_NONE, _ATTN_DROP, (("hidden_dropout",), 0.0), _NONE), measured=True),
    ),
    Family(
        "olmo", _olmo, "transformers OlmoForCausalLM", model_types=("olmo",), architectures=("OlmoForCausalLM",),
        defaults={"num_attention_heads": 32, "intermediate_size": 11008, "max_position_embeddings": 2048,
                  "attention_bias": False, "tie_word_embeddings": False},
        tied=False, read=_read_attention_bias,
        memory=MemoryFacts(norm="layernorm", softmax_fp32=True, measured=True),
    ),
    Family(
        "olmo2", _olmo2, "transformers Olmo2ForCausalLM (OLMo 2)", model_types=("olmo2",),
        architectures=("Olmo2ForCausalLM",),
        defaults={"num_attention_heads": 32, "intermediate_size": 11008, "max_position_embeddings": 2048,
                  "attention_bias": False, "tie_word_embeddings": False},
        tied=False, read=_read_attention_bias,
        memory=MemoryFacts(softmax_fp32=True, norm_impl="fp32", qk_norm="width", measured=True),
    ),
    Family(
        "smollm3", _smollm3, "transformers SmolLM3ForCausalLM", model_types=("smollm3",),
        architectures=("SmolLM3ForCausalLM",),
        defaults={"num_attention_heads": 16, "num_key_value_heads": 4, "intermediate_size": 11008,
                  "max_position_embeddings": 32768, "attention_bias": False, "mlp_bias": False,
                  "use_sliding_window": False, "no_rope_layer_interval": 4, "tie_word_embeddings": True},
        tied=True, read=_read_smollm3, memory=_LLAMA_LIKE,
    ),
    Family(
        "glm4", _glm4, "transformers Glm4ForCausalLM (GLM-4-0414)", model_types=("glm4",),
        architectures=("Glm4ForCausalLM",),
        defaults={"num_attention_heads": 32, "num_key_value_heads": 2, "head_dim": 128, "intermediate_size": 13696,
                  "max_position_embeddings": 131072, "attention_bias": True, "tie_word_embeddings": False},
        tied=False, read=_read_glm4,
        memory=MemoryFacts(rotary="partial", rotary_default=0.5, softmax_fp32=True, norms_per_layer=lambda hp: 4,
                           rotary_per_layer=True, fused_gate_up=True, measured=True),
    ),
    Family(
        "internlm3", _internlm3, "transformers LlamaForCausalLM for InternLM3Config", model_types=("internlm3",),
        architectures=("InternLM3ForCausalLM",),
        defaults={"num_attention_heads": 32, "num_key_value_heads": 2, "head_dim": 128, "intermediate_size": 10240,
                  "max_position_embeddings": 32768, "tie_word_embeddings": False},
        # attention_bias / mlp_bias are read with their aliases qkv_bias / bias (default false) by the reader.
        tied=False, read=_read_internlm3, memory=_LLAMA_LIKE,
    ),
)  # fmt: skip
