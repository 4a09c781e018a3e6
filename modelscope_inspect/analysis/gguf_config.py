"""GGUF metadata → an HF-style `config.json` dict, so a `.gguf` file goes through `HParams.from_config`.

A GGUF header holds every hyperparameter llama.cpp needs, as `{arch}.<key>` entries (llama.cpp
`src/llama-arch.cpp`, gguf-py `gguf/constants.py`), and the tensor infos say the rest (tying, biases, which
layers route to experts). This module is a pure translation: the metadata as the GGUF reader keeps it in
`TensorInventory.metadata` (scalars as their text, arrays summarised as `[N × type: first items, …]`) or as
typed values, plus the tensor shapes (ggml order: `ne0` first) → a dict with the keys transformers' config
class for the family reads. No I/O.

What comes from where (llama.cpp's `convert_hf_to_gguf.py` writes them from the same HF config keys):

| HF key                       | GGUF                                                              |
| ---------------------------- | ----------------------------------------------------------------- |
| `model_type`                 | `general.architecture` (table below)                              |
| `num_hidden_layers`          | `{arch}.block_count`                                              |
| `hidden_size`                | `{arch}.embedding_length`                                         |
| `num_attention_heads`        | `{arch}.attention.head_count`                                     |
| `num_key_value_heads`        | `{arch}.attention.head_count_kv` (a number or one per layer; absent: the heads) |
| `head_dim`                   | `{arch}.attention.key_length` (= `value_length`; absent: width / heads) |
| `intermediate_size`          | `{arch}.feed_forward_length`                                      |
| `max_position_embeddings`    | `{arch}.context_length`                                           |
| `sliding_window`             | `{arch}.attention.sliding_window`                                 |
| `num_local_experts` / `num_experts` | `{arch}.expert_count`                                      |
| `num_experts_per_tok`        | `{arch}.expert_used_count`                                        |
| `moe_intermediate_size`      | `{arch}.expert_feed_forward_length`                               |
| `shared_expert_intermediate_size` | `{arch}.expert_shared_feed_forward_length`                   |
| `vocab_size`                 | rows of `token_embd.weight`, else `{arch}.vocab_size`, else         |
|                              | the length of `tokenizer.ggml.tokens`                             |
| `tie_word_embeddings`        | no `output.weight` tensor (gpt2: always tied, the converter writes the copy) |
| `attention_bias`, `mlp_bias` | `blk.0.attn_q.bias`, `blk.0.ffn_up.bias` tensors                  |
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import MalformedFileError, UsageError
from .families import BY_MODEL_TYPE as MODEL_TYPE_PRESETS  # model types a family record reads

# `general.architecture` → HF `model_type`, for the families the presets count. llama.cpp writes Mistral and
# Mixtral checkpoints as `llama` (told apart below by a sliding window and an expert count).
GGUF_ARCHITECTURES: dict[str, str] = {
    "llama": "llama",
    "qwen2": "qwen2",
    "qwen2moe": "qwen2_moe",
    "qwen3": "qwen3",
    "qwen3moe": "qwen3_moe",
    "gemma": "gemma",
    "phi2": "phi",
    "gpt2": "gpt2",
}
# Families whose HF config has a `head_dim` of its own; the others are always width / heads wide.
_HEAD_DIM_FAMILIES = ("llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma")
# llama_ftype values whose tensors are all one float type (the parameter dtype of the equivalent config).
_FILE_DTYPES = {0: "float32", 1: "float16", 32: "bfloat16"}

# The GGUF reader's summary of an array value: `[1,024 × i32: 8, 8, 8, …]` (items cut after the first few).
_ARRAY = re.compile(r"\[([0-9,]+) × (\w+): (.*?)(, …)?\]", re.DOTALL)
_INT = re.compile(r"-?[0-9]+")


class _Meta:
    """Typed reads of GGUF metadata kept as text (or as values), naming the key when one is unusable."""

    def __init__(self, metadata: Mapping[str, Any], path: str | None) -> None:
        self.md = metadata
        self.path = path

    def bad(self, key: str, why: str) -> MalformedFileError:
        return MalformedFileError(f"GGUF metadata {key} {why}", path=self.path, rule="gguf-config-key")

    def has(self, key: str) -> bool:
        return key in self.md

    def text(self, key: str) -> str | None:
        v = self.md.get(key)
        return v if isinstance(v, str) else None

    def integer(self, key: str) -> int | None:
        """A scalar integer, or None when the key is absent; an array or a non-integer is malformed."""
        v = self.md.get(key)
        if v is None:
            return None
        if isinstance(v, bool):
            raise self.bad(key, f"must be an integer, got {v!r}")
        if isinstance(v, int):
            return v
        if isinstance(v, str) and _INT.fullmatch(v.strip()):
            return int(v)
        raise self.bad(key, f"must be an integer, got {_shown(v)}")

    def flag(self, key: str) -> bool | None:
        v = self.md.get(key)
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v in ("True", "False"):
            return v == "True"
        return None

    def count(self, key: str) -> int | None:
        """The length of an array value (the token list), or None."""
        v = self.md.get(key)
        if isinstance(v, Sequence) and not isinstance(v, str):
            return len(v)
        if isinstance(v, str):
            m = _ARRAY.fullmatch(v)
            if m:
                return int(m.group(1).replace(",", ""))
        return None

    def ints(self, key: str) -> tuple[int | None, list[int] | None]:
        """A value that may be one integer or one per layer: `(scalar, None)`, `(None, items)` for a complete
        array, `(None, None)` when absent or when the reader kept only the first items of the array."""
        v = self.md.get(key)
        if v is None:
            return None, None
        if isinstance(v, Sequence) and not isinstance(v, str):
            if all(isinstance(x, int) and not isinstance(x, bool) for x in v):
                return None, [int(x) for x in v]
            raise self.bad(key, f"must hold integers, got {_shown(v)}")
        if isinstance(v, str):
            m = _ARRAY.fullmatch(v)
            if m:
                if m.group(4):  # summarised: the per-layer values come from the tensors instead
                    return None, None
                items = [s.strip() for s in m.group(3).split(",")] if m.group(3).strip() else []
                if not all(_INT.fullmatch(s) for s in items):
                    raise self.bad(key, f"must hold integers, got {_shown(v)}")
                return None, [int(s) for s in items]
        return self.integer(key), None


def _shown(v: object) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:60] + "…"


def config_from_gguf(
    metadata: Mapping[str, Any], shapes: Mapping[str, Sequence[int]], *, path: str | None = None
) -> dict[str, Any]:
    """The HF config a GGUF file's header describes: `metadata` (key → value, as the GGUF reader keeps it) and
    `shapes` (tensor name → ggml shape, `ne0` first). Raises `UsageError` for an architecture no preset
    counts and `MalformedFileError` (rule `gguf-config-key`) naming the key when a needed one is missing.

    Example:
        >>> inv = modelscope_inspect.load("model.gguf")  # doctest: +SKIP
        >>> shapes = {t.name: t.shape for t in inv.tensors}  # doctest: +SKIP
        >>> config_from_gguf(inv.metadata, shapes)["num_hidden_layers"]  # doctest: +SKIP
        32
    """
    md = _Meta(metadata, path)
    arch = md.text("general.architecture")
    if arch is None:
        raise md.bad("general.architecture", "is missing: the model family is unknown")
    model_type = GGUF_ARCHITECTURES.get(arch)
    if model_type is None or model_type not in MODEL_TYPE_PRESETS:
        known = ", ".join(sorted(a for a, t in GGUF_ARCHITECTURES.items() if t in MODEL_TYPE_PRESETS))
        raise UsageError(
            f"GGUF architecture {arch!r} (general.architecture) has no preset; GGUF architectures read: {known} "
            "(or pass --config config.json)",
            path=path,
            rule="gguf-architecture",
        )

    def required(suffix: str, what: str) -> int:
        value = md.integer(f"{arch}.{suffix}")
        if value is None:
            raise md.bad(f"{arch}.{suffix}", f"is missing: the {what} of the model")
        if value <= 0 and suffix != "block_count":
            raise md.bad(f"{arch}.{suffix}", f"must be positive, got {value}")
        return value

    layers = required("block_count", "layers")
    d_model = required("embedding_length", "width")
    heads = _uniform(md, f"{arch}.attention.head_count", layers, {}) or required("attention.head_count", "heads")
    key_len = md.integer(f"{arch}.attention.key_length")
    value_len = md.integer(f"{arch}.attention.value_length")
    if key_len is not None and value_len is not None and key_len != value_len:
        raise UsageError(
            f"GGUF keys are {key_len} wide and values {value_len} ({arch}.attention.key_length / value_length); "
            "the presets model one head width",
            path=path,
            rule="gguf-head-dim",
        )
    head_dim = key_len or value_len or d_model // heads
    per_layer_kv = {  # KV heads per layer from the key projections, for a per-layer array the reader summarised
        i: shape[1] // head_dim
        for i in range(layers)
        if len(shape := shapes.get(f"blk.{i}.attn_k.weight", ())) == 2 and head_dim
    }
    kv_heads = _uniform(md, f"{arch}.attention.head_count_kv", layers, per_layer_kv) or heads
    d_ff = _uniform(md, f"{arch}.feed_forward_length", layers, {})
    if d_ff is None:
        up = shapes.get("blk.0.ffn_up.weight", ())
        if len(up) != 2:
            raise md.bad(f"{arch}.feed_forward_length", "is missing: the MLP width of the model")
        d_ff = up[1]

    experts = md.integer(f"{arch}.expert_count") or 0
    window = md.integer(f"{arch}.attention.sliding_window")
    if model_type == "llama" and experts:
        model_type = "mixtral"
    elif model_type == "llama" and window:
        model_type = "mistral"

    cfg: dict[str, Any] = {"model_type": model_type}
    if model_type == "gpt2":
        if (key_len is not None and key_len != d_model // heads) or kv_heads != heads:
            raise UsageError(
                f"GGUF {arch} attention ({heads} heads, {kv_heads} KV heads, {head_dim} wide) is not GPT-2's",
                path=path,
                rule="gguf-head-dim",
            )
        cfg.update(n_layer=layers, n_embd=d_model, n_head=heads, n_inner=d_ff)
        context = md.integer(f"{arch}.context_length")
        if context is not None:
            cfg["n_positions"] = context
    else:
        cfg.update(
            num_hidden_layers=layers,
            hidden_size=d_model,
            num_attention_heads=heads,
            num_key_value_heads=kv_heads,
            intermediate_size=d_ff,
        )
        if model_type in _HEAD_DIM_FAMILIES:
            cfg["head_dim"] = head_dim
        elif head_dim != d_model // heads:
            raise UsageError(
                f"GGUF {arch} heads are {head_dim} wide ({arch}.attention.key_length), not width / heads "
                f"({d_model // heads}) as the {model_type} preset counts them",
                path=path,
                rule="gguf-head-dim",
            )
        context = md.integer(f"{arch}.context_length")
        if context is not None:
            cfg["max_position_embeddings"] = context

    vocab = _vocab(md, arch, shapes)
    if vocab is None:
        raise md.bad(
            f"{arch}.vocab_size", "is missing, and there is no token_embd.weight tensor and no tokenizer.ggml.tokens"
        )
    cfg["vocab_size"] = vocab
    # llama.cpp writes no output.weight for a tied head; its GPT-2 converter copies wte to output.weight.
    cfg["tie_word_embeddings"] = model_type == "gpt2" or "output.weight" not in shapes

    if model_type in ("llama", "gemma", "qwen3", "qwen3_moe"):
        cfg["attention_bias"] = "blk.0.attn_q.bias" in shapes
    if model_type == "llama":
        cfg["mlp_bias"] = "blk.0.ffn_up.bias" in shapes
    if model_type in ("mistral", "mixtral") and window:
        cfg["sliding_window"] = window
    if model_type == "phi":
        rot = md.integer(f"{arch}.rope.dimension_count")
        if rot is not None and head_dim:
            cfg["partial_rotary_factor"] = rot / head_dim
    if experts:
        cfg["num_local_experts" if model_type == "mixtral" else "num_experts"] = experts
        used = md.integer(f"{arch}.expert_used_count")
        if used is not None:
            cfg["num_experts_per_tok"] = used
        if model_type in ("qwen2_moe", "qwen3_moe"):
            cfg.update(_qwen_moe(md, arch, shapes, layers, model_type))
    dtype = _FILE_DTYPES.get(md.integer("general.file_type") or -1)
    if dtype is not None:
        cfg["torch_dtype"] = dtype
    return cfg


def _uniform(md: _Meta, key: str, layers: int, from_tensors: Mapping[int, int]) -> int | None:
    """One value for every layer: the scalar, or the per-layer array when all its values agree (read from the
    tensors when the reader kept only the array's first items). Layers that differ are refused."""
    scalar, items = md.ints(key)
    if scalar is not None:
        return scalar
    if items is None:
        if not md.has(key):
            return None
        if len(from_tensors) != layers:
            raise md.bad(key, "is a per-layer array the header summary cuts short, and not every layer has the tensor")
        items = [from_tensors[i] for i in range(layers)]
    elif len(items) != layers:
        raise md.bad(key, f"has {len(items)} per-layer values for {layers} layers")
    values = sorted(set(items))
    if len(values) > 1:
        shown = ", ".join(map(str, values[:6])) + (", …" if len(values) > 6 else "")
        raise UsageError(
            f"GGUF {key} differs between layers ({shown}); the presets model one value for every layer",
            path=md.path,
            rule="gguf-per-layer",
        )
    return values[0] if values else None


def _vocab(md: _Meta, arch: str, shapes: Mapping[str, Sequence[int]]) -> int | None:
    embd = shapes.get("token_embd.weight", ())
    if len(embd) == 2:
        return int(embd[1])  # ggml order: [n_embd, n_vocab]
    return md.integer(f"{arch}.vocab_size") or md.count("tokenizer.ggml.tokens")


def _qwen_moe(
    md: _Meta, arch: str, shapes: Mapping[str, Sequence[int]], layers: int, model_type: str
) -> dict[str, Any]:
    """Expert widths and which layers are dense (no router tensor), for qwen2_moe / qwen3_moe."""
    out: dict[str, Any] = {}
    moe_ff = md.integer(f"{arch}.expert_feed_forward_length")
    if moe_ff is None:
        exps = shapes.get("blk.0.ffn_up_exps.weight", ())
        moe_ff = exps[1] if len(exps) == 3 else None
    if moe_ff is not None:
        out["moe_intermediate_size"] = moe_ff
    if model_type == "qwen2_moe":
        shared = md.integer(f"{arch}.expert_shared_feed_forward_length")
        if shared is None:
            shexp = shapes.get("blk.0.ffn_up_shexp.weight", ())
            shared = shexp[1] if len(shexp) == 2 else None
        if shared is not None:
            out["shared_expert_intermediate_size"] = shared
    if any(name.startswith("blk.") for name in shapes):
        out["decoder_sparse_step"] = 1
        out["mlp_only_layers"] = [i for i in range(layers) if f"blk.{i}.ffn_gate_inp.weight" not in shapes]
    norm = md.flag(f"{arch}.expert_weights_norm")
    if norm is not None:
        out["norm_topk_prob"] = norm
    return out


__all__ = ["GGUF_ARCHITECTURES", "config_from_gguf"]
