"""Will a model run on given accelerators, how, and how fast: per-device memory under TP/PP/EP, the longest
context and largest batch that fit, partial offload, the GPU counts that would do, and roofline speed bounds.

Pure arithmetic over a `ModelSpec` (from `analysis.memory`) and an `Accelerator` (from
`analysis.accelerators`); every term `analysis.memory` already knows (weights, KV cache, the inference
working set, training state, FLOPs) is taken from there, and only the placement across devices is added here.
Every choice that is not a fact of the model is written into `assumptions`.

Placement (per device, the way vLLM shards a decoder):
* TP splits the attention and MLP matrices of every layer and the vocabulary of the embedding and of the
  LM head (`VocabParallelEmbedding`, `ParallelLMHead`); norms and routers are replicated.
* PP splits the layers as vLLM's `get_pp_indices` does (`L // pp` each, the remainder one extra to the
  stages before the last); the embedding sits on the first stage, the final norm and head on the last.
  The worst stage is the one reported.
* EP splits the routed experts: each device holds `ceil(E / ep)` experts per layer (a TP group larger
  than EP splits each expert further); with `ep > tp` the attention runs data-parallel on `ep / tp` groups.
* KV cache per token per device: each TP rank holds `max(1, ceil(kv_heads / tp))` KV heads (vLLM
  replicates KV heads when there are fewer than TP ranks); an MLA latent (`kv_lora_rank + qk_rope_head_dim`)
  is not split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..errors import UsageError
from .accelerators import CATALOGUE, Accelerator
from .memory import (
    BITS,
    FLOAT_COMPUTE,
    GIB,
    MemoryOptions,
    ModelSpec,
    Precision,
    estimate_memory,
    training_state,
    weight_bytes,
)

FileTensors = tuple[tuple[str, int], ...]  # (name, bytes as stored) of every unique model tensor

BLOCK_TOKENS = 16  # vLLM's default KV block size
DEFAULT_RESERVE = GIB
DEFAULT_CHUNK = 8192  # vLLM's default max_num_batched_tokens with chunked prefill (V1 engine, online serving)
MAX_TP = 8  # one node
MAX_PP = 16


@dataclass(frozen=True, slots=True)
class FitOptions:
    """Layout and engine settings; `opts` carries batch, seq and the precisions as for `mi memory`."""

    opts: MemoryOptions
    tp: int = 1
    pp: int = 1
    ep: int = 1
    utilization: float = 0.9
    reserve_bytes: int = DEFAULT_RESERVE
    prefill_chunk: int = DEFAULT_CHUNK
    zero: int = 0  # ZeRO stage 0-3 over the data-parallel group (training); FSDP full-shard = 3
    dp: int = 1  # data-parallel group size (training; inference: attention data-parallel when ep > tp)
    ram_bytes: int | None = None  # host RAM for partial offload
    use_stored_bytes: bool = True  # weights at the file's bytes per parameter (GGUF, quantized files)

    def validate(self) -> None:
        self.opts.validate()
        for name, v in (("--tp", self.tp), ("--pp", self.pp), ("--ep", self.ep), ("--dp", self.dp)):
            if v <= 0:
                raise UsageError(f"{name} must be positive, got {v}", rule="layout-positive")
        if not 0 < self.utilization <= 1:
            raise UsageError(f"--utilization must be in (0, 1], got {self.utilization}", rule="utilization")
        if self.prefill_chunk <= 0:
            raise UsageError(f"--prefill-chunk must be positive, got {self.prefill_chunk}", rule="prefill-chunk")
        if self.zero not in (0, 1, 2, 3):
            raise UsageError(f"--zero must be 0, 1, 2 or 3, got {self.zero}", rule="zero")
        if self.reserve_bytes < 0:
            raise UsageError(f"--reserve must be ≥ 0, got {self.reserve_bytes}", rule="reserve")
        if self.ep > 1 and self.ep % self.tp and self.tp % self.ep:
            raise UsageError(f"--ep {self.ep} and --tp {self.tp}: one must divide the other", rule="layout-ep")

    @property
    def attention_dp(self) -> int:
        """Data-parallel attention groups at inference (vLLM: EP = TP × DP)."""
        return self.ep // self.tp if self.ep > self.tp else 1

    @property
    def devices(self) -> int:
        dp = self.dp if self.opts.training else self.attention_dp
        return self.tp * self.pp * dp


@dataclass(frozen=True, slots=True)
class Shard:
    """One weight term on one device: its bytes there and the placement rule applied."""

    name: str
    bytes: int
    rule: str


@dataclass(frozen=True, slots=True)
class DeviceMemory:
    """What one device holds (the worst pipeline stage)."""

    stage: int
    layers: int
    weights_bytes: int
    kv_cache_bytes: int
    activation_bytes: int
    reserve_bytes: int
    training_bytes: int  # gradients, optimizer states, master weights (0 at inference)
    total_bytes: int
    usable_bytes: int
    shards: tuple[Shard, ...]
    training_terms: tuple[Shard, ...] = ()


@dataclass(frozen=True, slots=True)
class Speed:
    """Roofline bounds (not measurements)."""

    decode_tokens_per_s: float | None  # per sequence
    decode_aggregate_tokens_per_s: float | None
    decode_bandwidth_s: float | None  # one decode step, memory-bound time
    decode_compute_s: float | None
    bytes_per_step: int  # per device: weights read + KV read
    prefill_seconds: float | None
    prefill_flops: int
    bound: str  # "memory bandwidth" | "compute" | "unknown"


@dataclass(frozen=True, slots=True)
class Offload:
    """llama.cpp-style partial offload: layers on the GPU(s), the rest in host RAM."""

    gpu_layers: int
    layers: int
    output_on_gpu: bool
    gpu_bytes: int
    host_bytes: int
    ram_bytes: int | None
    host_fits: bool | None


@dataclass(frozen=True, slots=True)
class FitReport:
    """Everything `mi fit` prints for one accelerator and layout."""

    source: str
    arch: str
    params: int
    accelerator: Accelerator
    options: FitOptions
    fits: bool
    device: DeviceMemory
    kv_bytes_per_token_per_device: int
    kv_heads_per_device: int | None  # None: MLA latent or no cache
    kv_capacity_tokens: int | None
    kv_capacity_blocks: int | None
    max_seq: int | None
    max_batch: int | None
    speed: Speed
    offload: Offload | None
    assumptions: tuple[str, ...]
    weights_as: str = ""  # the weights' precision, or "as stored" for a read file's own tensor bytes
    max_positions: int | None = None  # the model's own context limit (max_position_embeddings), for comparison


@dataclass(frozen=True, slots=True)
class NeedRow:
    """One line of "what do I need": the smallest layout of one accelerator that holds the model."""

    accelerator: Accelerator
    devices: int | None
    tp: int | None
    pp: int | None
    total_memory_bytes: int | None
    kv_capacity_tokens: int | None
    decode_tokens_per_s: float | None


@dataclass(frozen=True, slots=True)
class NeedReport:
    source: str
    arch: str
    params: int
    options: FitOptions
    rows: tuple[NeedRow, ...]
    assumptions: tuple[str, ...]


# ---------------------------------------------------------------------------------------------------------------
# Layers and weights per device


def stage_layers(layers: int, pp: int) -> tuple[int, ...]:
    """Layers per pipeline stage, as vLLM's `get_pp_indices`: `L // pp` each, the remainder one extra to the
    stages just before the last."""
    if pp > layers:
        raise UsageError(f"--pp {pp} is more than the model's {layers} layers", rule="layout-pp")
    parts = [layers // pp] * pp
    for i in range(2, layers % pp + 2):
        parts[-i] += 1
    return tuple(parts)


def _weight_fraction(spec: ModelSpec, fo: FitOptions) -> tuple[int, int, str]:
    """Bytes per parameter as a fraction (numerator, denominator) and where it comes from."""
    o = fo.opts
    stored = spec.stored or {}
    if fo.use_stored_bytes and stored.get("params") and stored.get("bytes"):
        return int(stored["bytes"]), int(stored["params"]), f"as stored in the file ({stored.get('dtypes', '?')})"
    total = weight_bytes(spec.params, o.dtype, o.group_size)
    return (
        total,
        spec.params,
        f"{o.dtype} ({BITS[o.dtype]} bits)" + (f", groups of {o.group_size}" if o.group_size else ""),
    )


@dataclass(frozen=True, slots=True)
class _Split:
    """The weight terms of the model sorted by placement (params per device, before bytes)."""

    first: tuple[tuple[str, int, str], ...]  # on the first stage
    last: tuple[tuple[str, int, str], ...]  # on the last stage
    layer: tuple[tuple[str, int, str], ...]  # per layer, per device
    layer_full: int  # params of one whole layer (all devices)
    active_ratio: tuple[int, int]  # expert params touched per token: (k, E), (1, 1) without experts
    expert_layer: int  # per-device expert params in one layer
    notes: tuple[str, ...]


def _split(spec: ModelSpec, fo: FitOptions) -> _Split:
    from .params import count_params

    hp = spec.hp
    tp, ep = fo.tp, fo.ep
    try:
        terms = count_params(hp).terms
    except UsageError:
        terms = ()
    notes: list[str] = []
    first: list[tuple[str, int, str]] = []
    last: list[tuple[str, int, str]] = []
    layer: list[tuple[str, int, str]] = []
    layer_full = 0
    expert_layer = 0
    E = hp.num_experts or 0
    k = hp.experts_per_token or 1
    has_head = False
    for t in terms:
        name = t.name.lower()
        per_layer = t.count > 1 or t.count == hp.layers
        if per_layer and "final" not in name and "embed" not in name and "head" not in name:
            # A term on some layers only (dense first layers, MoE every other layer) counts as its mean per layer.
            each_layer = -(-t.params // hp.layers)
            layer_full += each_layer
            some = "" if t.count == hp.layers else f"; on {t.count} of {hp.layers} layers, spread evenly"
            if "norm" in name or "router" in name:
                layer.append((t.name, each_layer, "replicated" + some))
            elif name == "experts" and E:
                per_dev = -(-E // ep) if ep > 1 else E
                each = each_layer * per_dev // E
                split = tp // ep if tp > ep else 1
                rule = f"{per_dev} of {E} experts (EP {ep})" if ep > 1 else f"all {E} experts, split by TP"
                if ep == 1:
                    split = tp
                if split > 1 and ep > 1:
                    rule += f", each split by {split}"
                layer.append((t.name, -(-each // split), rule + some))
                expert_layer += -(-each // split)
            else:
                layer.append((t.name, -(-each_layer // tp), (f"split by TP {tp}" if tp > 1 else "whole") + some))
        elif "head" in name or "output" in name:
            has_head = True
            last.append((t.name, -(-t.params // tp), f"vocab split by TP {tp}" if tp > 1 else "whole"))
        elif "final" in name or "norm" in name:
            last.append((t.name, t.params, "replicated"))
        elif "position" in name:
            first.append((t.name, t.params, "replicated"))
        elif "embed" in name:
            first.append((t.name, -(-t.params // tp), f"vocab split by TP {tp}" if tp > 1 else "whole"))
        else:
            first.append((t.name, t.params, "replicated"))
    counted = sum(t.params for t in terms)
    if not terms or counted != spec.params:
        # The preset's count differs from the file's (or no preset): scale the layers to the file's total.
        rest = spec.params - sum(p for _, p, _ in first) * tp - sum(p for _, p, _ in last)
        if not terms:
            notes.append("no parameter preset for this architecture: the weights are spread over the layers")
            layer = [("layers", -(-max(rest, 0) // (hp.layers * tp)), f"split by TP {tp}")]
            layer_full = max(rest, 0) // hp.layers
    if hp.tied and fo.pp > 1 and not has_head:
        emb = next((p for n, p, _ in first if "embed" in n.lower()), 0)
        last.append(("lm_head (tied: a copy on the last stage)", emb, "vocab split by TP" if tp > 1 else "whole"))
    return _Split(
        tuple(first), tuple(last), tuple(layer), layer_full, (k, E) if E else (1, 1), expert_layer, tuple(notes)
    )


_LAYER = re.compile(r"(?:^|\.)(?:blk|layers|layer|h|block|blocks)\.(\d+)\.")


def _file_rule(name: str, tp: int, ep: int, experts: int) -> tuple[str, int, str]:
    """A file tensor's term group, the divisor of its bytes on one device, and the rule (names as HF and
    llama.cpp spell them: `layers.N.self_attn.q_proj`, `blk.N.attn_q`, `blk.N.ffn_gate_exps`)."""
    n = name.lower()
    if "norm" in n or re.search(r"(^|\.)ln_|layernorm", n):
        return "norms", 1, "replicated"
    if "gate_inp" in n or "router" in n or re.search(r"\.gate\.weight$", n):
        return "router", 1, "replicated"
    if "exps" in n or "experts" in n:
        per = -(-experts // ep) if experts and ep > 1 else 0
        if per:
            return (
                "experts",
                max(1, experts // per) * (tp // ep if tp > ep else 1),
                f"{per} of {experts} experts (EP {ep})",
            )
        return "experts", tp, f"split by TP {tp}" if tp > 1 else "whole"
    group = "attention" if "attn" in n or "attention" in n else "mlp"
    return group, tp, f"split by TP {tp}" if tp > 1 else "whole"


def _file_shards(
    tensors: FileTensors, fo: FitOptions, layers: range, first: bool, last: bool, experts: int
) -> list[Shard]:
    """One stage's weights from the file's own tensor sizes (every quant type as stored)."""
    groups: dict[tuple[str, str], int] = {}
    for name, nbytes in tensors:
        m = _LAYER.search(name)
        n = name.lower()
        if m is not None:
            if int(m.group(1)) not in layers:
                continue
            group, div, rule = _file_rule(name, fo.tp, fo.ep, experts)
            key = (group, f"{len(layers)} layers, {rule}")
        elif "embd" in n or "embed" in n or "wte" in n or "wpe" in n:
            if not first:
                continue
            vocab_split = "pos" not in n and "wpe" not in n
            div = fo.tp if vocab_split else 1
            key = ("embedding", (f"vocab split by TP {fo.tp}" if div > 1 else "whole") + ", first stage")
        elif "norm" in n or "ln_f" in n:
            if not last:
                continue
            div, key = 1, ("final norm", "replicated, last stage")
        else:  # output / lm_head and anything outside the layers
            if not last:
                continue
            div = fo.tp
            key = ("lm_head", (f"vocab split by TP {fo.tp}" if div > 1 else "whole") + ", last stage")
        groups[key] = groups.get(key, 0) + -(-nbytes // div)
    if last and not first and not any(g == "lm_head" for g, _ in groups):
        # A tied head: the last stage holds its own copy of the token embedding (vLLM's ParallelLMHead).
        tok = sum(b for name, b in tensors if _is_token_embedding(name))
        if tok:
            key = ("lm_head", f"tied: a copy of the embedding{f', vocab split by TP {fo.tp}' if fo.tp > 1 else ''}")
            groups[key] = -(-tok // fo.tp)
    order = {"embedding": 0, "final norm": 2, "lm_head": 3}
    return sorted((Shard(g, b, rule) for (g, rule), b in groups.items()), key=lambda x: order.get(x.name, 1))


def _is_token_embedding(name: str) -> bool:
    n = name.lower()
    return _LAYER.search(name) is None and ("embd" in n or "embed" in n or "wte" in n) and "pos" not in n


def _bytes(params: int, frac: tuple[int, int]) -> int:
    num, den = frac
    return -(-params * num // den) if den else 0


# ---------------------------------------------------------------------------------------------------------------
# KV cache per token per device


def kv_per_token_per_device(spec: ModelSpec, fo: FitOptions, layers: int) -> tuple[int, int | None, str]:
    """KV bytes one token costs on one device holding `layers` layers: (bytes, KV heads there, formula)."""
    hp = spec.hp
    if hp.is_encoder_only:
        return 0, None, "encoder-only: no KV cache"
    kv_b = BITS[fo.opts.kv]
    lora = hp.get("kv_lora_rank")
    if lora:
        rope = int(hp.get("qk_rope_head_dim", 0) or 0)
        bits = layers * (int(lora) + rope) * kv_b
        return (bits + 7) // 8, None, f"layers·(kv_lora_rank + qk_rope_head_dim)·{kv_b // 8} B (MLA latent, not split)"
    heads = max(1, -(-hp.n_kv_heads // fo.tp))
    bits = layers * 2 * heads * hp.d_head * kv_b
    return (bits + 7) // 8, heads, f"2·layers·{heads} KV head(s)·head_dim·{kv_b / 8:g} B"


# ---------------------------------------------------------------------------------------------------------------
# The fit


def _activation(spec: ModelSpec, fo: FitOptions) -> tuple[int, str]:
    """Peak working set of one prefill chunk besides weights and KV: HF's in-layer tensors for a chunk of
    `prefill_chunk` tokens (`analysis.memory`'s inference working set) plus fp32 logits of one sampled token
    per sequence (engines compute the head only where they sample)."""
    o = fo.opts
    chunk = fo.prefill_chunk
    hp_no_head = replace(spec.hp, vocab=1)  # the in-layer peak only: the logits term is replaced below
    rep = estimate_memory(hp_no_head, spec.params, MemoryOptions(batch=1, seq=chunk, dtype=o.dtype), config=spec.config)
    logits = o.batch * spec.hp.vocab * 4
    return rep.activation_bytes + logits, f"in-layer peak of a {chunk}-token prefill chunk + batch·V·4 logits"


def _training(spec: ModelSpec, fo: FitOptions, params_dev: int) -> tuple[tuple[Shard, ...], int]:
    """Weights, gradients, optimizer states and master weights of one device's model-parallel shard, each
    divided by the data-parallel group as far as the ZeRO stage shards it."""
    terms = training_state(params_dev, fo.opts)
    dp = fo.dp
    out: list[Shard] = []
    for t in terms:
        n = t.name
        if n.startswith("weights"):
            div = dp if fo.zero >= 3 else 1
        elif n.startswith("gradients"):
            div = dp if fo.zero >= 2 else 1
        else:  # optimizer states and master weights
            div = dp if fo.zero >= 1 else 1
        out.append(Shard(n, -(-t.bytes // div), f"÷ DP {dp} (ZeRO {fo.zero})" if div > 1 else "whole"))
    return tuple(out), sum(s.bytes for s in out)


@dataclass(frozen=True, slots=True)
class _Pre:
    """What does not depend on the accelerator or the layout: computed once per search."""

    act: int
    act_f: str
    flops_forward: int


def _precompute(spec: ModelSpec, fo: FitOptions) -> _Pre:
    o = fo.opts
    if o.training:
        act = estimate_memory(spec.hp, spec.params, o, config=spec.config).activation_bytes
        act_f = "activations saved for backward (mi memory --training), the stage's share of layers"
    else:
        act, act_f = _activation(spec, fo)
    rep = estimate_memory(
        spec.hp, spec.params, replace(o, training=False), config=spec.config, active_params=spec.active_params
    )
    return _Pre(act, act_f, rep.flops_forward)


def fit(
    spec: ModelSpec, acc: Accelerator, fo: FitOptions, tensors: FileTensors | None = None, *, _pre: _Pre | None = None
) -> FitReport:
    """Per-device memory of `spec` on `acc` under `fo`, the answers, and the speed bounds. With `tensors` (a
    read file's), the weights per device are the file's own tensor bytes, layer by layer."""
    fo.validate()
    o = fo.opts
    hp = spec.hp
    sp = _split(spec, fo)
    frac = _weight_fraction(spec, fo)[:2]
    stages = stage_layers(hp.layers, fo.pp)
    usable = int(acc.usable_bytes * fo.utilization)
    pre = _pre or _precompute(spec, fo)
    act, act_f = pre.act, pre.act_f
    if o.training:
        act = act * max(stages) // hp.layers
    reserve = fo.reserve_bytes

    best: tuple[DeviceMemory, int, int | None, int] | None = None
    worst_free = None
    start = 0
    file_mode = bool(tensors) and fo.use_stored_bytes and not o.training
    for i, n in enumerate(stages):
        span = range(start, start + n)
        start += n
        if file_mode and tensors:
            shards = _file_shards(tensors, fo, span, i == 0, i == len(stages) - 1, hp.num_experts or 0)
        else:
            shards = [Shard(nm, _bytes(p * n, frac), f"{n} layers, {rule}") for nm, p, rule in sp.layer]
        if i == 0 and not file_mode:
            shards = [Shard(nm, _bytes(p, frac), rule + ", first stage") for nm, p, rule in sp.first] + shards
        if i == len(stages) - 1 and not file_mode:
            shards += [Shard(nm, _bytes(p, frac), rule + ", last stage") for nm, p, rule in sp.last]
        w = sum(s.bytes for s in shards)
        train_terms: tuple[Shard, ...] = ()
        train = 0
        if o.training:
            params_dev = sum(p * n for _, p, _ in sp.layer) + (sum(p for _, p, _ in sp.first) if i == 0 else 0)
            params_dev += sum(p for _, p, _ in sp.last) if i == len(stages) - 1 else 0
            train_terms, train = _training(spec, fo, params_dev)
            w = 0  # the weights are a training term (ZeRO-3 shards them)
        kv_tok, kv_heads, _ = kv_per_token_per_device(spec, fo, n)
        kv = 0 if o.training else kv_tok * o.batch * o.seq
        total = w + train + kv + act + reserve
        free = usable - w - train - act - reserve
        dev = DeviceMemory(
            i, n, w if not o.training else 0, kv, act, reserve, train, total, usable, tuple(shards), train_terms
        )
        # The worst stage: least room for the KV cache (per token when there is a cache).
        score = free if kv_tok == 0 else free // kv_tok
        if worst_free is None or score < worst_free:
            worst_free = score
            best = (dev, kv_tok, kv_heads, free)
    assert best is not None
    dev, kv_tok, kv_heads, free = best
    fits = dev.total_bytes <= usable
    cap: int | None = None
    blocks: int | None = None
    max_seq: int | None = None
    max_batch: int | None = None
    if kv_tok and not o.training:
        room = max(free, 0)
        cap = room // kv_tok
        blocks = room // (kv_tok * BLOCK_TOKENS)
        max_seq = room // (o.batch * kv_tok)
        max_batch = room // (o.seq * kv_tok)
    speed = _speed(acc, fo, sp, dev, kv_tok, pre.flops_forward)
    off = (
        _offload(spec, fo, sp, frac, usable, act, reserve, dev)
        if fo.ram_bytes is not None or (not fits and fo.tp * fo.pp == 1 and not o.training)
        else None
    )
    return FitReport(
        source=spec.source,
        arch=hp.arch,
        params=spec.params,
        accelerator=acc,
        options=fo,
        fits=fits,
        device=dev,
        kv_bytes_per_token_per_device=kv_tok,
        kv_heads_per_device=kv_heads,
        kv_capacity_tokens=cap,
        kv_capacity_blocks=blocks,
        max_seq=max_seq,
        max_batch=max_batch,
        speed=speed,
        offload=off,
        assumptions=tuple(_assumptions(spec, acc, fo, sp, frac, act_f, kv_tok, file_mode)),
        max_positions=hp.max_positions,
        weights_as="as stored" if file_mode or frac[1] != spec.params or spec.stored else o.dtype.value,
    )


def _speed(acc: Accelerator, fo: FitOptions, sp: _Split, dev: DeviceMemory, kv_tok: int, flops_forward: int) -> Speed:
    """Decode: per step each device reads its weights (for MoE only the experts the batch touches) and the KV
    of every cached token; prefill: FLOPs over the TP group's peak. Pipeline stages run one after another."""
    o = fo.opts
    k, E = sp.active_ratio
    # Expected share of a layer's experts that `batch` tokens touch (k of E each, uniform routing).
    touched = 1 - (1 - k / E) ** o.batch if E > 1 else 1.0
    expert_b = sum(x.bytes for x in dev.shards if x.name == "experts")
    weights = dev.weights_bytes if not o.training else 0
    read = int(weights - expert_b + expert_b * touched) + kv_tok * o.batch * o.seq
    compute_dtype = (
        o.act_dtype if o.dtype in FLOAT_COMPUTE else (Precision.fp8 if o.dtype == Precision.fp8 else Precision.fp16)
    )
    if o.dtype == Precision.int8 and acc.int8:
        compute_dtype = Precision.int8
    peak = acc.peak(compute_dtype.value)
    group = fo.tp * fo.attention_dp
    bw_s = read / acc.bandwidth * fo.pp if acc.bandwidth else None
    step_flops = flops_forward * o.batch
    cp_s = step_flops / (group * peak) if peak else None
    times = [t for t in (bw_s, cp_s) if t is not None]
    step = max(times) if times else None
    bound = "unknown" if step is None else ("memory bandwidth" if step == bw_s else "compute")
    prefill_flops = flops_forward * o.batch * o.seq
    return Speed(
        decode_tokens_per_s=1 / step if step else None,
        decode_aggregate_tokens_per_s=o.batch / step if step else None,
        decode_bandwidth_s=bw_s,
        decode_compute_s=cp_s,
        bytes_per_step=read,
        prefill_seconds=prefill_flops / (group * peak) if peak else None,
        prefill_flops=prefill_flops,
        bound=bound,
    )


def _offload(
    spec: ModelSpec,
    fo: FitOptions,
    sp: _Split,
    frac: tuple[int, int],
    usable: int,
    act: int,
    reserve: int,
    dev: DeviceMemory,
) -> Offload:
    """llama.cpp's `-ngl N`: the last N layers (and their KV) on the GPU(s), the embedding lookup on the host;
    the output layer moves to the GPU only once every layer is there (its `n_gpu_layers = L + 1`)."""
    o = fo.opts
    L = spec.hp.layers
    devices = fo.tp * fo.pp
    room = devices * (usable - act - reserve)
    layer_w = _bytes(sum(p for _, p, _ in sp.layer) * fo.tp, frac)  # one whole layer (TP=1 sizes)
    kv_layer = kv_per_token_per_device(spec, replace(fo, tp=1), 1)[0] * o.batch * o.seq
    head = _bytes(sum(p for _, p, _ in sp.last) * fo.tp, frac)
    emb = _bytes(sum(p for _, p, _ in sp.first) * fo.tp, frac)
    if fo.tp * fo.pp == 1:  # one device holds everything: take its shards as they are (a file's own bytes)
        ends = {"embedding", "lm_head", "final norm"}
        layer_w = -(-sum(x.bytes for x in dev.shards if x.name not in ends) // L)  # the mean layer
        head = sum(x.bytes for x in dev.shards if x.name in ("lm_head", "final norm"))
        emb = sum(x.bytes for x in dev.shards if x.name == "embedding")
    per_layer = layer_w + kv_layer
    n = max(0, min(L, room // per_layer)) if per_layer else L
    out_gpu = n == L and room - L * per_layer >= head
    gpu = n * per_layer + (head if out_gpu else 0) + act + reserve
    host = (L - n) * per_layer + (0 if out_gpu else head) + emb
    ram = fo.ram_bytes
    return Offload(n, L, out_gpu, gpu, host, ram, None if ram is None else host <= ram)


def _assumptions(
    spec: ModelSpec,
    acc: Accelerator,
    fo: FitOptions,
    sp: _Split,
    frac: tuple[int, int],
    act_f: str,
    kv_tok: int,
    file_mode: bool = False,
) -> list[str]:
    o = fo.opts
    hp = spec.hp
    if file_mode:
        out = [f"weights: the file's own tensor bytes, layer by layer ({(spec.stored or {}).get('dtypes', '?')})"]
    else:
        out = [f"weights: {spec.params:,} parameters at {_weight_fraction(spec, fo)[2]}"]
    out.append(
        "TP splits attention and MLP matrices and the vocabulary of embedding and LM head (vLLM's "
        "VocabParallelEmbedding/ParallelLMHead); norms and routers are replicated"
    )
    if fo.pp > 1:
        out.append(
            f"PP: layers per stage {', '.join(map(str, stage_layers(hp.layers, fo.pp)))} (vLLM's get_pp_indices); "
            "embedding on the first stage, final norm and head on the last; the worst stage is shown"
        )
    if hp.num_experts:
        out.append(
            f"EP {fo.ep}: routed experts divided over EP ranks; speed counts the experts a batch of "
            f"{o.batch} touches ({sp.active_ratio[0]} of {sp.active_ratio[1]} per token, uniform routing)"
        )
    out.extend(sp.notes)
    if hp.get("kv_lora_rank"):
        out.append("KV cache: MLA latent (kv_lora_rank + qk_rope_head_dim) per layer, the same on every TP rank")
    elif not hp.is_encoder_only:
        out.append(
            f"KV cache at {o.kv}: {hp.n_kv_heads} KV heads over TP {fo.tp} → "
            f"{max(1, -(-hp.n_kv_heads // fo.tp))} per device (replicated when fewer heads than ranks)"
        )
    if hp.sliding_window:
        out.append("sliding-window layers counted as full attention (vLLM's hybrid allocator needs less)")
    if o.training:
        out.append(f"training: ZeRO {fo.zero} over a data-parallel group of {fo.dp}; {act_f}")
    else:
        out.append(
            f"activations: {act_f} (not divided by TP: an upper bound); --prefill-chunk "
            f"{fo.prefill_chunk} (vLLM's default max_num_batched_tokens)"
        )
    out.append(
        f"runtime reserve {fo.reserve_bytes / GIB:g} GiB per device: CUDA context, cuBLAS workspace, "
        "allocator slack, NCCL buffers (vLLM counts them as non-torch memory)"
    )
    out.append(
        f"usable: {fo.utilization:g} × {acc.usable_bytes / GIB:g} GiB (--utilization, vLLM's "
        "gpu_memory_utilization)" + (f"; {acc.note}" if acc.note else "")
    )
    if kv_tok:
        out.append(f"KV capacity: what is left after weights, activations and reserve; blocks of {BLOCK_TOKENS} tokens")
        if hp.max_positions:
            out.append(f"the model's max_position_embeddings is {hp.max_positions:,}")
    out.append(
        "speed: roofline bounds, not measurements: decode reads the device's weights and the whole KV "
        "cache per step; prefill FLOPs without causal halving over the TP group's dense peak"
    )
    return out


# ---------------------------------------------------------------------------------------------------------------
# What do I need?


def layouts(max_tp: int = MAX_TP, max_pp: int = MAX_PP) -> list[tuple[int, int]]:
    """Candidate (tp, pp) in order of device count: TP in powers of two within a node, then PP across nodes."""
    out = []
    tp = 1
    while tp <= max_tp:
        out.append((tp, 1))
        tp *= 2
    out += [(max_tp, pp) for pp in range(2, max_pp + 1)]
    return out


def what_do_i_need(
    spec: ModelSpec, fo: FitOptions, catalogue: tuple[Accelerator, ...] = CATALOGUE, tensors: FileTensors | None = None
) -> NeedReport:
    """The smallest count of each accelerator (and its TP/PP layout) that holds the model at the asked batch
    and context, sorted by total memory; TP must divide the attention heads."""
    fo.validate()
    pre = _precompute(spec, fo)
    heads = spec.hp.heads or 1
    rows: list[NeedRow] = []
    for acc in catalogue:
        found: NeedRow | None = None
        for tp, pp in layouts(1 if acc.usable_fraction < 1 else MAX_TP, 1 if acc.usable_fraction < 1 else MAX_PP):
            if heads % tp or pp > spec.hp.layers:
                continue
            r = fit(spec, acc, replace(fo, tp=tp, pp=pp, ep=1), tensors, _pre=pre)
            if r.fits:
                n = tp * pp
                found = NeedRow(acc, n, tp, pp, n * acc.memory_bytes, r.kv_capacity_tokens, r.speed.decode_tokens_per_s)
                break
        rows.append(found or NeedRow(acc, None, None, None, None, None, None))
    rows.sort(key=lambda r: (r.total_memory_bytes is None, r.total_memory_bytes or 0, r.accelerator.name))
    first = fit(spec, catalogue[0], replace(fo, tp=1, pp=1, ep=1), tensors, _pre=pre)
    return NeedReport(spec.source, spec.hp.arch, spec.params, fo, tuple(rows), first.assumptions)
