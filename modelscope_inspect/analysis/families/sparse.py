"""Sparse and state-space families of transformers: DeepSeek-V2 / V3 (latent attention, MoE with shared experts),
DBRX (nested `attn_config` / `ffn_config`), gpt-oss (attention sinks, biases, sliding/full layers, MoE with a router
bias), Mamba, Mamba-2, and Jamba (attention every `attn_layer_period` layers, MoE every `expert_layer_period`).

Each builder reproduces its `…ForCausalLM` exactly (tests build the real modules on the meta device), with the
active-per-token count of every MoE (shared experts + top-k routed experts + the dense parts). Each family also says
what its cache holds (`CacheLayout`): DeepSeek caches the compressed latent, Mamba layers a conv and an ssm state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...errors import MalformedFileError, UsageError
from .base import Build, CacheLayout, Family, MemoryFacts, dff, layer_re, lin, lm_head, reject, when
from .decoders import _layer_types

if TYPE_CHECKING:
    from ..hparams import HParams

_MOE_LORA_NOTE = (
    "LoRA counts nn.Linear targets only; routed experts are fused 3-D parameters in transformers 5 and are not "
    "counted (PEFT may adapt them under names such as down_proj)"
)
_MAMBA_KIND = "mamba"  # a layer whose cache is a conv and an ssm state, no keys and values

# ---- config reading helpers ----------------------------------------------------------------------------------


def _int(config: Mapping[str, Any], key: str, path: str | None, *, zero_ok: bool = False) -> int:
    """A config integer that must be there (the family's defaults have filled omitted keys already)."""
    value = config.get(key)
    if value is None:
        raise MalformedFileError(
            f"config key {key!r} is missing or null, and transformers cannot build the model without it",
            path=path,
            rule="config-key",
        )
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or (value == 0 and not zero_ok):
        raise MalformedFileError(
            f"config key {key!r} must be a {'non-negative' if zero_ok else 'positive'} integer, got {value!r}",
            path=path,
            rule="config-key",
        )
    return value


def _needs_config(hp: HParams, key: str) -> None:
    """These families' sizes live in config keys no `mi params` flag spells: refuse the flags-only form."""
    if hp.get(key) is None:
        raise UsageError(
            f"--arch {hp.arch} needs its config.json (--config): its sizes have no flags", rule="arch-option"
        )


def _topk(k: int | None, e: int, k_key: str, e_key: str, path: str | None) -> None:
    if k is not None and k > e:
        raise UsageError(
            f"config key {k_key!r} ({k}) exceeds {e_key!r} ({e}): a token cannot use more experts than there are",
            path=path,
            rule="experts",
        )


def _nested(config: Mapping[str, Any], key: str, path: str | None) -> Mapping[str, Any]:
    sub = config.get(key)
    if sub is None:
        return {}
    if not isinstance(sub, Mapping):
        raise MalformedFileError(f"config key {key!r} must be an object", path=path, rule="config-key")
    return sub


def _dt_rank(config: Mapping[str, Any], key: str, d: int, path: str | None) -> int:
    raw = config.get(key, "auto")
    if raw == "auto" or raw is None:
        return math.ceil(d / 16)
    if not isinstance(raw, int) or isinstance(raw, bool) or raw <= 0:
        raise MalformedFileError(
            f"config key {key!r} must be 'auto' or a positive integer", path=path, rule="config-key"
        )
    return raw


# ---- DeepSeek-V2 / V3: multi-head latent attention and MoE with shared experts ------------------------------


def _mla_attention(hp: HParams, b: Build, n: int) -> None:
    """DeepseekV2/V3Attention: q through a low-rank bottleneck (or a plain q_proj when q_lora_rank is null), keys
    and values through the shared latent kv_a_proj_with_mqa → kv_b_proj."""
    d, h = hp.d_model, hp.n_heads
    bias = bool(hp.bias)
    qr, kvr = hp.get("q_lora_rank"), int(hp.get("kv_lora_rank"))
    nope, rope, vd = int(hp.get("qk_nope_head_dim")), int(hp.get("qk_rope_head_dim")), int(hp.get("v_head_dim"))
    qk = nope + rope
    if qr is None:
        q = lin(d, h * qk, False)
        b.linear("q_proj", d, h * qk, n)
    else:
        q = lin(d, qr, bias) + qr + qr * h * qk
        b.linear("q_a_proj", d, qr, n)
        b.linear("q_b_proj", qr, h * qk, n)
    kv = lin(d, kvr + rope, bias) + kvr + kvr * h * (nope + vd)
    o = lin(h * vd, d, bias)
    # The widths are in the assumption below; the formula names the blocks so that it fits a table cell.
    b.term(
        "attention (MLA)",
        q + kv + o,
        n,
        ("q_proj" if qr is None else "q_a, q_b + norm") + " + kv_a, kv_b + norm + o_proj" + when(bias, " + biases"),
        (layer_re("layers", r"\d+", "self_attn"),),
    )
    b.linear("kv_a_proj_with_mqa", d, kvr + rope, n)
    b.linear("kv_b_proj", kvr, h * (nope + vd), n)
    b.linear("o_proj", h * vd, d, n)
    b.assumptions.append(
        f"multi-head latent attention: {h} heads, q_lora_rank {qr}, kv_lora_rank {kvr}, qk dims {nope} + {rope} "
        f"(no rotary + rotary), v_head_dim {vd}"
    )


def _deepseek(hp: HParams, b: Build) -> None:
    """transformers DeepseekV2ForCausalLM / DeepseekV3ForCausalLM."""
    _needs_config(hp, "kv_lora_rank")
    d, v, n = hp.d_model, hp.vocab, hp.layers
    v3 = hp.arch == "deepseek_v3"
    ff = dff(hp, 18432 if v3 else 11008)
    moe_ff = int(hp.get("moe_intermediate_size"))
    e = hp.num_experts or 0
    k = hp.experts_per_token
    shared = int(hp.get("n_shared_experts"))
    first_dense = min(int(hp.get("first_k_dense_replace")), n)
    mlp_bias = bool(hp.get("mlp_bias", False))
    sparse = n - first_dense
    b.is_moe = True
    b.term("embedding", v * d, 1, "vocab·d", (r"embed_tokens\.",))
    _mla_attention(hp, b, n)
    mlp_pat = layer_re("layers", r"\d+", "mlp")

    def gated(width: int) -> int:
        return 2 * lin(d, width, mlp_bias) + lin(width, d, mlp_bias)

    b.term("dense mlp", gated(ff), first_dense, "3·d·d_ff" + when(mlp_bias, " + biases"),
           (mlp_pat + r"(gate|up|down)_proj\.",))  # fmt: skip
    b.term("router", e * d, sparse, "experts·d", (mlp_pat + r"gate\.weight$",))
    expert = 3 * d * moe_ff
    b.term(
        "routed experts",
        e * expert,
        sparse,
        f"experts·3·d·moe_d_ff (active: {k if k is not None else 'all'} of {e})",
        (mlp_pat + r"experts\.",),
        active_each=None if k is None else k * expert,
    )
    b.term(
        "shared experts",
        gated(shared * moe_ff),
        sparse,
        "3·d·n_shared·moe_d_ff" + when(mlp_bias, " + biases"),
        (mlp_pat + r"shared_experts\.",),
    )
    b.term("norms", 2 * d, n, "2 RMSNorm", (layer_re("layers", r"\d+", r"(input_layernorm|post_attention_layernorm)"),))
    b.term("final norm", d, 1, "RMSNorm", (r"(^|\.)norm\.weight$",))
    lm_head(b, hp, bool(hp.tied))
    b.assumptions.append(
        f"{first_dense} dense layer(s) (first_k_dense_replace), then {sparse} MoE layers: {e} routed experts, "
        f"{k if k is not None else '?'} per token, {shared} shared expert(s) always active"
    )
    if k is None:
        b.assumptions.append(
            "num_experts_per_tok is null (DeepseekV2Config's default): the model cannot route; the active count "
            "is given with every routed expert"
        )
    if v3:
        b.assumptions.append(
            f"e_score_correction_bias ({e} per MoE layer) is a buffer, saved in checkpoints but not a parameter: "
            "not counted; neither is the multi-token-prediction layer some checkpoints carry (model.layers.N)"
        )
    freq = hp.get("moe_layer_freq")
    if freq not in (None, 1):
        b.assumptions.append(
            f"moe_layer_freq {freq}: transformers ignores it (every layer from first_k_dense_replace on is MoE); "
            "DeepSeek's own modeling code would make only every {freq}-th layer MoE"
        )
    b.assumptions.append(_MOE_LORA_NOTE)
    for width, count in ((ff, first_dense), (shared * moe_ff, sparse)):
        b.linear("gate_proj", d, width, count)
        b.linear("up_proj", d, width, count)
        b.linear("down_proj", width, d, count)


def _read_deepseek(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    path = v["path"]
    if config.get("kv_lora_rank") is None:
        # transformers' class default (512, DeepSeek-V3's) would be a guess for any other model: the latent width
        # decides both the count and the KV cache, so a config without it is refused.
        raise UsageError(
            "config has no 'kv_lora_rank' (the width of the latent keys and values of multi-head latent attention)",
            path=path,
            rule="config-key",
        )
    q_lora = config.get("q_lora_rank")
    extras: dict[str, Any] = {
        "kv_lora_rank": _int(config, "kv_lora_rank", path),
        "q_lora_rank": None if q_lora is None else _int(config, "q_lora_rank", path),
        "qk_nope_head_dim": _int(config, "qk_nope_head_dim", path, zero_ok=True),
        "qk_rope_head_dim": _int(config, "qk_rope_head_dim", path),
        "v_head_dim": _int(config, "v_head_dim", path),
        "moe_intermediate_size": _int(config, "moe_intermediate_size", path),
        "n_shared_experts": _int(config, "n_shared_experts", path, zero_ok=True),
        "first_k_dense_replace": _int(config, "first_k_dense_replace", path, zero_ok=True),
        "moe_layer_freq": config.get("moe_layer_freq"),
    }
    if config.get("model_type") != "deepseek_v3":  # DeepseekV3MLP has no bias switch
        extras["mlp_bias"] = bool(config.get("mlp_bias", False))
    e = _int(config, "n_routed_experts", path)
    raw_k = config.get("num_experts_per_tok")
    k = None if raw_k is None else _int(config, "num_experts_per_tok", path)
    _topk(k, e, "num_experts_per_tok", "n_routed_experts", path)
    return {
        "bias": bool(config.get("attention_bias", False)),
        "num_experts": e,
        "experts_per_token": k,
        "extras": extras,
    }


def _mla_cache(hp: HParams) -> CacheLayout:
    """transformers' DeepSeek attention caches the latent before decompressing it: `kv_nope` (kv_lora_rank, after
    its norm) as the keys and the rotated `k_rot` (qk_rope_head_dim) as the values, one "head" per layer."""
    kvr, rope = int(hp.get("kv_lora_rank")), int(hp.get("qk_rope_head_dim"))
    h, nope, vd = hp.n_heads, int(hp.get("qk_nope_head_dim")), int(hp.get("v_head_dim"))
    return CacheLayout(
        kvr + rope,
        "kv_lora_rank + qk_rope_head_dim",
        expanded_per_token=h * (nope + rope + vd),
        expanded_formula="heads·(qk_nope + qk_rope + v_head_dim)",
    )


# ---- DBRX ---------------------------------------------------------------------------------------------------


def _dbrx(hp: HParams, b: Build) -> None:
    """transformers DbrxForCausalLM: fused Wqkv, bias-free LayerNorms, every layer a GLU MoE (w1, v1, w2)."""
    reject(hp, bias=hp.bias, head_dim=hp.head_dim)
    if hp.tied:
        raise UsageError("DBRX has no tied embeddings (transformers refuses tie_word_embeddings)", path=hp.path,
                         rule="config-key")  # fmt: skip
    d, v, n = hp.d_model, hp.vocab, hp.layers
    ff = dff(hp, 3584)
    e = hp.num_experts if hp.num_experts is not None else 4
    k = hp.experts_per_token if hp.experts_per_token is not None else 1
    _topk(k, e, "ffn_config.moe_top_k", "ffn_config.moe_num_experts", hp.path)
    kv = hp.n_kv_heads * (d // hp.n_heads)
    b.is_moe = True
    b.term("embedding (wte)", v * d, 1, "vocab·d", (r"(^|\.)wte\.",))
    b.term("attention", d * (d + 2 * kv) + d * d, n, "d·(d + 2·kv_heads·head_dim) + d²",
           (layer_re("blocks", r"\d+", "norm_attn_norm", "attn"),))  # fmt: skip
    b.term("router", e * d, n, "experts·d", (layer_re("blocks", r"\d+", "ffn", "router"),))
    b.term("experts", e * 3 * ff * d, n, f"experts·3·d·d_ff (active: {k} of {e})",
           (layer_re("blocks", r"\d+", "ffn", "experts"),), active_each=k * 3 * ff * d)  # fmt: skip
    b.term("norms", 2 * d, n, "2 LayerNorm without bias",
           (layer_re("blocks", r"\d+", "norm_attn_norm", r"norm_[12]"),))  # fmt: skip
    b.term("final norm (norm_f)", d, 1, "LayerNorm without bias", (r"(^|\.)norm_f\.",))
    lm_head(b, hp, False)
    b.assumptions.append(f"{e} experts per layer, {k} active per token; {hp.n_kv_heads} key/value heads")
    b.assumptions.append(_MOE_LORA_NOTE)
    b.linear("Wqkv", d, d + 2 * kv, n)
    b.linear("out_proj", d, d, n)


def _read_dbrx(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    path = v["path"]
    attn, ffn = _nested(config, "attn_config", path), _nested(config, "ffn_config", path)
    defaults = {"kv_n_heads": 1, "ffn_hidden_size": 3584, "moe_num_experts": 4, "moe_top_k": 1}
    merged = {**defaults, **attn, **ffn}
    _topk(_int(merged, "moe_top_k", path), _int(merged, "moe_num_experts", path), "ffn_config.moe_top_k",
          "ffn_config.moe_num_experts", path)  # fmt: skip
    return {
        "kv_heads": _int(merged, "kv_n_heads", path),
        "d_ff": _int(merged, "ffn_hidden_size", path),
        "num_experts": _int(merged, "moe_num_experts", path),
        "experts_per_token": _int(merged, "moe_top_k", path),
    }


# ---- gpt-oss --------------------------------------------------------------------------------------------------


def _gpt_oss(hp: HParams, b: Build) -> None:
    """transformers GptOssForCausalLM: biased q/k/v/o with per-head attention sinks; every layer a MoE of biased
    gate_up / down experts behind a router with a bias; sliding and full layers alternate."""
    d, v, n = hp.d_model, hp.vocab, hp.layers
    q, kv = hp.q_dim, hp.kv_dim
    ff = dff(hp, 2880)
    e = hp.num_experts if hp.num_experts is not None else 128
    k = hp.experts_per_token if hp.experts_per_token is not None else 4
    _topk(k, e, "num_experts_per_tok", "num_local_experts", hp.path)
    bias = hp.bias if hp.bias is not None else True
    b.is_moe = True
    b.term("embedding", v * d, 1, "vocab·d", (r"embed_tokens\.",))
    b.term(
        "attention",
        lin(d, q, bias) + 2 * lin(d, kv, bias) + lin(q, d, bias) + hp.n_heads,
        n,
        "d·(2·heads + 2·kv_heads)·head_dim" + when(bias, " + biases") + " + heads (sinks)",
        (layer_re("layers", r"\d+", "self_attn"),),
    )
    mlp_pat = layer_re("layers", r"\d+", "mlp")
    b.term("router", e * d + e, n, "experts·d + experts (bias)", (mlp_pat + r"router\.",))
    expert = d * 2 * ff + 2 * ff + ff * d + d
    b.term("experts", e * expert, n, f"experts·(3·d·d_ff + 2·d_ff + d) (active: {k} of {e})",
           (mlp_pat + r"experts\.",), active_each=k * expert)  # fmt: skip
    b.term("norms", 2 * d, n, "2 RMSNorm", (layer_re("layers", r"\d+", r"(input_layernorm|post_attention_layernorm)"),))
    b.term("final norm", d, 1, "RMSNorm", (r"(^|\.)norm\.weight$",))
    lm_head(b, hp, bool(hp.tied))
    kinds = hp.attention_layer_types
    slide = sum(1 for t in kinds if t == "sliding_attention")
    b.assumptions.append(f"{e} experts per layer, {k} active per token (experts and router with biases)")
    if slide and hp.sliding_window:
        b.assumptions.append(f"{slide} of {n} layers attend within a sliding window of {hp.sliding_window:,}")
    b.assumptions.append(_MOE_LORA_NOTE)
    b.linear("q_proj", d, q, n)
    b.linear("k_proj", d, kv, n)
    b.linear("v_proj", d, kv, n)
    b.linear("o_proj", q, d, n)


def _read_gpt_oss(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    # GptOssConfig: even-numbered layers (0, 2, …) slide, odd ones attend to everything.
    types = _layer_types(config, v, lambda i: bool((i + 1) % 2))
    e, k = _int(config, "num_local_experts", v["path"]), _int(config, "num_experts_per_tok", v["path"])
    _topk(k, e, "num_experts_per_tok", "num_local_experts", v["path"])
    return {"bias": bool(config.get("attention_bias", True)), "layer_types": types}


# ---- Mamba, Mamba-2 -------------------------------------------------------------------------------------------


def _mamba_mixer(b: Build, hp: HParams, n: int, prefix: tuple[str, ...], *, norms: bool) -> None:
    """MambaMixer / JambaMambaMixer: in_proj, depthwise conv1d, x_proj, dt_proj, A_log, D, out_proj (Jamba adds
    RMSNorms over dt, B and C)."""
    d = hp.d_model
    di, r, s, kern = (int(hp.get(x)) for x in ("ssm_inner", "ssm_dt_rank", "ssm_state", "ssm_conv"))
    pb, cb = bool(hp.get("ssm_proj_bias")), bool(hp.get("ssm_conv_bias"))
    each = (
        lin(d, 2 * di, pb)
        + di * kern
        + (di if cb else 0)
        + di * (r + 2 * s)
        + lin(r, di, True)
        + di * s
        + di
        + lin(di, d, pb)
    )
    formula = "d·2·d_inner + d_inner·conv + d_inner·(dt_rank + 2·state) + dt_rank·d_inner + d_inner·state + d_inner·d"
    formula += " + conv/dt biases + D" + when(pb, " + projection biases")
    if norms:
        each += r + 2 * s
        formula += " + dt/B/C norms"
    b.term("mamba mixer", each, n, formula, (layer_re(*prefix, r"\d+", "mamba" if norms else "mixer"),))
    b.linear("in_proj", d, 2 * di, n)
    b.linear("x_proj", di, r + 2 * s, n)
    b.linear("dt_proj", r, di, n)
    b.linear("out_proj", di, d, n)


def _mamba(hp: HParams, b: Build) -> None:
    """transformers MambaForCausalLM (state-spaces/mamba-*-hf)."""
    reject(hp, kv_heads=hp.kv_heads, head_dim=hp.head_dim, bias=hp.bias)
    _needs_config(hp, "ssm_inner")
    d, v, n = hp.d_model, hp.vocab, hp.layers
    b.term("embedding", v * d, 1, "vocab·d", (r"(^|\.)embeddings\.",))
    _mamba_mixer(b, hp, n, ("layers",), norms=False)
    b.term("norms", d, n, "RMSNorm", (layer_re("layers", r"\d+", "norm"),))
    b.term("final norm (norm_f)", d, 1, "RMSNorm", (r"(^|\.)norm_f\.",))
    lm_head(b, hp, hp.tied if hp.tied is not None else True)
    b.assumptions.append(
        f"d_inner = expand·d = {hp.get('ssm_inner'):,}, state {hp.get('ssm_state')}, conv kernel "
        f"{hp.get('ssm_conv')}, dt_rank {hp.get('ssm_dt_rank')}"
    )


def _mamba2(hp: HParams, b: Build) -> None:
    """transformers Mamba2ForCausalLM (Mamba-2, Codestral Mamba)."""
    reject(hp, kv_heads=hp.kv_heads, head_dim=hp.head_dim, bias=hp.bias)
    _needs_config(hp, "ssm_heads")
    d, v, n = hp.d_model, hp.vocab, hp.layers
    di, s, kern = (int(hp.get(x)) for x in ("ssm_inner", "ssm_state", "ssm_conv"))
    h, g = int(hp.get("ssm_heads")), int(hp.get("ssm_groups"))
    pb, cb = bool(hp.get("ssm_proj_bias")), bool(hp.get("ssm_conv_bias"))
    conv = di + 2 * g * s
    each = lin(d, di + conv + h, pb) + conv * kern + (conv if cb else 0) + 3 * h + di + lin(di, d, pb)
    b.term("embedding", v * d, 1, "vocab·d", (r"(^|\.)embeddings\.",))
    b.term(
        "mamba2 mixer",
        each,
        n,
        "d·(2·d_inner + 2·groups·state + heads) + conv_dim·conv (+ bias) + 3·heads (dt_bias, A_log, D) + d_inner "
        "(gated norm) + d_inner·d",
        (layer_re("layers", r"\d+", "mixer"),),
    )
    b.term("norms", d, n, "RMSNorm", (layer_re("layers", r"\d+", "norm"),))
    b.term("final norm (norm_f)", d, 1, "RMSNorm", (r"(^|\.)norm_f\.",))
    lm_head(b, hp, bool(hp.tied))
    b.assumptions.append(f"d_inner = expand·d = {di:,} = {h} heads × {di // h}; {g} groups, state {s}, conv {kern}")
    b.linear("in_proj", d, di + conv + h, n)
    b.linear("out_proj", di, d, n)


def _read_mamba(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    path, d = v["path"], v["d_model"]
    expand = config.get("expand", 2)
    if not isinstance(expand, int | float) or isinstance(expand, bool) or expand <= 0:
        raise MalformedFileError("config key 'expand' must be a positive number", path=path, rule="config-key")
    # MambaConfig recomputes intermediate_size = int(expand · hidden_size) on load: a saved intermediate_size is
    # not what the model is built with.
    extras = {
        "ssm_inner": int(expand * d),
        "ssm_state": _int(config, "state_size", path),
        "ssm_conv": _int(config, "conv_kernel", path),
        "ssm_dt_rank": _dt_rank(config, "time_step_rank", d, path),
        "ssm_proj_bias": bool(config.get("use_bias", False)),
        "ssm_conv_bias": bool(config.get("use_conv_bias", True)),
    }
    return {"layer_types": (_MAMBA_KIND,) * v["layers"], "extras": extras}


def _read_mamba2(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    out = _read_mamba(config, v)
    path = v["path"]
    extras = out["extras"]
    heads, head_dim = _int(config, "num_heads", path), _int(config, "head_dim", path)
    if extras["ssm_inner"] != heads * head_dim:
        raise UsageError(
            f"config: hidden_size·expand ({extras['ssm_inner']}) must equal num_heads·head_dim ({heads * head_dim}) "
            "(transformers refuses this config)",
            path=path,
            rule="config-key",
        )
    groups = _int(config, "n_groups", path)
    if heads % groups or extras["ssm_inner"] % groups:
        raise UsageError(f"config key 'n_groups' ({groups}) must divide num_heads ({heads})", path=path,
                         rule="config-key")  # fmt: skip
    extras.update({"ssm_heads": heads, "ssm_head_dim": head_dim, "ssm_groups": groups})
    return out


def _mamba_cache(hp: HParams) -> CacheLayout:
    di, s, kern = (int(hp.get(x)) for x in ("ssm_inner", "ssm_state", "ssm_conv"))
    if hp.get("ssm_heads") is not None:  # Mamba-2: the conv runs over x, B and C; the state is per head
        conv = (di + 2 * int(hp.get("ssm_groups")) * s) * kern
        formula = "conv: (d_inner + 2·groups·state)·conv_kernel; ssm: heads·head_dim·state"
    else:
        conv = di * kern
        formula = "conv: d_inner·conv_kernel; ssm: d_inner·state"
    # Jamba's attention layers cache 2·kv_heads·head_dim per token as usual.
    kv = 2 * hp.n_kv_heads * hp.d_head if hp.heads else 0
    return CacheLayout(kv, "2·kv_heads·head_dim", conv_state=conv, ssm_state=di * s, state_formula=formula)


# ---- Jamba ----------------------------------------------------------------------------------------------------


def _jamba(hp: HParams, b: Build) -> None:
    """transformers JambaForCausalLM: attention layers every `attn_layer_period` (from `attn_layer_offset`), Mamba
    layers elsewhere; MoE feed-forward every `expert_layer_period` (from `expert_layer_offset`)."""
    reject(hp, bias=hp.bias, head_dim=hp.head_dim)
    _needs_config(hp, "ssm_inner")
    d, v, n = hp.d_model, hp.vocab, hp.layers
    ff = dff(hp, 14336)
    e = hp.num_experts if hp.num_experts is not None else 16
    k = hp.experts_per_token if hp.experts_per_token is not None else 2
    kinds = hp.attention_layer_types
    n_attn = sum(1 for t in kinds if t != _MAMBA_KIND)
    period, offset = int(hp.get("expert_layer_period", 2)), int(hp.get("expert_layer_offset", 1))
    n_moe = sum(1 for i in range(n) if i % period == offset) if e > 1 else 0
    q, kv = hp.q_dim, hp.kv_dim
    b.is_moe = n_moe > 0
    b.term("embedding", v * d, 1, "vocab·d", (r"embed_tokens\.",))
    b.term("attention", 2 * d * q + 2 * d * kv, n_attn, "d·(2·heads + 2·kv_heads)·head_dim",
           (layer_re("layers", r"\d+", "self_attn"),))  # fmt: skip
    _mamba_mixer(b, hp, n - n_attn, ("layers",), norms=True)
    ff_pat = layer_re("layers", r"\d+", "feed_forward")
    b.term("dense mlp", 3 * d * ff, n - n_moe, "3·d·d_ff", (ff_pat + r"(gate|up|down)_proj\.",))
    b.term("router", e * d, n_moe, "experts·d", (ff_pat + r"router\.",))
    b.term("experts", e * 3 * d * ff, n_moe, f"experts·3·d·d_ff (active: {k} of {e})", (ff_pat + r"experts\.",),
           active_each=k * 3 * d * ff)  # fmt: skip
    b.term("norms", 2 * d, n, "2 RMSNorm", (layer_re("layers", r"\d+", r"(input_layernorm|pre_ff_layernorm)"),))
    b.term("final norm", d, 1, "RMSNorm", (r"(^|\.)final_layernorm\.",))
    lm_head(b, hp, bool(hp.tied))
    b.assumptions.append(
        f"{n_attn} attention and {n - n_attn} Mamba layers; {n_moe} MoE layers ({e} experts, {k} active), "
        f"{n - n_moe} dense"
    )
    b.assumptions.append(_MOE_LORA_NOTE)
    b.linear("q_proj", d, q, n_attn)
    b.linear("k_proj", d, kv, n_attn)
    b.linear("v_proj", d, kv, n_attn)
    b.linear("o_proj", q, d, n_attn)
    b.linear("gate_proj", d, ff, n - n_moe)
    b.linear("up_proj", d, ff, n - n_moe)
    b.linear("down_proj", ff, d, n - n_moe)


def _read_jamba(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    path, d, n = v["path"], v["d_model"], v["layers"]
    ints = {key: _int(config, key, path, zero_ok=key.endswith("offset"))
            for key in ("attn_layer_period", "attn_layer_offset", "expert_layer_period", "expert_layer_offset",
                        "mamba_d_state", "mamba_d_conv", "mamba_expand")}  # fmt: skip
    for what in ("attn", "expert"):
        if ints[f"{what}_layer_offset"] >= ints[f"{what}_layer_period"]:
            raise UsageError(
                f"config key '{what}_layer_offset' ({ints[f'{what}_layer_offset']}) must be smaller than "
                f"'{what}_layer_period' ({ints[f'{what}_layer_period']}) (transformers refuses this config)",
                path=path,
                rule="config-key",
            )
    e, k = _int(config, "num_experts", path), _int(config, "num_experts_per_tok", path)
    _topk(k, e, "num_experts_per_tok", "num_experts", path)
    types = tuple(
        "full_attention" if i % ints["attn_layer_period"] == ints["attn_layer_offset"] else _MAMBA_KIND
        for i in range(n)
    )
    extras = {
        "expert_layer_period": ints["expert_layer_period"],
        "expert_layer_offset": ints["expert_layer_offset"],
        "ssm_inner": ints["mamba_expand"] * d,
        "ssm_state": ints["mamba_d_state"],
        "ssm_conv": ints["mamba_d_conv"],
        "ssm_dt_rank": _dt_rank(config, "mamba_dt_rank", d, path),
        "ssm_proj_bias": bool(config.get("mamba_proj_bias", False)),
        "ssm_conv_bias": bool(config.get("mamba_conv_bias", True)),
    }
    return {"layer_types": types, "num_experts": e, "experts_per_token": k, "sliding_window": None, "extras": extras}


# ---- the records ----------------------------------------------------------------------------------------------

_DEEPSEEK_KEYS = {"d_ff": ("intermediate_size",), "head_dim": ()}  # head_dim: transformers sets it to the rope dim
_DEEPSEEK_MEMORY = MemoryFacts(softmax_fp32=True, cache=_mla_cache)
_SSM_KEYS = {"heads": (), "kv_heads": (), "head_dim": (), "d_ff": (), "max_positions": ()}
_SSM_MEMORY = MemoryFacts(rotary="none", cache=_mamba_cache)

FAMILIES: tuple[Family, ...] = (
    Family(
        "deepseek_v2", _deepseek, "transformers DeepseekV2ForCausalLM (DeepSeek-V2, V2-Lite)",
        model_types=("deepseek_v2",), architectures=("DeepseekV2ForCausalLM",), keys=_DEEPSEEK_KEYS,
        defaults={"vocab_size": 102400, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                  "num_attention_heads": 32, "max_position_embeddings": 2048, "attention_bias": False,
                  "mlp_bias": False, "first_k_dense_replace": 0, "q_lora_rank": 1536,
                  "n_routed_experts": 64, "n_shared_experts": 2, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
                  "v_head_dim": 128, "num_experts_per_tok": None, "moe_intermediate_size": 1407,
                  "tie_word_embeddings": False},
        tied=False, read=_read_deepseek, memory=_DEEPSEEK_MEMORY,
    ),
    Family(
        "deepseek_v3", _deepseek, "transformers DeepseekV3ForCausalLM (DeepSeek-V3, R1)",
        model_types=("deepseek_v3",), architectures=("DeepseekV3ForCausalLM",), keys=_DEEPSEEK_KEYS,
        defaults={"vocab_size": 129280, "hidden_size": 7168, "intermediate_size": 18432, "num_hidden_layers": 61,
                  "num_attention_heads": 128, "num_key_value_heads": 128, "max_position_embeddings": 4096,
                  "attention_bias": False, "first_k_dense_replace": 3, "q_lora_rank": 1536,
                  "n_routed_experts": 256, "n_shared_experts": 1, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
                  "v_head_dim": 128, "num_experts_per_tok": 8, "moe_intermediate_size": 2048,
                  "tie_word_embeddings": False},
        tied=False, read=_read_deepseek, memory=_DEEPSEEK_MEMORY,
    ),
    Family(
        "dbrx", _dbrx, "transformers DbrxForCausalLM", model_types=("dbrx",), architectures=("DbrxForCausalLM",),
        keys={"d_model": ("d_model",), "layers": ("n_layers",), "heads": ("n_heads",), "kv_heads": (), "head_dim": (),
              "d_ff": (), "max_positions": ("max_seq_len",)},
        defaults={"d_model": 2048, "n_heads": 16, "n_layers": 24, "max_seq_len": 2048, "vocab_size": 32000,
                  "tie_word_embeddings": False},
        tied=False, read=_read_dbrx, heads="none",
        memory=MemoryFacts(norm="layernorm", softmax_fp32=True),
    ),
    Family(
        "gpt_oss", _gpt_oss, "transformers GptOssForCausalLM (gpt-oss)", model_types=("gpt_oss",),
        architectures=("GptOssForCausalLM",), keys={"d_ff": ("intermediate_size",)},
        defaults={"num_hidden_layers": 36, "num_local_experts": 128, "vocab_size": 201088, "hidden_size": 2880,
                  "intermediate_size": 2880, "head_dim": 64, "num_attention_heads": 64, "num_key_value_heads": 8,
                  "sliding_window": 128, "max_position_embeddings": 131072, "num_experts_per_tok": 4,
                  "attention_bias": True, "tie_word_embeddings": False},
        tied=False, read=_read_gpt_oss, memory=MemoryFacts(softmax_fp32=True),
    ),
    Family(
        "mamba", _mamba, "transformers MambaForCausalLM", model_types=("mamba",), architectures=("MambaForCausalLM",),
        keys=_SSM_KEYS,
        defaults={"vocab_size": 50280, "hidden_size": 768, "num_hidden_layers": 32, "state_size": 16, "expand": 2,
                  "conv_kernel": 4, "use_bias": False, "use_conv_bias": True, "time_step_rank": "auto",
                  "tie_word_embeddings": True},
        tied=True, read=_read_mamba, heads="none", memory=_SSM_MEMORY,
    ),
    Family(
        "mamba2", _mamba2, "transformers Mamba2ForCausalLM (Mamba-2, Codestral Mamba)", model_types=("mamba2",),
        architectures=("Mamba2ForCausalLM",), keys=_SSM_KEYS,
        defaults={"num_heads": 128, "head_dim": 64, "vocab_size": 32768, "hidden_size": 4096, "state_size": 128,
                  "num_hidden_layers": 64, "expand": 2, "conv_kernel": 4, "n_groups": 8, "use_bias": False,
                  "use_conv_bias": True, "time_step_rank": "auto", "tie_word_embeddings": False},
        tied=False, read=_read_mamba2, heads="none", memory=_SSM_MEMORY,
    ),
    Family(
        "jamba", _jamba, "transformers JambaForCausalLM (Jamba)", model_types=("jamba",),
        architectures=("JambaForCausalLM",), keys={"head_dim": ()},
        defaults={"vocab_size": 65536, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                  "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 262144,
                  "num_experts_per_tok": 2, "num_experts": 16, "expert_layer_period": 2, "expert_layer_offset": 1,
                  "attn_layer_period": 8, "attn_layer_offset": 4, "mamba_d_state": 16, "mamba_d_conv": 4,
                  "mamba_expand": 2, "mamba_dt_rank": "auto", "mamba_conv_bias": True, "mamba_proj_bias": False,
                  "tie_word_embeddings": False},
        tied=False, read=_read_jamba, memory=MemoryFacts(rotary="none", cache=_mamba_cache),
    ),
)  # fmt: skip
