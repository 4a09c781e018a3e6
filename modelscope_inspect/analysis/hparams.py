"""Hyperparameters of a transformer, normalised from an HF `config.json` or from command-line flags.

One frozen `HParams` record is what `mi params` and `mi memory` compute from. Config files spell the same
quantity differently per model family (gpt2 `n_embd`, t5 `d_model`, chatglm `num_layers`, falcon
`n_embed`…); `HParams.from_config` maps them onto one set of names and says which key was missing when a
required one is absent. Pure Python: no torch / transformers import on this path.

Public names (stable; `analysis/memory.py` reads them): `HParams`, `HParams.from_config`,
`HParams.from_options`, `HParams.with_dtype`, `hparams_from_cli`, `load_config`, `parse_config`, `preset_for_config`,
`KNOWN_MODEL_TYPES`, `MODEL_TYPE_PRESETS`, `HF_DEFAULTS`, `TIED_DEFAULT`, and the properties `n_heads`,
`n_kv_heads`, `d_head`, `q_dim`, `kv_dim`, `attention_layer_types`, `dtype_name`, `get`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import MalformedFileError, UsageError

# A config.json is a few KB; refuse anything absurd before reading it (bounded memory on bad input).
MAX_CONFIG_BYTES = 16 * 1024 * 1024

# HF `model_type` (and legacy spellings) → our preset name. The preset decides the formula.
MODEL_TYPE_PRESETS: dict[str, str] = {
    "gpt2": "gpt2",
    "bert": "bert",
    "roberta": "roberta",
    "t5": "t5",
    "llama": "llama",
    "mistral": "mistral",
    "qwen2": "qwen2",
    "gemma": "gemma",
    "opt": "opt",
    "phi": "phi",
    "falcon": "falcon",
    "RefinedWeb": "falcon",  # early Falcon checkpoints (tiiuae/falcon-40b before the HF port)
    "RefinedWebModel": "falcon",  # early Falcon-7B
    "chatglm": "chatglm",
    "mixtral": "mixtral",
    "qwen2_moe": "qwen2_moe",
    "qwen3": "qwen3",
    "qwen3_moe": "qwen3_moe",
}
KNOWN_MODEL_TYPES: tuple[str, ...] = tuple(sorted({k for k in MODEL_TYPE_PRESETS if k.islower()}))

# Architecture names that identify the model when `model_type` is missing (old exports).
_ARCHITECTURE_PRESETS: dict[str, str] = {
    "GPT2LMHeadModel": "gpt2",
    "GPT2Model": "gpt2",
    "BertModel": "bert",
    "BertForMaskedLM": "bert",
    "BertForPreTraining": "bert",
    "RobertaModel": "roberta",
    "RobertaForMaskedLM": "roberta",
    "T5ForConditionalGeneration": "t5",
    "T5Model": "t5",
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "mistral",
    "Qwen2ForCausalLM": "qwen2",
    "GemmaForCausalLM": "gemma",
    "OPTForCausalLM": "opt",
    "PhiForCausalLM": "phi",
    "FalconForCausalLM": "falcon",
    "ChatGLMModel": "chatglm",
    "ChatGLMForConditionalGeneration": "chatglm",
    "MixtralForCausalLM": "mixtral",
    "Qwen2MoeForCausalLM": "qwen2_moe",
    "Qwen3ForCausalLM": "qwen3",
    "Qwen3MoeForCausalLM": "qwen3_moe",
}

# Where each quantity may be spelled, first match wins. Per preset, so a key that means something else in
# another family (t5 `num_layers` is the encoder depth; chatglm `num_layers` is the only depth) is not misread.
_COMMON_KEYS: dict[str, tuple[str, ...]] = {
    "vocab": ("vocab_size",),
    "d_model": ("hidden_size", "n_embd", "n_embed", "d_model"),
    "layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "heads": ("num_attention_heads", "n_head", "num_heads"),
    "kv_heads": ("num_key_value_heads",),
    "head_dim": ("head_dim",),
    "d_ff": ("intermediate_size", "n_inner", "ffn_dim", "ffn_hidden_size", "d_ff"),
    "max_positions": ("max_position_embeddings", "n_positions", "seq_length"),
}
_PRESET_KEYS: dict[str, dict[str, tuple[str, ...]]] = {
    # Families whose attention is always d/heads wide with as many KV heads as query heads: a stray
    # `head_dim` / `num_key_value_heads` key in their config is not read (their modeling code ignores it too).
    "gpt2": {
        "d_model": ("n_embd", "hidden_size"),
        "layers": ("n_layer", "num_hidden_layers"),
        "kv_heads": (),
        "head_dim": (),
    },
    "bert": {"kv_heads": (), "head_dim": ()},
    "roberta": {"kv_heads": (), "head_dim": ()},
    "t5": {
        "d_model": ("d_model",),
        "layers": ("num_layers",),
        "heads": ("num_heads",),
        "head_dim": ("d_kv",),
        "kv_heads": (),
        "d_ff": ("d_ff",),
        "max_positions": (),
    },
    "chatglm": {
        "vocab": ("padded_vocab_size", "vocab_size"),
        "layers": ("num_layers",),
        "head_dim": ("kv_channels",),
        "kv_heads": (),  # multi_query_group_num, read below only when multi_query_attention is on
        "d_ff": ("ffn_hidden_size",),
        "max_positions": ("seq_length",),
    },
    "falcon": {"d_ff": ("ffn_hidden_size",), "kv_heads": (), "head_dim": ()},
    "opt": {"d_ff": ("ffn_dim",), "kv_heads": (), "head_dim": ()},
    "mixtral": {"d_ff": ("intermediate_size",)},
    "qwen2_moe": {"d_ff": ("intermediate_size",)},
    "qwen3_moe": {"d_ff": ("intermediate_size",)},
}
_REQUIRED = ("vocab", "d_model", "layers")

# What transformers' config class (5.x, `configuration_<family>.py`) uses when a config.json omits a key,
# so a sparse config.json is read the way `from_pretrained` reads it. The sizes above (`_REQUIRED`) are never
# defaulted: a config without them is refused. chatglm: THUDM's configuration_chatglm.py.
HF_DEFAULTS: dict[str, dict[str, Any]] = {
    "gpt2": {"n_positions": 1024, "n_head": 12, "tie_word_embeddings": True},
    "bert": {
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "tie_word_embeddings": True,
    },
    "roberta": {
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "tie_word_embeddings": True,
    },
    "t5": {
        "d_kv": 64,
        "d_ff": 2048,
        "num_heads": 8,
        "relative_attention_num_buckets": 32,
        "feed_forward_proj": "relu",
        "tie_word_embeddings": True,
    },
    "llama": {
        "num_attention_heads": 32,
        "intermediate_size": 11008,
        "max_position_embeddings": 2048,
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
    },
    "mistral": {
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "max_position_embeddings": 4096 * 32,
        "sliding_window": 4096,
        "tie_word_embeddings": False,
    },
    "qwen2": {
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "intermediate_size": 22016,
        "max_position_embeddings": 32768,
        "tie_word_embeddings": False,
        "use_sliding_window": False,
        "sliding_window": 4096,
        "max_window_layers": 28,
    },
    "gemma": {
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "head_dim": 256,
        "intermediate_size": 24576,
        "max_position_embeddings": 8192,
        "attention_bias": False,
        "tie_word_embeddings": True,
    },
    "opt": {
        "num_attention_heads": 12,
        "ffn_dim": 3072,
        "max_position_embeddings": 2048,
        "do_layer_norm_before": True,
        "_remove_final_layer_norm": False,
        "enable_bias": True,
        "layer_norm_elementwise_affine": True,
        "tie_word_embeddings": True,
    },
    "phi": {
        "num_attention_heads": 32,
        "intermediate_size": 8192,
        "max_position_embeddings": 2048,
        "qk_layernorm": False,
        "tie_word_embeddings": False,
    },
    "falcon": {
        "num_attention_heads": 71,
        "max_position_embeddings": 2048,
        "new_decoder_architecture": False,
        "multi_query": True,
        "parallel_attn": True,
        "bias": False,
        "tie_word_embeddings": True,
    },
    "chatglm": {
        "num_attention_heads": 32,
        "kv_channels": 128,
        "ffn_hidden_size": 13696,
        "seq_length": 2048,
        "multi_query_attention": False,
        "multi_query_group_num": 1,
        "add_bias_linear": False,
        "add_qkv_bias": False,
        "rmsnorm": True,
        "post_layer_norm": True,
        "tie_word_embeddings": False,
    },
    "mixtral": {
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "max_position_embeddings": 4096 * 32,
        "num_local_experts": 8,
        "num_experts_per_tok": 2,
        "tie_word_embeddings": False,
    },
    "qwen2_moe": {
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "intermediate_size": 5632,
        "max_position_embeddings": 32768,
        "moe_intermediate_size": 1408,
        "shared_expert_intermediate_size": 5632,
        "num_experts": 60,
        "num_experts_per_tok": 4,
        "decoder_sparse_step": 1,
        "qkv_bias": True,
        "use_sliding_window": False,
        "sliding_window": 4096,
        "max_window_layers": 28,
        "tie_word_embeddings": False,
    },
    "qwen3": {
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "head_dim": 128,
        "intermediate_size": 22016,
        "max_position_embeddings": 32768,
        "attention_bias": False,
        "use_sliding_window": False,
        "sliding_window": 4096,
        "max_window_layers": 28,
        "tie_word_embeddings": False,
    },
    "qwen3_moe": {
        "num_attention_heads": 32,
        "num_key_value_heads": 4,
        "intermediate_size": 6144,
        "max_position_embeddings": 32768,
        "moe_intermediate_size": 768,
        "num_experts": 128,
        "num_experts_per_tok": 8,
        "decoder_sparse_step": 1,
        "attention_bias": False,
        "use_sliding_window": False,
        "sliding_window": 4096,
        "tie_word_embeddings": False,
    },
}

# transformers' default for `tie_word_embeddings` per family (its config classes), used when a config omits it.
TIED_DEFAULT: dict[str, bool] = {
    "gpt2": True,
    "bert": True,
    "roberta": True,
    "t5": True,
    "llama": False,
    "mistral": False,
    "qwen2": False,
    "gemma": True,
    "opt": True,
    "phi": False,
    "falcon": True,
    "chatglm": False,
    "mixtral": False,
    "qwen2_moe": False,
    "qwen3": False,
    "qwen3_moe": False,
}


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_positive(name: str, value: object, *, path: str | None, zero_ok: bool = False) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise UsageError(f"{name} must be an integer, got {value!r}", path=path, rule="hparam-int")
    if value < 0 or (value == 0 and not zero_ok):
        raise UsageError(
            f"{name} must be {'≥ 0' if zero_ok else 'positive'}, got {value}", path=path, rule="hparam-positive"
        )


@dataclass(frozen=True, slots=True)
class HParams:
    """The hyperparameters that decide a transformer's parameter count and memory.

    `arch` is the preset name (`seed`, `torch-decoder`, `gpt2`, `llama`, …). `layers` is the decoder depth
    (for encoder-only models the encoder depth); encoder-decoder models also set `encoder_layers` and
    `decoder_layers`. `None` means "not given": the preset applies its reference implementation's default
    (e.g. `d_ff` = 4·d for gpt2). Family-specific switches are in `extras` (read them with `get`).
    """

    arch: str
    vocab: int
    d_model: int
    layers: int
    heads: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    d_ff: int | None = None
    max_positions: int | None = None
    tied: bool | None = None
    bias: bool | None = None
    qkv_bias: bool | None = None
    encoder_layers: int | None = None
    decoder_layers: int | None = None
    is_encoder_only: bool = False
    is_encoder_decoder: bool = False
    sliding_window: int | None = None
    layer_types: tuple[str, ...] | None = None
    num_experts: int | None = None
    experts_per_token: int | None = None
    torch_dtype: str | None = None  # canonical name from the dtype table (`f32`, `bf16`, …) when known
    model_type: str | None = None
    architectures: tuple[str, ...] = ()
    path: str | None = None
    extras: tuple[tuple[str, Any], ...] = field(default=())
    defaults_used: tuple[str, ...] = ()  # config keys absent from config.json, taken from transformers' defaults

    # ---- derived quantities ---------------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """A family-specific switch from `extras` (e.g. `get("type_vocab_size", 2)`)."""
        for k, v in self.extras:
            if k == key:
                return v
        return default

    @property
    def n_heads(self) -> int:
        """Query heads; a usage error if neither the config nor the flags gave them."""
        if self.heads is None:
            raise UsageError(f"{self.arch} needs the number of attention heads (--heads)", path=self.path)
        return self.heads

    @property
    def n_kv_heads(self) -> int:
        """Key/value heads (= query heads unless grouped- or multi-query attention)."""
        return self.kv_heads if self.kv_heads is not None else self.n_heads

    @property
    def d_head(self) -> int:
        """Width of one attention head: explicit `head_dim` (gemma, t5 `d_kv`, chatglm `kv_channels`) or d/heads."""
        return self.head_dim if self.head_dim is not None else self.d_model // self.n_heads

    @property
    def q_dim(self) -> int:
        """Width of all query heads together (`heads × head_dim`; ≠ d_model for gemma-7b, t5 variants)."""
        return self.n_heads * self.d_head

    @property
    def kv_dim(self) -> int:
        """Width of the keys (or of the values) of one layer: `kv_heads × head_dim`; the KV cache per token is 2×."""
        return self.n_kv_heads * self.d_head

    @property
    def dtype_name(self) -> str:
        """The parameter dtype (canonical name); `f32` when the config does not say."""
        return self.torch_dtype or "f32"

    @property
    def attention_layer_types(self) -> tuple[str, ...]:
        """One entry per decoder layer: `full_attention` or `sliding_attention`."""
        if self.layer_types is not None:
            return self.layer_types
        kind = "sliding_attention" if self.sliding_window else "full_attention"
        return (kind,) * self.layers

    def with_dtype(self, dtype: str) -> HParams:
        """The same hyperparameters with another parameter dtype (any spelling the dtype table knows)."""
        from dataclasses import replace

        return replace(self, torch_dtype=_dtype_name(dtype, path=None))

    # ---- constructors ---------------------------------------------------------------------------------------

    @classmethod
    def from_options(
        cls,
        *,
        arch: str,
        vocab: int,
        d_model: int,
        layers: int,
        heads: int | None = None,
        kv_heads: int | None = None,
        head_dim: int | None = None,
        d_ff: int | None = None,
        max_positions: int | None = None,
        tied: bool | None = None,
        bias: bool | None = None,
        qkv_bias: bool | None = None,
        encoder_layers: int | None = None,
        decoder_layers: int | None = None,
        num_experts: int | None = None,
        experts_per_token: int | None = None,
        dtype: str | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> HParams:
        """Hyperparameters given on the command line (`mi params --vocab … --d-model … --layers …`)."""
        if _is_int(layers) and layers <= 0 and arch not in ("t5", "torch-encoder-decoder"):
            # A config may hold `num_hidden_layers: 0` (transformers builds that model, and it is counted
            # exactly); on the command line `--layers 0` is a typo. Encoder-decoders take their depths from
            # --encoder-layers / --decoder-layers.
            raise UsageError(f"--layers must be positive, got {layers}", rule="hparam-positive")
        torch_dtype = _dtype_name(dtype, path=None) if dtype else None
        hp = cls(
            arch=arch,
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
            qkv_bias=qkv_bias,
            encoder_layers=encoder_layers,
            decoder_layers=decoder_layers,
            is_encoder_only=arch in ("bert", "roberta"),
            is_encoder_decoder=arch in ("t5", "torch-encoder-decoder"),
            num_experts=num_experts,
            experts_per_token=experts_per_token,
            torch_dtype=torch_dtype,
            extras=tuple(sorted((extras or {}).items())),
        )
        hp.validate()
        return hp

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, path: str | None = None, arch: str | None = None) -> HParams:
        """Normalise an HF `config.json` dict. `arch` overrides the preset picked from `model_type`.

        Raises `UsageError` for an unknown model type (listing the known ones) and `MalformedFileError`
        (rule `config-key`) naming the missing key when a required quantity is absent.
        """
        if not isinstance(config, Mapping):
            raise MalformedFileError("config.json must hold a JSON object", path=path, rule="config-shape")
        preset = arch or preset_for_config(config, path=path)
        if preset not in HF_DEFAULTS:
            raise UsageError(
                f"--arch {preset} cannot read a config.json; presets that can: {', '.join(sorted(HF_DEFAULTS))}",
                path=path,
                rule="arch-config",
            )
        keys = {**_COMMON_KEYS, **_PRESET_KEYS.get(preset, {})}
        # A default fills a quantity only when no spelling of it is present (falcon's `n_head` vs the
        # default under `num_attention_heads`).
        aliases = {k: names for names in keys.values() for k in names}
        defaults = {
            k: v for k, v in HF_DEFAULTS[preset].items() if all(config.get(a) is None for a in aliases.get(k, (k,)))
        }
        defaults_used = tuple(sorted(defaults))
        config = {**defaults, **{k: v for k, v in config.items() if v is not None}}

        def find(what: str) -> tuple[str | None, Any]:
            for key in keys.get(what, ()):
                if config.get(key) is not None:
                    return key, config[key]
            return None, None

        values: dict[str, Any] = {}
        for what in keys:
            key, value = find(what)
            if value is not None and not _is_int(value):
                raise MalformedFileError(
                    f"config key {key!r} must be an integer, got {value!r}", path=path, rule="config-key"
                )
            values[what] = value
        for what in _REQUIRED:
            if values[what] is None:
                spelled = " / ".join(repr(k) for k in keys[what])
                raise MalformedFileError(
                    f"config.json has no {spelled} (the {what.replace('_', ' ')}) needed for {preset}",
                    path=path,
                    rule="config-key",
                )

        # Switches that add modules the presets do not model: refused, never silently miscounted.
        unsupported = {
            "gpt2": ("add_cross_attention",),
            "bert": ("add_cross_attention",),
            "roberta": ("add_cross_attention",),
            "chatglm": ("pre_seq_len",),
        }.get(preset, ())
        for key in unsupported:
            if config.get(key):
                raise UsageError(
                    f"config sets {key!r} ({config[key]!r}), which adds modules the {preset} preset does not count",
                    path=path,
                    rule="config-unsupported",
                )

        extras: dict[str, Any] = {}
        kv_heads = values["kv_heads"]
        heads = values["heads"]
        layers: int = values["layers"]
        encoder_layers = decoder_layers = None
        bias = _opt_bool(config, "bias", path) if preset == "falcon" else None
        qkv_bias = None

        if preset == "falcon":
            new_arch = bool(config.get("new_decoder_architecture", False))
            multi_query = bool(config.get("multi_query", True))
            if config.get("model_type") == "RefinedWeb":
                # The pre-port Falcon-40B config: the new decoder architecture, KV heads in `n_head_kv`.
                new_arch = True
                kv_heads = config.get("n_head_kv") or config.get("num_kv_heads") or heads
            elif new_arch:
                kv_heads = config.get("num_kv_heads") or heads
            elif multi_query:
                kv_heads = 1
            else:
                kv_heads = heads
            extras.update(
                new_decoder_architecture=new_arch,
                multi_query=multi_query,
                parallel_attn=bool(config.get("parallel_attn", True)),
                num_ln_in_parallel_attn=config.get("num_ln_in_parallel_attn"),
            )
        elif preset == "chatglm":
            if config.get("multi_query_attention"):
                kv_heads = config.get("multi_query_group_num")
                if kv_heads is None:
                    raise MalformedFileError(
                        "config.json sets multi_query_attention but has no 'multi_query_group_num'",
                        path=path,
                        rule="config-key",
                    )
            bias = bool(config.get("add_bias_linear", False))
            qkv_bias = bool(config.get("add_qkv_bias", False))
            extras.update(
                rmsnorm=bool(config.get("rmsnorm", True)), post_layer_norm=bool(config.get("post_layer_norm", True))
            )
        elif preset == "t5":
            encoder_layers = layers
            decoder_layers = config.get("num_decoder_layers") or layers
            layers = decoder_layers
            proj = str(config.get("feed_forward_proj", "relu"))
            # transformers 5's T5Config forces tie_word_embeddings = True (it only keeps the flag to decide the
            # output scaling); T5 v1.1 files written by transformers 4 hold a separate lm_head.
            if config.get("tie_word_embeddings") is False:
                extras.update(untied_in_config=True)
            config["tie_word_embeddings"] = True
            extras.update(
                gated=proj.startswith("gated-"),
                relative_attention_num_buckets=config.get("relative_attention_num_buckets", 32),
            )
        elif preset in ("bert", "roberta"):
            extras.update(type_vocab_size=config.get("type_vocab_size", 2))
            archs_raw = config.get("architectures")
            names = [a for a in archs_raw if isinstance(a, str)] if isinstance(archs_raw, list) else []
            head = "base"
            if any(a.endswith("ForPreTraining") for a in names):
                head = "pretraining"
            elif any(a.endswith("ForMaskedLM") for a in names):
                head = "mlm"
            extras.update(head=head)
        elif preset in ("llama", "mistral", "qwen2", "gemma", "mixtral", "qwen2_moe", "qwen3", "qwen3_moe"):
            if preset in ("llama", "gemma", "qwen3", "qwen3_moe"):
                # LlamaAttention / GemmaAttention: q/k/v/o all take `attention_bias`; only Llama's MLP has `mlp_bias`.
                bias = bool(config.get("attention_bias", False))
                extras.update(mlp_bias=preset == "llama" and bool(config.get("mlp_bias", False)))
            elif preset in ("mistral", "mixtral"):
                pass  # MistralAttention / MixtralAttention: no bias anywhere, whatever the config says
            else:
                # Qwen2Attention: q/k/v always with bias, o_proj without; Qwen2Moe reads `qkv_bias` (default True).
                qkv_bias = True if preset == "qwen2" else bool(config.get("qkv_bias", True))
            if preset == "qwen3_moe":
                extras.update(
                    moe_intermediate_size=config.get("moe_intermediate_size", 768),
                    decoder_sparse_step=config.get("decoder_sparse_step", 1),
                    mlp_only_layers=tuple(config.get("mlp_only_layers") or ()),
                )
            if preset == "qwen2_moe":
                extras.update(
                    moe_intermediate_size=config.get("moe_intermediate_size", 1408),
                    shared_expert_intermediate_size=config.get("shared_expert_intermediate_size", 5632),
                    decoder_sparse_step=config.get("decoder_sparse_step", 1),
                    mlp_only_layers=tuple(config.get("mlp_only_layers") or ()),
                )
        elif preset == "opt":
            extras.update(
                word_embed_proj_dim=config.get("word_embed_proj_dim") or values["d_model"],
                do_layer_norm_before=bool(config.get("do_layer_norm_before", True)),
                remove_final_layer_norm=bool(config.get("_remove_final_layer_norm", False)),
                layer_norm_elementwise_affine=bool(config.get("layer_norm_elementwise_affine", True)),
            )
            bias = bool(config.get("enable_bias", True))
        elif preset == "phi":
            extras.update(qk_layernorm=bool(config.get("qk_layernorm", False)))

        num_experts = config.get("num_local_experts") or config.get("num_experts")
        experts_per_token = config.get("num_experts_per_tok")

        tied_raw = config.get("tie_word_embeddings")
        tied = bool(tied_raw) if tied_raw is not None else TIED_DEFAULT.get(preset)

        sliding = config.get("sliding_window")
        if preset in ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe") and not config.get("use_sliding_window", False):
            sliding = None
        layer_types_raw = config.get("layer_types")
        layer_types: tuple[str, ...] | None = None
        if isinstance(layer_types_raw, list) and all(isinstance(t, str) for t in layer_types_raw):
            layer_types = tuple(layer_types_raw)
        elif preset in ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe") and sliding:
            start = config.get("max_window_layers", layers)
            layer_types = tuple("sliding_attention" if i >= start else "full_attention" for i in range(layers))

        dtype_raw = config.get("torch_dtype") or config.get("dtype")
        torch_dtype = _dtype_name(dtype_raw, path=path) if isinstance(dtype_raw, str) else None

        archs = config.get("architectures") or ()
        hp = cls(
            arch=preset,
            vocab=values["vocab"],
            d_model=values["d_model"],
            layers=layers,
            heads=heads,
            kv_heads=kv_heads,
            head_dim=values["head_dim"],
            d_ff=values["d_ff"],
            max_positions=values["max_positions"],
            tied=tied,
            bias=bias,
            qkv_bias=qkv_bias,
            encoder_layers=encoder_layers,
            decoder_layers=decoder_layers,
            is_encoder_only=preset in ("bert", "roberta"),
            is_encoder_decoder=bool(config.get("is_encoder_decoder", preset == "t5")),
            sliding_window=sliding
            if isinstance(sliding, int) and not isinstance(sliding, bool) and sliding > 0
            else None,
            layer_types=layer_types,
            num_experts=num_experts if _is_int(num_experts) else None,
            experts_per_token=experts_per_token if _is_int(experts_per_token) else None,
            torch_dtype=torch_dtype,
            model_type=config.get("model_type") if isinstance(config.get("model_type"), str) else None,
            architectures=tuple(a for a in archs if isinstance(a, str)) if isinstance(archs, list) else (),
            path=path,
            extras=tuple(sorted(extras.items())),
            defaults_used=defaults_used,
        )
        hp.validate()
        return hp

    def validate(self) -> None:
        """Sizes positive, heads divide the width, kv heads divide the heads; `UsageError` naming the rule."""
        where = self.path
        for name in ("vocab", "d_model", "layers"):
            _check_positive(name, getattr(self, name), path=where, zero_ok=name == "layers")
        for name in ("heads", "kv_heads", "head_dim", "d_ff", "max_positions", "num_experts", "experts_per_token"):
            _check_positive(name, getattr(self, name), path=where)
        for name in ("encoder_layers", "decoder_layers"):
            _check_positive(name, getattr(self, name), path=where, zero_ok=True)
        if self.heads is not None and self.head_dim is None and self.d_model % self.heads:
            raise UsageError(
                f"heads ({self.heads}) must divide d_model ({self.d_model}); give --head-dim if the heads are "
                "narrower or wider than d_model/heads",
                path=where,
                rule="heads-divide",
            )
        if self.kv_heads is not None and self.heads is not None and self.heads % self.kv_heads:
            raise UsageError(
                f"kv_heads ({self.kv_heads}) must divide heads ({self.heads})", path=where, rule="kv-heads-divide"
            )
        if (
            self.experts_per_token is not None
            and self.num_experts is not None
            and self.experts_per_token > self.num_experts
        ):
            raise UsageError(
                f"experts_per_token ({self.experts_per_token}) exceeds num_experts ({self.num_experts})",
                path=where,
                rule="experts",
            )


# `mi params` flag name for each size, in the order the usage messages list them.
_FLAGS: dict[str, str] = {
    "vocab": "--vocab",
    "d_model": "--d-model",
    "layers": "--layers",
    "d_ff": "--d-ff",
    "heads": "--heads",
    "kv_heads": "--kv-heads",
    "head_dim": "--head-dim",
    "tied": "--tied/--untied",
    "bias": "--bias/--no-bias",
    "max_positions": "--max-positions",
    "encoder_layers": "--encoder-layers",
    "decoder_layers": "--decoder-layers",
    "num_experts": "--experts",
    "experts_per_token": "--experts-per-token",
}


def refuse_sizes_with_config(sizes: Mapping[str, Any]) -> None:
    """A config gives the sizes: size flags beside `--config` are a usage error naming them."""
    given = [flag for key, flag in _FLAGS.items() if sizes.get(key) is not None]
    if given:
        raise UsageError(f"--config gives the sizes; drop {', '.join(given)} (or drop --config)", rule="options")


def hparams_from_cli(
    *,
    config: Mapping[str, Any] | None,
    config_path: str | None = None,
    arch: str | None,
    dtype: str | None,
    **sizes: Any,
) -> HParams:
    """`mi params` options → HParams: either a config (read from `config_path`; sizes come from it) or the
    size flags."""
    if config is not None:
        refuse_sizes_with_config(sizes)
        hp = HParams.from_config(config, path=config_path, arch=arch)
        return hp.with_dtype(dtype) if dtype is not None else hp
    missing = [_FLAGS[k] for k in _REQUIRED if sizes.get(k) is None]
    if missing:
        raise UsageError(f"give {', '.join(missing)} (or --config config.json)", rule="options")
    unknown = set(sizes) - set(_FLAGS)
    if unknown:
        raise TypeError(f"unknown size options {sorted(unknown)}")
    return HParams.from_options(arch=arch or "seed", dtype=dtype, **sizes)


def _opt_bool(config: Mapping[str, Any], key: str, path: str | None) -> bool | None:
    v = config.get(key)
    if v is None:
        return None
    if not isinstance(v, bool):
        raise MalformedFileError(f"config key {key!r} must be true or false, got {v!r}", path=path, rule="config-key")
    return v


def _dtype_name(raw: str, *, path: str | None) -> str | None:
    from ..dtypes import lookup

    try:
        return lookup(raw).name
    except MalformedFileError:
        if path is None:
            from ..dtypes import DTYPES

            raise UsageError(
                f"--dtype: unknown dtype {raw!r}; choose one of {', '.join(DTYPES)} (torch and safetensors "
                "spellings such as float16, bfloat16, BF16 and fp16 are accepted too)",
                rule="dtype-known",
            ) from None
        return None  # an odd dtype string in a config is not worth refusing the whole file


def preset_for_config(config: Mapping[str, Any], *, path: str | None = None) -> str:
    """The preset for a config dict, from `model_type`, else from `architectures`; never a silent guess."""
    model_type = config.get("model_type")
    if isinstance(model_type, str) and model_type in MODEL_TYPE_PRESETS:
        return MODEL_TYPE_PRESETS[model_type]
    archs = config.get("architectures")
    if isinstance(archs, list):
        for a in archs:
            if isinstance(a, str) and a in _ARCHITECTURE_PRESETS:
                return _ARCHITECTURE_PRESETS[a]
    what = f"model_type {model_type!r}" if model_type is not None else "a config without model_type"
    raise UsageError(
        f"no preset for {what}; known model types: {', '.join(KNOWN_MODEL_TYPES)} "
        "(or pass --arch and the sizes as flags)",
        path=path,
        rule="model-type",
    )


def _reject_constant(token: str) -> float:
    raise ValueError(f"{token} is not valid JSON")


def parse_config(raw: bytes, *, path: str | None = None) -> dict[str, Any]:
    """Parse config.json bytes: strict JSON (no NaN/Infinity), an object at the top, bounded nesting."""
    try:
        text = raw.decode("utf-8-sig")
        doc = json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise MalformedFileError("config.json is not UTF-8 text", path=path, rule="config-json") from None
    except RecursionError:
        raise MalformedFileError("config.json nests too deeply", path=path, rule="config-json") from None
    except ValueError as exc:
        raise MalformedFileError(f"config.json is not valid JSON: {exc}", path=path, rule="config-json") from None
    if not isinstance(doc, dict):
        raise MalformedFileError("config.json must hold a JSON object", path=path, rule="config-shape")
    return doc
