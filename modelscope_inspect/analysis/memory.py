"""Where the memory goes: weights at every precision, KV cache, activations, training state, FLOPs.

Every figure is exact integer arithmetic over the hyperparameters (`HParams`) and the options, and every
factor that is a choice rather than a fact is written into `assumptions`, so two tools can be compared.
Pure Python: no torch import on this path.

Activations are modelled tensor by tensor after what autograd really saves for backward in the HF
`transformers` implementations (checked against `torch.autograd.graph.saved_tensors_hooks` in
tests/test_memory_oracles.py for GPT-2, Llama, Mistral, Qwen2, OPT, Phi, Falcon, Gemma, Mixtral and
Qwen2-MoE). Per transformer layer, with `T = b·s` tokens and the activation dtype's width `dt`:

* norms — LayerNorm saves its input (`T·h·dt`) and fp32 mean and rstd (`2·T·4`); HF's Python RMSNorm saves
  an fp32 copy of its input (`T·h·4`), the fp32 rsqrt (`T·4`) and the normalised value cast back (`T·h·dt`).
* attention — the q/k/v projection input (`T·h·dt`); q, k, v as the attention kernel keeps them; the
  output-projection input. Eager attention also keeps the s×s probabilities (`b·a·s²`, fp32 when the model
  upcasts the softmax), and with attention dropout the dropout mask and the dropped probabilities.
  SDPA/flash keep the log-sum-exp (`b·a·s·4`) instead of any s×s tensor.
* MLP — its input, the activation function's saved inputs (HF's `gelu_new` is Python: 4 tensors of d_ff),
  the gate/up products of gated MLPs, the down-projection input.
* dropout — a mask per dropout with p > 0: one byte an element with the fused kernel CUDA runs
  (`native_dropout`), a dtype-sized noise tensor with the CPU kernel.
* MoE (transformers' default `grouped_mm` experts) — router softmax and top-k, per routed token a gathered
  copy of its input, the expert's gated intermediates and the weighted output, permutation indices.
* outside the layers — token (and position) ids as int64, rotary cos/sin, the final norm, the LM-head input,
  and the loss: HF upcasts logits to fp32 and log-softmax keeps its fp32 output (`T·V·4`) plus int64 targets.

The inference working set (tests/test_memory_inference.py) and the KV cache (equal to a real DynamicCache)
are checked the same way: against measurements, never against a second copy of these formulas.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ..dtypes import PRECISIONS, lookup, precision_of
from ..errors import MalformedFileError, UsageError
from .families.base import CacheLayout
from .hparams import HParams

if TYPE_CHECKING:
    from ..inventory import TensorInventory

GIB = 1024**3


class Precision(StrEnum):
    """Element types a user can pick for weights, activations and the KV cache."""

    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"
    fp8 = "fp8"
    int8 = "int8"
    int4 = "int4"


BITS: dict[Precision, int] = {p: lookup(PRECISIONS[p.value]).bits for p in Precision}
FLOAT_COMPUTE = (Precision.fp32, Precision.fp16, Precision.bf16)


class Attention(StrEnum):
    """Attention implementation: decides whether the s×s probabilities are kept for backward."""

    eager = "eager"
    sdpa = "sdpa"
    flash = "flash"


class Recompute(StrEnum):
    """Activation recomputation (gradient checkpointing): none, selective (core attention), full (per layer)."""

    none = "none"
    selective = "selective"
    full = "full"


class Optimizer(StrEnum):
    """Optimizer whose state is held per parameter."""

    adam = "adam"
    adamw = "adamw"
    sgd = "sgd"


class Device(StrEnum):
    """Where training runs; decides the dropout kernel (fused 1-byte masks on GPU, dtype-sized noise on CPU)."""

    gpu = "gpu"
    cpu = "cpu"


def parse_precision(value: str, *, option: str = "--dtype") -> Precision:
    """`"bf16"` → `Precision.bf16`; also accepts `float16`, `half`, `bfloat16`, `float32`, `float`, `f16`…"""
    key = precision_of(value) or value
    try:
        return Precision(key)
    except ValueError:
        known = ", ".join(p.value for p in Precision)
        raise UsageError(f"{option}: unknown dtype {value!r}; choose one of {known}", rule="dtype-known") from None


@dataclass(frozen=True, slots=True)
class MemoryOptions:
    """What the user asked: shape, precisions, and the training setup."""

    batch: int = 1
    seq: int = 2048
    dtype: Precision = Precision.fp16
    kv_dtype: Precision | None = None  # default: the activation dtype
    training: bool = False
    optimizer: Optimizer = Optimizer.adamw
    mixed_precision: bool = False
    recompute: Recompute = Recompute.none
    attention: Attention = Attention.sdpa
    device: Device = Device.gpu
    group_size: int | None = None

    def validate(self) -> None:
        """Positive shape; training needs a float dtype; mixed precision needs a 16-bit compute dtype."""
        if self.batch <= 0:
            raise UsageError(f"--batch must be positive, got {self.batch}", rule="batch-positive")
        if self.seq <= 0:
            raise UsageError(f"--seq must be positive, got {self.seq}", rule="seq-positive")
        if self.group_size is not None and self.group_size <= 0:
            raise UsageError(f"--group-size must be positive, got {self.group_size}", rule="group-size-positive")
        if self.training and self.dtype not in FLOAT_COMPUTE:
            raise UsageError(
                f"--training needs --dtype fp32, fp16 or bf16 (got {self.dtype}); training quantized weights "
                "(QLoRA and the like) is not modelled",
                rule="training-dtype",
            )
        if self.mixed_precision and self.dtype == Precision.fp32:
            raise UsageError(
                "--mixed-precision needs --dtype fp16 or bf16 (the compute precision; the fp32 master copy is "
                "added on top)",
                rule="mixed-precision-dtype",
            )

    @property
    def act_dtype(self) -> Precision:
        """Activations are computed in the weight dtype; quantized weights compute in fp16."""
        return self.dtype if self.dtype in FLOAT_COMPUTE else Precision.fp16

    @property
    def kv(self) -> Precision:
        """The KV-cache dtype: `--kv-dtype`, else the activation dtype."""
        return self.kv_dtype or self.act_dtype


# ---------------------------------------------------------------------------------------------------------------
# What each family's HF implementation saves


@dataclass(frozen=True, slots=True)
class Profile:
    """Implementation facts that change what is saved for backward (from the preset and the raw config)."""

    norm: str  # "layernorm" | "rmsnorm"
    norms_per_layer: int
    mlp: str  # "gated" | "plain"
    act: str
    rotary_dim: int  # 0: no rotary embedding
    learned_positions: int  # rows of a learned position table (0: none)
    position_ids_per_sequence: bool  # position ids b×s (opt: from the attention mask) rather than 1×s
    softmax_fp32: bool  # eager softmax computed in fp32 whatever the dtype (llama family)
    p_embd: float
    p_attn: float
    p_resid: float
    p_act: float
    measured: bool  # checked against autograd in the test-suite
    experts_per_token: int = 1
    num_experts: int = 0
    moe_layers: int = 0  # layers whose MLP is a mixture of experts
    moe_ff: int = 0  # width of one routed expert
    shared_ff: int = 0  # width of the always-on shared expert (qwen2_moe), 0: none
    norm_topk: bool = False  # top-k routing weights renormalised (mixtral)
    norm_impl: str = ""  # "": nn.LayerNorm / Llama's RMSNorm; "gemma", "cohere": see `_norm_saved`
    attn_softcap: bool = False  # eager attention scores go through tanh (Gemma 2's attn_logit_softcapping)
    final_softcap: bool = False  # the logits go through tanh (Gemma 2's final_logit_softcapping)
    rotary_per_layer: bool = False  # each layer saves its own (interleaved) copy of cos & sin (GLM-4)
    fused_gate_up: bool = False  # one gate_up_proj: its 2·d_ff output is live through the MLP (inference)
    qk_norm: str = ""  # "head": q and k normalised per head (over head_dim); "width": over all heads at once


def _num(config: Mapping[str, Any], *keys: str, default: float = 0.0) -> float:
    for key in keys:
        v = config.get(key)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v)
    return default


def _rotary_fraction(cfg: Mapping[str, Any], key: str, default: float, path: str | None) -> float:
    """The share of each head that is rotated, where transformers 5 reads it: `rope_parameters` (a legacy
    `rope_scaling` replaces that dict), then the top-level key, then the config class's default
    (`PreTrainedConfig.convert_rope_params_to_dict`; a transformers 5 `to_dict()` keeps it in `rope_parameters` only).
    """
    legacy = cfg.get("rope_scaling")
    rope = legacy or cfg.get("rope_parameters")
    where, value = key, cfg.get(key)
    if isinstance(rope, Mapping) and rope.get(key) is not None:
        where, value = f"{'rope_scaling' if legacy else 'rope_parameters'}.{key}", rope[key]
    if value is None:
        return default
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
        raise MalformedFileError(
            f"config key {where!r} must be a number from 0 to 1, got {value!r}", path=path, rule="config-key"
        )
    return float(value)


def profile_for(hp: HParams, config: Mapping[str, Any] | None) -> Profile:
    """The saved-tensor profile of `hp.arch`, from its family record (transformers' config defaults when a key is
    absent from `config`)."""
    from .families import family

    cfg: Mapping[str, Any] = config or {}
    facts = family(hp.arch).memory
    act = facts.act
    for key in (*facts.act_keys, "hidden_act", "activation_function"):
        if isinstance(cfg.get(key), str) and cfg[key]:
            act = str(cfg[key])
            break
    act = act.removeprefix("gated-")  # t5's feed_forward_proj spells the gating in the activation
    d_head = hp.d_head if hp.heads else 0
    rotary = 0
    if facts.rotary == "full":
        rotary = d_head
    elif facts.rotary == "partial":
        rotary = int(d_head * _rotary_fraction(cfg, facts.rotary_key, facts.rotary_default, hp.path))
    if facts.rotary_dims is not None:
        rotary = facts.rotary_dims(hp)
    learned = 0 if facts.learned_positions is None else (hp.max_positions or 0) + facts.learned_positions
    drops = tuple(_num(cfg, *keys, default=default) if keys else default for keys, default in facts.dropouts)
    norm = "layernorm" if hp.get("rmsnorm") is False else facts.norm  # chatglm's switch
    gated = facts.mlp == "gated" or bool(hp.get("gated", False))  # t5's gated-* feed-forward
    return Profile(
        norm=norm,
        norms_per_layer=facts.norms_per_layer(hp) if facts.norms_per_layer is not None else 2,
        mlp="gated" if gated else "plain",
        act=act,
        rotary_dim=rotary,
        learned_positions=learned,
        position_ids_per_sequence=facts.position_ids_per_sequence,
        softmax_fp32=facts.softmax_fp32,
        p_embd=drops[0],
        p_attn=drops[1],
        p_resid=drops[2],
        p_act=drops[3],
        measured=facts.measured,
        experts_per_token=(hp.experts_per_token or 1) if hp.num_experts else 1,
        num_experts=hp.num_experts or 0,
        norm_impl=facts.norm_impl,
        rotary_per_layer=facts.rotary_per_layer,
        fused_gate_up=facts.fused_gate_up,
        qk_norm=facts.qk_norm,
        **_softcaps(cfg, facts.softcap),
        **_moe(hp, cfg, facts.norm_topk),
    )


def _softcaps(cfg: Mapping[str, Any], defaults: tuple[float | None, float | None] | None) -> dict[str, bool]:
    """Whether the attention scores and the logits go through tanh: the config's attn_logit_softcapping and
    final_logit_softcapping (present with null: off, as in transformers), else the config class's defaults."""
    if defaults is None:
        return {}
    attn, final = (cfg.get(k, d) for k, d in zip(_SOFTCAP_KEYS, defaults, strict=True))
    return {"attn_softcap": attn is not None, "final_softcap": final is not None}


_SOFTCAP_KEYS = ("attn_logit_softcapping", "final_logit_softcapping")


def _moe(hp: HParams, cfg: Mapping[str, Any], norm_topk: bool) -> dict[str, Any]:
    """Which layers route tokens to experts, and the expert widths (transformers' mixtral / qwen2_moe / qwen3_moe)."""
    if not hp.num_experts:
        return {}
    moe_ff = hp.get("moe_intermediate_size")
    if moe_ff is None:  # the experts as wide as d_ff; every layer sparse (mixtral) or every k-th one (jamba)
        topk = bool(cfg.get("norm_topk_prob", norm_topk))
        period = hp.get("expert_layer_period")
        n = hp.layers
        if period:
            offset = int(hp.get("expert_layer_offset", 0) or 0)
            n = sum(1 for i in range(hp.layers) if i % int(period) == offset)
        return {"moe_layers": n, "moe_ff": hp.d_ff or 0, "norm_topk": topk}
    step = int(hp.get("decoder_sparse_step", 1) or 1)
    dense = set(hp.get("mlp_only_layers", ()) or ()) | set(range(int(hp.get("first_k_dense_replace", 0) or 0)))
    n = sum(1 for i in range(hp.layers) if i not in dense and (i + 1) % step == 0)
    return {
        "moe_layers": n,
        "moe_ff": int(moe_ff),
        "shared_ff": int(hp.get("shared_expert_intermediate_size", 0) or 0)
        or int(moe_ff) * int(hp.get("n_shared_experts", 0) or 0),
        "norm_topk": bool(cfg.get("norm_topk_prob", norm_topk)),
    }


# Extra tensors (in units of d_ff) an activation function saves beyond its output: HF's `gelu_new` and
# `gelu_fast` are Python (pow/tanh/mul chains); torch's C kernels save their input; relu saves its output,
# which is the tensor the next matmul saves anyway.
_ACT_SAVED = {"gelu_new": 4, "gelu_fast": 4, "gelu_python": 3, "relu": 0, "quick_gelu": 2}


def act_saved(act: str) -> int:
    """Tensors of d_ff elements the activation function itself saves for backward."""
    return _ACT_SAVED.get(act, 1)


def _d_ff(hp: HParams, config: Mapping[str, Any] | None) -> int:
    from .families import family

    if hp.d_ff is not None:
        return hp.d_ff
    width = family(hp.arch).memory.d_ff
    if width is not None:
        return width(hp)
    if hp.arch in ("gpt2", "phi", "falcon", "bert", "roberta", "opt"):
        return 4 * hp.d_model
    key = {"chatglm": "ffn_hidden_size", "t5": "d_ff"}.get(hp.arch, "intermediate_size")
    raise MalformedFileError(
        f"config has no {key!r} (the MLP width) needed for the activation and FLOP terms",
        path=hp.path,
        rule="config-key",
    )


def _heads(hp: HParams) -> int:
    if hp.heads is None:
        key = {"gpt2": "n_head", "t5": "num_heads"}.get(hp.arch, "num_attention_heads")
        raise MalformedFileError(
            f"config has no {key!r} (the attention heads) needed for the KV-cache and activation terms"
            + ("" if hp.path else "; pass --heads"),
            path=hp.path,
            rule="config-key",
        )
    return hp.heads


# ---------------------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True, slots=True)
class MemoryTerm:
    """One line of the breakdown: a name, its exact bytes, and how it was computed."""

    name: str
    bytes: int
    formula: str = ""
    per_param: float | None = None
    layers: int | None = None  # per-layer terms: how many layers have it (None: all of them)


@dataclass(frozen=True, slots=True)
class KVCache:
    """KV-cache size: total bytes, bytes per token (all layers), cached tokens per layer.

    `per_token_formula` says what one token stores; for latent attention (MLA) `expanded_per_token` is what the
    per-head keys and values the layers rebuild from it would take (not kept by transformers' cache)."""

    bytes: int
    per_token: int
    tokens_per_layer: tuple[int, ...]
    notes: tuple[str, ...] = ()
    per_token_formula: str = "2·L·kv_heads·head_dim·bytes"
    expanded_per_token: int | None = None
    expanded_formula: str = ""


@dataclass(frozen=True, slots=True)
class StateCache:
    """What state-space (Mamba) layers keep per sequence, whatever the sequence length: a conv state in the
    activation dtype and an ssm state in fp32 per layer, as transformers' `LinearAttentionLayer` holds them."""

    bytes: int
    per_layer: int  # bytes of one layer for one sequence
    layers: int
    conv_bytes: int  # one layer, one sequence
    ssm_bytes: int
    formula: str


@dataclass(frozen=True, slots=True)
class MemoryReport:
    """Everything `mi memory` prints (`render.documents.memory` makes it the `--json` document)."""

    source: str
    arch: str
    params: int
    options: MemoryOptions
    weights_bytes: int
    weights_by_precision: dict[str, int]
    stored: dict[str, Any] | None
    kv: KVCache
    activation_terms: tuple[MemoryTerm, ...]
    activation_bytes: int
    activation_kind: str
    korthikanti_bytes: int
    korthikanti_formula: str
    training_terms: tuple[MemoryTerm, ...]
    training_bytes: int | None
    inference_bytes: int
    flops_forward: int
    flops_training: int
    flops_terms: tuple[MemoryTerm, ...]
    assumptions: tuple[str, ...]
    hparams: dict[str, Any] = field(default_factory=dict)
    state: StateCache | None = None  # state-space layers (mamba, mamba2, jamba); None: the model has none


# ---------------------------------------------------------------------------------------------------------------
# Weights


def weight_bytes(params: int, precision: Precision, group_size: int | None = None) -> int:
    """Bytes of `params` weights at `precision`; integer types with `group_size` add per group one fp16
    scale and one zero point of the weight's width (the GPTQ/AWQ layout)."""
    bits = params * BITS[precision]
    if group_size and precision in (Precision.int8, Precision.int4):
        groups = -(-params // group_size)
        bits += groups * (16 + BITS[precision])
    return (bits + 7) // 8


# ---------------------------------------------------------------------------------------------------------------
# KV cache


_SSM_KIND = "mamba"  # layer type of a state-space layer (families/sparse.py): a state, no keys and values


def _layout(hp: HParams) -> CacheLayout | None:
    from .families import family

    make = family(hp.arch).memory.cache
    return make(hp) if make is not None else None


def kv_cache(hp: HParams, opts: MemoryOptions) -> KVCache:
    """`2 × layers × kv_heads × head_dim × tokens × batch × bytes`, per layer type.

    Sliding-window layers hold `min(seq, window − 1)` tokens: what transformers 5's `DynamicSlidingWindowLayer`
    keeps after a forward (it slices the last `window − 1` keys; the new token makes `window`). Encoder-only
    models have no cache; encoder-decoders add a cross-attention cache over an encoder input of `seq` tokens.
    Families whose cache is laid out otherwise say so in their record: DeepSeek's latent attention caches the
    compressed latent (`kv_lora_rank + qk_rope_head_dim` per token and layer), Mamba layers cache no tokens at all
    (their state is `state_cache`).
    """
    if hp.is_encoder_only:
        return KVCache(0, 0, (), ("encoder-only model: no KV cache",))
    layout = _layout(hp)
    kinds = hp.attention_layer_types
    if layout is not None and not layout.kv_per_token:
        return KVCache(0, 0, (0,) * len(kinds), ("state-space layers only: no KV cache (see the state)",), "0")
    if layout is not None:
        per_layer_token = layout.kv_per_token * BITS[opts.kv]
        formula = f"L·({layout.kv_formula})·bytes"
    else:
        _heads(hp)  # names the missing key if the config has no heads
        per_layer_token = 2 * hp.n_kv_heads * hp.d_head * BITS[opts.kv]  # bits for one token in one layer
        formula = "2·L·kv_heads·head_dim·bytes"
    tokens: list[int] = []
    notes: list[str] = []
    for kind in kinds:
        if kind == _SSM_KIND:
            tokens.append(0)
        elif kind == "sliding_attention" and hp.sliding_window:
            tokens.append(min(opts.seq, hp.sliding_window - 1))
        else:
            tokens.append(opts.seq)
    if any(k == "sliding_attention" for k in kinds) and hp.sliding_window:
        n = sum(1 for k in kinds if k == "sliding_attention")
        notes.append(
            f"{n} sliding-window layer(s) (window {hp.sliding_window}) keep min(seq, window−1) tokens, as "
            "transformers' DynamicSlidingWindowLayer does after a forward; right after a prefill longer than "
            "the window those tokens are a view into the prefill's full-length tensor until the next step"
        )
    n_ssm = sum(1 for k in kinds if k == _SSM_KIND)
    if n_ssm:
        notes.append(f"only the {len(kinds) - n_ssm} attention layers cache keys and values; {n_ssm} Mamba layers "
                     "keep a fixed-size state instead")  # fmt: skip
    bits = sum(t * per_layer_token for t in tokens) * opts.batch
    n_cached = sum(1 for k in kinds if k != _SSM_KIND)
    per_token_bits = per_layer_token * n_cached
    expanded = None
    expanded_f = ""
    if layout is not None and layout.expanded_per_token:
        expanded = (layout.expanded_per_token * BITS[opts.kv] * n_cached + 7) // 8
        expanded_f = f"L·({layout.expanded_formula})·bytes"
        notes.append(
            f"latent attention: transformers caches the compressed latent ({layout.kv_per_token} values per token and "
            f"layer: {layout.kv_formula}) and rebuilds the per-head keys and values ({layout.expanded_per_token} "
            "values per token and layer) at every step; those are not kept"
        )
    if hp.is_encoder_decoder:
        enc_bits = per_layer_token * opts.seq * opts.batch * hp.layers
        bits += enc_bits
        notes.append(
            "encoder-decoder: cross-attention cache over an encoder input of seq tokens in every decoder layer"
        )
    return KVCache(
        (bits + 7) // 8, (per_token_bits + 7) // 8, tuple(tokens), tuple(notes), formula, expanded, expanded_f
    )


def state_cache(hp: HParams, opts: MemoryOptions) -> StateCache | None:
    """Bytes the state-space layers keep for `opts.batch` sequences, independent of `opts.seq`: per layer a conv
    state (`conv_kernel` inputs of the convolution, in the activation dtype) and an ssm state (fp32)."""
    layout = _layout(hp)
    n = sum(1 for k in hp.attention_layer_types if k == _SSM_KIND)
    if layout is None or not n or not (layout.conv_state or layout.ssm_state):
        return None
    conv = layout.conv_state * _b(opts.act_dtype)
    ssm = layout.ssm_state * 4
    per_layer = conv + ssm
    formula = f"{layout.state_formula} (conv in {opts.act_dtype}, ssm in fp32)"
    return StateCache(per_layer * n * opts.batch, per_layer, n, conv, ssm, formula)


# ---------------------------------------------------------------------------------------------------------------
# Activations


def _b(x: Precision) -> int:
    return BITS[x] // 8


def _norm_saved(prof: Profile, T: int, h: int, dt: int) -> tuple[int, str]:
    """Bytes one norm saves for backward over T tokens of width h, and the formula.

    nn.LayerNorm saves its input and fp32 mean and rstd. Llama's RMSNorm saves an fp32 copy of its input, the fp32
    rsqrt and the normalised value cast back to the dtype (for the weight product). Gemma's RMSNorm multiplies in
    fp32 by `1 + weight`: it keeps the fp32 normalised value and that h-wide fp32 sum instead. Cohere's LayerNorm is
    Python in fp32: `x − mean` twice (pow and the rstd product each compute their own), the rstd, the normalised
    value, and the weight's fp32 copy unless the weight already is fp32 (measured in tests/test_families_memory.py).
    q/k norms are the same norms over T·heads rows of head_dim ("head") or T rows of heads·head_dim ("width").
    """
    if prof.norm_impl == "gemma":
        return 2 * T * h * 4 + T * 4 + h * 4, "2·T·h·4 + T·4 + h·4"
    if prof.norm_impl == "fp32":  # OLMo 2: (weight · x_normalised).to(dtype) keeps the normalised value in fp32
        return 2 * T * h * 4 + T * 4, "2·T·h·4 + T·4"
    if prof.norm_impl == "cohere":
        w = 0 if dt == 4 else h * 4
        return 3 * T * h * 4 + T * 4 + w, "3·T·h·4 + T·4" + (" + h·4" if w else "")
    if prof.norm == "layernorm":
        return T * h * dt + 2 * T * 4, "T·h·dt + 2·T·4"
    return T * h * 4 + T * 4 + T * h * dt, "T·h·4 + T·4 + T·h·dt"


def training_activations(
    hp: HParams, prof: Profile, opts: MemoryOptions, d_ff: int
) -> tuple[list[MemoryTerm], list[MemoryTerm], list[MemoryTerm]]:
    """Bytes saved for backward in one training forward: (one layer's terms, one layer's s×s terms, the
    terms outside the layers). The caller multiplies the per-layer terms by the number of layers."""
    b, s, h = opts.batch, opts.seq, hp.d_model
    T = b * s
    a = _heads(hp)
    hd = hp.d_head
    kvh = hp.n_kv_heads
    dt = _b(opts.act_dtype)
    mask = 1 if opts.device == Device.gpu else dt  # fused native_dropout keeps a bool mask; CPU keeps noise
    layer: list[MemoryTerm] = []
    ssq: list[MemoryTerm] = []

    norm_bytes, norm_f = _norm_saved(prof, T, h, dt)
    n_norms = prof.norms_per_layer
    layer.append(
        MemoryTerm(f"{n_norms} × {prof.norm}", n_norms * norm_bytes, f"{n_norms}·({norm_f})" if n_norms > 1 else norm_f)
    )
    layer.append(MemoryTerm("q/k/v projection input", T * h * dt, "T·h·dt"))
    if prof.qk_norm:
        per_head = prof.qk_norm == "head"
        q_bytes, q_f = _norm_saved(prof, T * a if per_head else T, hd if per_head else a * hd, dt)
        k_bytes, _ = _norm_saved(prof, T * kvh if per_head else T, hd if per_head else kvh * hd, dt)
        rows = "T·a rows of hd, T·kv rows of hd" if per_head else "T rows of a·hd, T rows of kv·hd"
        layer.append(MemoryTerm(f"q and k {prof.norm}s", q_bytes + k_bytes, f"{q_f}, T and h for {rows}"))

    # With attention dropout on CPU, PyTorch's SDPA falls back to the math kernel, which saves what eager does.
    kind = opts.attention
    if kind == Attention.sdpa and opts.device == Device.cpu and prof.p_attn > 0:
        kind = Attention.eager
    # A sliding window only masks anything when the sequence is longer than the window.
    sliding = (
        any(k == "sliding_attention" for k in hp.attention_layer_types)
        and hp.sliding_window is not None
        and s > hp.sliding_window
    )
    if kind == Attention.eager:
        layer.append(MemoryTerm("q, k, v (kv repeated)", 3 * T * a * hd * dt, "3·T·a·hd·dt"))
        sm = 4 if prof.softmax_fp32 else dt
        ssq.append(MemoryTerm("softmax output (s×s)", b * a * s * s * sm, f"b·a·s²·{sm}"))
        if prof.attn_softcap:  # eager softcapping keeps tanh's output (scores / cap, in the dtype)
            ssq.append(MemoryTerm("softcap tanh output (s×s)", b * a * s * s * dt, "b·a·s²·dt"))
        if prof.p_attn > 0:
            ssq.append(MemoryTerm("dropout mask (s×s)", b * a * s * s * mask, f"b·a·s²·{mask}"))
            ssq.append(MemoryTerm("dropped probs (s×s)", b * a * s * s * dt, "b·a·s²·dt"))
        elif prof.softmax_fp32 and dt != 4:
            ssq.append(MemoryTerm("probs in dtype (s×s)", b * a * s * s * dt, "b·a·s²·dt"))
        layer.append(MemoryTerm("o-projection input", T * a * hd * dt, "T·a·hd·dt"))
    else:
        # Fused kernels keep q, k, v as given (k, v at kv heads: GQA handled inside the kernel; HF's SDPA
        # path repeats k/v when it must pass a mask — a sliding window shorter than the sequence — and SDPA
        # then keeps that mask too), the output and the log-sum-exp.
        rep = kind == Attention.sdpa and sliding
        kv_store = a if rep else kvh
        layer.append(MemoryTerm("q, k, v", T * (a + 2 * kv_store) * hd * dt, f"T·(a + 2·{'a' if rep else 'kv'})·hd·dt"))
        layer.append(MemoryTerm("output = o-proj input", T * a * hd * dt, "T·a·hd·dt"))
        layer.append(MemoryTerm("log-sum-exp", b * a * s * 4, "b·a·s·4"))
        if rep:
            layer.append(MemoryTerm("sliding-window mask (b×1×s×s)", b * s * s * dt, "b·s²·dt"))
    if prof.p_resid > 0:
        layer.append(MemoryTerm("residual dropout masks", 2 * T * h * mask, f"2·T·h·{mask}"))

    n_ff = act_saved(prof.act) + (3 if prof.mlp == "gated" else 1)
    if n_norms > 1:  # otherwise the MLP reads the same norm output as attention (parallel block)
        layer.append(MemoryTerm("mlp input", T * h * dt, "T·h·dt"))
    L = _layers(hp)
    dense = L - prof.moe_layers
    some = None if dense == L else dense
    if dense:
        ff_f = f"{n_ff}·T·d_ff·dt" if n_ff > 1 else "T·d_ff·dt"
        layer.append(MemoryTerm(f"mlp intermediates ({prof.act})", n_ff * T * d_ff * dt, ff_f, layers=some))
    if prof.p_act > 0:
        layer.append(MemoryTerm("activation dropout mask", T * d_ff * mask, f"T·d_ff·{mask}", layers=some))
    if prof.moe_layers:
        # transformers' default `grouped_mm` experts: tokens are gathered per expert (a copy of h each),
        # gate/up/act/product of d_moe each, the weighted output (h) and three int64 permutation indices.
        k, E, f, n = prof.experts_per_token, prof.num_experts, prof.moe_ff, prof.moe_layers
        router = T * E * 4 + T * k * 8 + ((T * k * 4 + T * 4) if prof.norm_topk else 0)
        layer.append(
            MemoryTerm(
                "router (softmax, top-k)",
                router,
                "T·E·4 + T·k·8" + (" + T·k·4 + T·4" if prof.norm_topk else ""),
                layers=n,
            )
        )
        layer.append(
            MemoryTerm(f"expert intermediates ({prof.act})", k * T * n_ff * f * dt, f"k·T·{n_ff}·d_moe·dt", layers=n)
        )
        layer.append(
            MemoryTerm("routed token copies", k * T * (2 * h * dt + 28) + E * 4, "k·T·(2·h·dt + 28) + E·4", layers=n)
        )
        if prof.shared_ff:
            sf = prof.shared_ff
            layer.append(
                MemoryTerm(
                    "shared expert",
                    n_ff * T * sf * dt + T * h * dt + T * dt,
                    f"{n_ff}·T·d_shared·dt + T·h·dt + T·dt",
                    layers=n,
                )
            )

    outside: list[MemoryTerm] = [MemoryTerm("token ids (int64)", T * 8, "T·8")]
    if prof.learned_positions and prof.position_ids_per_sequence:
        outside.append(MemoryTerm("position ids (int64)", T * 8, "T·8"))
    elif prof.learned_positions:
        outside.append(MemoryTerm("position ids (int64)", s * 8, "s·8"))
    if prof.rotary_dim:
        cos_sin = 2 * s * prof.rotary_dim * dt
        if prof.rotary_per_layer:
            layer.append(MemoryTerm("rotary cos & sin (interleaved copy)", cos_sin, "2·s·rotary_dim·dt"))
        else:
            outside.append(MemoryTerm("rotary cos & sin", cos_sin, "2·s·rotary_dim·dt"))
    if prof.p_embd > 0:
        outside.append(MemoryTerm("embedding dropout mask", T * h * mask, f"T·h·{mask}"))
    outside.append(MemoryTerm(f"final {prof.norm}", norm_bytes, norm_f))
    outside.append(MemoryTerm("lm-head input", T * h * dt, "T·h·dt"))
    if prof.final_softcap:  # logits / cap → tanh (keeps its output) → · cap, before the loss upcasts them
        outside.append(MemoryTerm("final softcap tanh output", T * hp.vocab * dt, "T·V·dt"))
    outside.append(MemoryTerm("loss: log-softmax, targets", T * hp.vocab * 4 + T * 8 + 4, "T·V·4 + T·8 + 4"))
    return layer, ssq, outside


def _assumptions(
    hp: HParams, prof: Profile, opts: MemoryOptions, params: int, kv: KVCache, kt_formula: str
) -> list[str]:
    """Every choice behind the figures, in the order of the tables."""
    from .families import BY_NAME, FAMILIES

    dt = opts.act_dtype
    known = BY_NAME.get(hp.arch)
    defaults = (known.defaults if known is not None else None) or {}
    out = [
        f"{key} not in config.json: transformers' default {defaults.get(key)!r} used"
        for key in getattr(hp, "defaults_used", ())
    ]
    if hp.max_positions and opts.seq > hp.max_positions and prof.learned_positions:
        out.append(f"seq {opts.seq} exceeds the {hp.max_positions} learned positions of this model")
    elif hp.max_positions and opts.seq > hp.max_positions:
        out.append(f"seq {opts.seq} exceeds max_position_embeddings {hp.max_positions} of this config")
    out.append(f"weights: {params:,} parameters × {BITS[opts.dtype]} bits ({opts.dtype})")
    if opts.group_size:
        out.append(
            f"group quantization (int8/int4 rows): per {opts.group_size} weights one fp16 scale and one zero "
            "point of the weight's width (GPTQ/AWQ layout); every parameter quantized"
        )
    if kv.per_token_formula.startswith("2·L·kv_heads"):
        out.append(
            f"KV cache: 2·layers·kv_heads·head_dim·tokens·batch at {opts.kv}, kv_heads={hp.n_kv_heads}, "
            f"head_dim={hp.d_head}"
        )
    else:
        out.append(f"KV cache: {kv.per_token_formula}·tokens·batch at {opts.kv} (this family's cache layout)")
    out.extend(f"KV cache: {n}" for n in kv.notes)
    compute = "weights quantized, compute in fp16" if opts.dtype not in FLOAT_COMPUTE else "the compute dtype"
    out.append(f"activations in {dt} ({compute})")
    if opts.training:
        if opts.device == Device.gpu:
            mask = "1-byte bool masks (fused native_dropout, as on GPU)"
        else:
            mask = f"{_b(dt)}-byte noise tensors (PyTorch's CPU dropout)"
        out.append(
            f"dropout p: embeddings {prof.p_embd:g}, attention {prof.p_attn:g}, residual {prof.p_resid:g}; {mask}"
        )
        math_fallback = opts.attention == Attention.sdpa and opts.device == Device.cpu and prof.p_attn > 0
        if opts.attention == Attention.eager or math_fallback:
            what = "s×s probabilities kept for backward" + (" (softmax in fp32)" if prof.softmax_fp32 else "")
        else:
            what = "the fused kernel keeps q, k, v, output and fp32 log-sum-exp, no s×s tensor"
        out.append(f"attention {opts.attention}: {what}")
        if math_fallback:
            out.append("sdpa on CPU with attention dropout runs PyTorch's math kernel, which saves what eager saves")
        out.append(
            f"{prof.norm}; {prof.mlp} mlp with {prof.act} (saves {act_saved(prof.act)} d_ff tensor(s) itself); "
            "loss: fp32 log-softmax over the vocabulary"
        )
        if prof.measured:
            out.append(f"activation model checked against autograd's saved tensors for HF {hp.arch}")
        else:
            measured = ", ".join(f.name for f in FAMILIES if f.memory.measured)
            out.append(f"activation model checked against autograd for {measured}; {hp.arch} by analogy")
        out.append("not counted: the logits output, gradients in flight, allocator fragmentation, CUDA context")
        wb = _b(opts.dtype)
        if opts.mixed_precision:
            out.append(
                f"mixed precision: model and gradients in {opts.dtype} ({wb}+{wb} B/param), fp32 master copy and "
                "fp32 optimizer states (Megatron/DeepSpeed layout; torch.autocast would also keep 16-bit weight "
                "copies for backward)"
            )
        else:
            out.append(f"pure {opts.dtype}: weights, gradients and optimizer states all in {opts.dtype}")
        if opts.optimizer == Optimizer.sgd:
            out.append("sgd without momentum holds no state (momentum adds one buffer per parameter)")
        out.append(f"Korthikanti et al. 2022: {kt_formula}, assumes fp16 activations, 1-byte masks, no loss")
    else:
        out.append(
            "inference working set: tensors live at the peak of a no-grad prefill with HF's implementation "
            "(checked against the CPU allocator's peak for gpt2 and llama); the logits cover every position"
        )
    attn = "2·L·s·heads·(qk + v dims) latent" if kv.expanded_per_token else "4·L·s·(a·hd)"
    out.append(f"FLOPs: 2 per matmul parameter per token + {attn} attention at s = {opts.seq} (no causal halving)")
    return out


def _times_layers(t: MemoryTerm, layers: int) -> MemoryTerm:
    n = layers if t.layers is None else t.layers
    return MemoryTerm(t.name, t.bytes * n, f"{'L' if t.layers is None else n}·{_paren(t.formula)}")


def _paren(formula: str) -> str:
    return f"({formula})" if " " in formula else formula


def korthikanti(hp: HParams, opts: MemoryOptions) -> tuple[int, str]:
    """Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer Models"), eq. 1–2:
    s·b·h·L·(34 + 5·a·s/h) bytes without recomputation, 34·s·b·h·L selective, 2·s·b·h·L full."""
    s, b, h, L, a = opts.seq, opts.batch, hp.d_model, _layers(hp), _heads(hp)
    if opts.recompute == Recompute.full:
        return 2 * s * b * h * L, "2·s·b·h·L"
    if opts.recompute == Recompute.selective:
        return 34 * s * b * h * L, "34·s·b·h·L"
    # s·b·h·L·(34 + 5·a·s/h) = s·b·L·(34·h + 5·a·s), exact in integers.
    return s * b * L * (34 * h + 5 * a * s), "s·b·h·L·(34 + 5·a·s/h)"


def _layers(hp: HParams) -> int:
    """Transformer layers that run per token: decoder plus encoder for encoder-decoder models."""
    if hp.is_encoder_decoder and hp.encoder_layers is not None:
        return hp.encoder_layers + (hp.decoder_layers or hp.layers)
    return hp.layers


def inference_working_set(hp: HParams, prof: Profile, opts: MemoryOptions, d_ff: int) -> list[MemoryTerm]:
    """Tensors live at the peak of a no-grad prefill of b×s tokens, besides weights and KV cache.

    What stays alive through the layers (the input embeddings the model's forward still holds, the residual
    stream, the current norm output, rotary cos/sin, eager attention's (b, 1, s, s) mask), plus the largest
    of: attention (q — the whole fused qkv output for gpt2-style projections — k/v repeated to all heads,
    and for eager the s×s scores and probabilities side by side), the MLP (a second residual-sized tensor
    after the attention add, 3·d_ff for gated MLPs, 4·d_ff for HF's Python `gelu_new`, 2·d_ff else, and with
    eager attention the probabilities the layer returned), and the logits of every position with the final
    norm output. Checked against the CPU allocator's peak (torch.profiler) for HF GPT-2 and Llama.
    """
    b, s, h = opts.batch, opts.seq, hp.d_model
    T = b * s
    a, hd, kvh = _heads(hp), hp.d_head, hp.n_kv_heads
    dt = _b(opts.act_dtype)
    eager = opts.attention == Attention.eager
    emb = T * h * dt + (s * h * dt if prof.learned_positions else 0)
    keep = [
        MemoryTerm("input embeddings", emb, "T·h·dt" + (" + s·h·dt" if prof.learned_positions else "")),
        MemoryTerm("residual stream + norm output", 2 * T * h * dt, "2·T·h·dt"),
    ]
    if prof.rotary_dim:
        keep.append(MemoryTerm("rotary cos & sin", 2 * s * prof.rotary_dim * dt, "2·s·rotary_dim·dt"))
    if eager:
        keep.append(MemoryTerm("attention mask (b×1×s×s)", b * s * s * dt, "b·s²·dt"))

    from .families import family

    fused = family(hp.arch).memory.fused_qkv
    q = 3 * T * a * hd * dt if fused else T * a * hd * dt
    q_f = "3·T·a·hd·dt" if fused else "T·a·hd·dt"
    attn, attn_f = q, q_f
    if eager:
        if kvh != a:
            attn += 2 * T * a * hd * dt
            attn_f += " + 2·T·a·hd·dt"
        sm = 4 if prof.softmax_fp32 else dt
        attn += b * a * s * s * (dt + sm)
        attn_f += f" + b·a·s²·(dt + {sm})"
    else:
        attn += T * a * hd * dt
        attn_f += " + T·a·hd·dt"
    k = prof.experts_per_token if prof.num_experts else 1
    n_ff = 3 if prof.mlp == "gated" else (4 if act_saved(prof.act) >= 3 else 2)
    if prof.fused_gate_up:  # the 2·d_ff gate_up output stays live under the activation and the product
        n_ff = 4
    mlp = T * h * dt + k * n_ff * T * (prof.moe_ff or d_ff) * dt
    mlp_f = f"T·h·dt + {'k·' if k > 1 else ''}{n_ff}·T·d_ff·dt"
    if eager:  # the layer still holds the attention probabilities it returned
        mlp += b * a * s * s * dt
        mlp_f += " + b·a·s²·dt"
    peak, name, formula = max(
        [(attn, "attention tensors (peak phase)", attn_f), (mlp, "mlp tensors (peak phase)", mlp_f)], key=lambda p: p[0]
    )
    in_layers = [*keep, MemoryTerm(name, peak, formula)]
    # After the last layer its tensors are gone; the LM head then writes the logits of every position.
    at_head = [
        MemoryTerm("final norm output", T * h * dt, "T·h·dt"),
        MemoryTerm("logits, every position", T * hp.vocab * dt, "T·V·dt"),
    ]
    return max(in_layers, at_head, key=lambda terms: sum(t.bytes for t in terms))


# ---------------------------------------------------------------------------------------------------------------
# Training state and FLOPs


def training_state(params: int, opts: MemoryOptions) -> list[MemoryTerm]:
    """Weights, gradients, optimizer states and the fp32 master copy, each with its bytes per parameter."""
    wb = _b(opts.dtype)
    terms = [
        MemoryTerm(f"weights ({opts.dtype})", params * wb, f"N·{wb}", wb),
        MemoryTerm(f"gradients ({opts.dtype})", params * wb, f"N·{wb}", wb),
    ]
    state_b = 4 if opts.mixed_precision else wb
    state_name = "fp32" if opts.mixed_precision else str(opts.dtype)
    if opts.mixed_precision:
        terms.append(MemoryTerm("fp32 master weights", params * 4, "N·4", 4))
    if opts.optimizer in (Optimizer.adam, Optimizer.adamw):
        terms.append(
            MemoryTerm(
                f"{opts.optimizer} states (exp_avg, exp_avg_sq; {state_name})",
                2 * params * state_b,
                f"2·N·{state_b}",
                2 * state_b,
            )
        )
    else:
        terms.append(MemoryTerm("sgd state (none without momentum)", 0, "0", 0))
    return terms


def matmul_params(hp: HParams, params: int, prof: Profile) -> tuple[int, str]:
    """Parameters used in a matmul per token: all (for MoE: those a token visits), minus the input-embedding
    lookup tables (the LM head is a matmul even when tied to the embedding)."""
    n = params
    parts = ["N_active" if prof.num_experts else "N"]
    if not hp.tied:
        n -= hp.vocab * hp.d_model
        parts.append("V·h (input embedding, a lookup)")
    if prof.learned_positions:
        n -= prof.learned_positions * hp.d_model
        parts.append("positions·h (learned position table)")
    return max(n, 0), " − ".join(parts)


def flops(hp: HParams, params: int, prof: Profile, opts: MemoryOptions) -> tuple[int, int, list[MemoryTerm]]:
    """Forward FLOPs per token `2·N_matmul + 4·L·s·(a·hd)` (full s×s scores, no causal halving; sliding layers
    attend to at most `window` keys) and training ≈ 3× forward (+1 forward with full recompute, +the attention
    term with selective recompute)."""
    n_mm, n_formula = matmul_params(hp, params, prof)
    kinds = hp.attention_layer_types
    layout = _layout(hp)
    attn = 0
    qd = 0
    if any(k != _SSM_KIND for k in kinds):
        # q·kᵀ and probabilities·v: 2·ctx·(a·hd) each; latent attention multiplies the rebuilt per-head keys
        # (nope + rope wide) and values (v_head_dim wide): 2·ctx·heads·(nope + rope + v) together.
        expanded = layout.expanded_per_token if layout is not None else None
        qd = _heads(hp) * hp.d_head
        for kind in kinds:
            if kind == _SSM_KIND:
                continue
            ctx = min(opts.seq, hp.sliding_window) if kind == "sliding_attention" and hp.sliding_window else opts.seq
            attn += 2 * ctx * expanded if expanded else 4 * ctx * qd
    if hp.is_encoder_decoder and hp.encoder_layers:
        attn += (
            4 * opts.seq * _heads(hp) * hp.d_head * (hp.encoder_layers + hp.layers)
        )  # encoder self- and decoder cross-attention
    fwd = 2 * n_mm + attn
    train = 3 * fwd
    train_f = "3 × forward"
    if opts.recompute == Recompute.full:
        train, train_f = 4 * fwd, "4 × forward (full recompute reruns the forward)"
    elif opts.recompute == Recompute.selective:
        train, train_f = 3 * fwd + attn, "3 × forward + attention term (selective recompute)"
    terms = [
        MemoryTerm("matmul parameters N_matmul", n_mm, n_formula),
        MemoryTerm(
            "forward per token",
            fwd,
            "2·N_matmul + 2·L·s·heads·(qk + v dims)"
            if layout is not None and layout.expanded_per_token
            else "2·N_matmul + 4·L·s·(a·hd)",
        ),
        MemoryTerm("training per token", train, train_f),
    ]
    return fwd, train, terms


# ---------------------------------------------------------------------------------------------------------------
# The whole report


def estimate_memory(
    hp: HParams,
    params: int,
    opts: MemoryOptions,
    *,
    config: Mapping[str, Any] | None = None,
    source: str = "",
    stored: dict[str, Any] | None = None,
    active_params: int | None = None,
) -> MemoryReport:
    """Every memory term for `hp` with `params` parameters under `opts`; `stored` is the file's bytes as stored."""
    opts.validate()
    prof = profile_for(hp, config)
    kv = kv_cache(hp, opts)
    state = state_cache(hp, opts)
    if hp.heads is None and state is not None:
        return _ssm_only(hp, params, opts, prof, kv, state, source, stored, active_params)
    d_ff = _d_ff(hp, config)
    L = _layers(hp)
    dt = opts.act_dtype
    assumptions: list[str] = []

    layer, ssq, outside = training_activations(hp, prof, opts, d_ff)
    per_layer = sum(t.bytes for t in layer) + sum(t.bytes for t in ssq)  # the largest layer (MoE terms included)
    if opts.training:
        kind = "saved for backward"
        if opts.recompute == Recompute.none:
            act_terms = [_times_layers(t, L) for t in layer + ssq]
        elif opts.recompute == Recompute.selective:
            act_terms = [_times_layers(t, L) for t in layer]
            assumptions.append("selective recompute: the s×s attention tensors are recomputed in backward")
        else:
            b, s, h = opts.batch, opts.seq, hp.d_model
            act_terms = [
                MemoryTerm("layer inputs (checkpoints)", L * b * s * h * _b(dt), "L·T·h·dt"),
                MemoryTerm("one layer recomputed", per_layer, "one layer's terms"),
            ]
            assumptions.append("full recompute: only each layer's input is kept; backward rebuilds one layer at a time")
        act_terms += outside
        act_bytes = sum(t.bytes for t in act_terms)
    else:
        kind = "inference working set"
        act_terms = inference_working_set(hp, prof, opts, d_ff)
        act_bytes = sum(t.bytes for t in act_terms)
    kt_bytes, kt_formula = korthikanti(hp, opts)

    weights_by = {p.value: weight_bytes(params, p, opts.group_size) for p in Precision}
    w_bytes = weights_by[opts.dtype.value]
    train_terms: list[MemoryTerm] = []
    train_total: int | None = None
    if opts.training:
        train_terms = training_state(params, opts)
        train_terms.append(MemoryTerm(f"activations ({kind})", act_bytes, "see activations"))
        train_total = sum(t.bytes for t in train_terms)
    working_set = inference_working_set(hp, prof, opts, d_ff) if opts.training else act_terms
    inference_total = w_bytes + kv.bytes + (state.bytes if state else 0) + sum(t.bytes for t in working_set)
    fwd, train_flops, flop_terms = flops(hp, params if active_params is None else active_params, prof, opts)

    assumptions = _assumptions(hp, prof, opts, params, kv, kt_formula) + assumptions
    if state is not None:
        assumptions.append(f"state of {state.layers} Mamba layers: {state.formula}, independent of the sequence length")

    hparams_doc: dict[str, Any] = {
        "vocab": hp.vocab,
        "d_model": hp.d_model,
        "layers": hp.layers,
        "heads": hp.heads,
        "kv_heads": hp.n_kv_heads if hp.heads else None,
        "head_dim": hp.d_head if hp.heads else None,
        "d_ff": d_ff,
        "sliding_window": hp.sliding_window,
    }
    return MemoryReport(
        source=source,
        arch=hp.arch,
        params=params,
        options=opts,
        weights_bytes=w_bytes,
        weights_by_precision=weights_by,
        stored=stored,
        kv=kv,
        activation_terms=tuple(act_terms),
        activation_bytes=act_bytes,
        activation_kind=kind,
        korthikanti_bytes=kt_bytes,
        korthikanti_formula=kt_formula,
        training_terms=tuple(train_terms),
        training_bytes=train_total,
        inference_bytes=inference_total,
        flops_forward=fwd,
        flops_training=train_flops,
        flops_terms=tuple(flop_terms),
        assumptions=tuple(assumptions),
        hparams=hparams_doc,
        state=state,
    )


def _ssm_only(
    hp: HParams,
    params: int,
    opts: MemoryOptions,
    prof: Profile,
    kv: KVCache,
    state: StateCache,
    source: str,
    stored: dict[str, Any] | None,
    active_params: int | None,
) -> MemoryReport:
    """A model of state-space layers only (Mamba, Mamba-2): weights, state, training state and FLOPs; what their
    layers save for backward is not modelled yet (said, and no figure is made up)."""
    weights_by = {p.value: weight_bytes(params, p, opts.group_size) for p in Precision}
    w_bytes = weights_by[opts.dtype.value]
    train_terms: list[MemoryTerm] = []
    train_total: int | None = None
    if opts.training:
        train_terms = training_state(params, opts)
        train_total = sum(t.bytes for t in train_terms)
    fwd, train_flops, flop_terms = flops(hp, params if active_params is None else active_params, prof, opts)
    assumptions = [
        f"weights: {params:,} parameters × {BITS[opts.dtype]} bits ({opts.dtype})",
        "no attention layers: no KV cache",
        f"state of {state.layers} Mamba layers: {state.formula}, independent of the sequence length",
        "activations of Mamba layers are not modelled yet: the activation figures are 0 and the totals leave them out",
        "FLOPs: 2 per matmul parameter per token (the selective scan is not counted)",
    ]
    return MemoryReport(
        source=source,
        arch=hp.arch,
        params=params,
        options=opts,
        weights_bytes=w_bytes,
        weights_by_precision=weights_by,
        stored=stored,
        kv=kv,
        activation_terms=(),
        activation_bytes=0,
        activation_kind="not modelled for state-space layers",
        korthikanti_bytes=0,
        korthikanti_formula="(transformer layers only)",
        training_terms=tuple(train_terms),
        training_bytes=train_total,
        inference_bytes=w_bytes + state.bytes,
        flops_forward=fwd,
        flops_training=train_flops,
        flops_terms=tuple(flop_terms),
        assumptions=tuple(assumptions),
        hparams={
            "vocab": hp.vocab,
            "d_model": hp.d_model,
            "layers": hp.layers,
            "heads": None,
            "kv_heads": None,
            "head_dim": None,
            "d_ff": None,
            "sliding_window": None,
        },
        state=state,
    )


# ---------------------------------------------------------------------------------------------------------------
# Where the hyperparameters come from: a model file/folder, a config.json, or flags


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """The model `mi memory` is about: hyperparameters, parameter counts, raw config, bytes as stored."""

    hp: HParams
    params: int
    active_params: int
    config: Mapping[str, Any] | None
    source: str
    stored: dict[str, Any] | None = None


def spec_from_inventory(inv: TensorInventory, path: str, *, arch: str | None = None) -> ModelSpec:
    """A read model: parameters and bytes as stored from its headers, hyperparameters from the config.json
    beside it (an HF folder)."""
    stored = {
        "bytes": inv.total_bytes,
        "params": inv.total_params,
        "dtypes": ", ".join(inv.by_dtype) or "none",
        "by_dtype": {k: {"params": v.params, "bytes": v.nbytes} for k, v in inv.by_dtype.items()},
    }
    if inv.read is not None:  # a URL: what crossed the network to learn the above
        stored["bytes_read"] = inv.read.bytes_read
    if inv.config is None:
        raise UsageError(
            "no config.json beside the model: the KV-cache, activation and FLOP terms need the hyperparameters; "
            "pass --config config.json (or use `mi inspect` for the bytes alone)",
            path=path,
            rule="config-missing",
        )
    hp = HParams.from_config(inv.config, path=path, arch=arch)
    active = inv.total_params
    try:
        from .params import count_params

        rep = count_params(hp)
        if rep.total_params:
            # MoE: the file's total, scaled to the share a token visits according to the preset.
            active = inv.total_params * rep.active_params // rep.total_params
    except UsageError:
        pass
    return ModelSpec(hp, inv.total_params, active, inv.config, path, stored)


def spec_from_config(config: Mapping[str, Any], path: str, *, arch: str | None = None) -> ModelSpec:
    """An HF config (read from `path`): parameters from the preset's exact count."""
    from .params import count_params

    hp = HParams.from_config(config, path=path, arch=arch)
    rep = count_params(hp)
    return ModelSpec(hp, rep.total_params, rep.active_params, config, path)


def spec_from_hparams(hp: HParams, *, source: str = "flags") -> ModelSpec:
    """Hyperparameters given as flags: parameters from the preset's exact count."""
    from .params import count_params

    rep = count_params(hp)
    return ModelSpec(hp, rep.total_params, rep.active_params, None, source)


def estimate_for(spec: ModelSpec, opts: MemoryOptions) -> MemoryReport:
    """`estimate_memory` for a resolved `ModelSpec`."""
    return estimate_memory(
        spec.hp,
        spec.params,
        opts,
        config=spec.config,
        source=spec.source,
        stored=spec.stored,
        active_params=spec.active_params,
    )
