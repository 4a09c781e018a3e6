"""Hyperparameters of a transformer, normalised from an HF `config.json` or from command-line flags.

One frozen `HParams` record is what `mi params` and `mi memory` compute from. Config files spell the same
quantity differently per model family (gpt2 `n_embd`, t5 `d_model`, chatglm `num_layers`, falcon
`n_embed`…); `HParams.from_config` maps them onto one set of names and says which key was missing when a
required one is absent. Pure Python: no torch / transformers import on this path.

What differs between families (their spellings, transformers' defaults, the meaning of their switches) lives in
the family records of `analysis/families/`; this module applies them. Public names: `HParams`,
`HParams.from_config`, `HParams.from_options`, `HParams.with_dtype`, `hparams_from_cli`, `parse_config`,
`preset_for_config`, `KNOWN_MODEL_TYPES`, and the properties `n_heads`, `n_kv_heads`, `d_head`, `q_dim`,
`kv_dim`, `attention_layer_types`, `dtype_name`, `get`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import MalformedFileError, UsageError
from .families import FAMILIES, family, family_for_config
from .families import KNOWN_MODEL_TYPES as KNOWN_MODEL_TYPES  # re-exported: the model types a config may name
from .families.base import head_kind, num_labels

# A config.json is a few KB; refuse anything absurd before reading it (bounded memory on bad input).
MAX_CONFIG_BYTES = 16 * 1024 * 1024

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
_REQUIRED = ("vocab", "d_model", "layers")


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
            is_encoder_only=family(arch).encoder_only,
            is_encoder_decoder=family(arch).encoder_decoder,
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
        fam = family(arch) if arch else family_for_config(config, path=path)
        preset = fam.name
        if fam.defaults is None:
            readable = sorted(f.name for f in FAMILIES if f.reads_config)
            raise UsageError(
                f"--arch {preset} cannot read a config.json; presets that can: {', '.join(readable)}",
                path=path,
                rule="arch-config",
            )
        if fam.lift is not None:
            config = {**fam.lift(config), **config}
        keys = {**_COMMON_KEYS, **fam.keys}
        # A default fills a key only when the config does not have it. A key present with value null means what
        # transformers means by it (`sliding_window: null` is no window), never "use the default".
        aliases = {k: names for names in keys.values() for k in names}
        defaults = {k: v for k, v in fam.defaults.items() if all(a not in config for a in aliases.get(k, (k,)))}
        defaults_used = tuple(sorted(defaults))
        config = {**defaults, **config}

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
        # Switches that add modules the family's builder does not model: refused, never silently miscounted.
        for key in fam.unsupported:
            if config.get(key):
                raise UsageError(
                    f"config sets {key!r} ({config[key]!r}), which adds modules the {preset} preset does not count",
                    path=path,
                    rule="config-unsupported",
                )
        archs_raw = config.get("architectures")
        archs = tuple(a for a in archs_raw if isinstance(a, str)) if isinstance(archs_raw, list) else ()
        layer_types_raw = config.get("layer_types")
        read: dict[str, Any] = {
            "kv_heads": values["kv_heads"],
            "layers": values["layers"],
            "encoder_layers": None,
            "decoder_layers": None,
            "bias": None,
            "qkv_bias": None,
            "sliding_window": config.get("sliding_window"),
            "layer_types": tuple(layer_types_raw)
            if isinstance(layer_types_raw, list) and all(isinstance(t, str) for t in layer_types_raw)
            else None,
        }
        num_experts = config.get("num_local_experts") or config.get("num_experts")
        experts_per_token = config.get("num_experts_per_tok")
        # A family's reader may replace these (DeepSeek's n_routed_experts, DBRX's nested ffn_config).
        read["d_ff"] = values["d_ff"]
        read["num_experts"] = num_experts if _is_int(num_experts) else None
        read["experts_per_token"] = experts_per_token if _is_int(experts_per_token) else None
        tied_raw = config.get("tie_word_embeddings")
        read["tied"] = bool(tied_raw) if tied_raw is not None else fam.tied
        extras: dict[str, Any] = {}
        if fam.read is not None:
            context = {**values, "path": path, "architectures": archs}
            update = fam.read(config, context)
            extras = dict(update.pop("extras", {}))
            read.update(update)

        if fam.heads == "generic" and head_kind(archs)[0] in ("seq-cls", "token-cls"):
            extras.setdefault("num_labels", num_labels(config))
        sliding = read["sliding_window"]
        dtype_raw = config.get("torch_dtype") or config.get("dtype")
        torch_dtype = _dtype_name(dtype_raw, path=path) if isinstance(dtype_raw, str) else None
        hp = cls(
            arch=preset,
            vocab=values["vocab"],
            d_model=values["d_model"],
            layers=read["layers"],
            heads=values["heads"],
            kv_heads=read["kv_heads"],
            head_dim=values["head_dim"],
            d_ff=read["d_ff"],
            max_positions=values["max_positions"],
            tied=read["tied"],
            bias=read["bias"],
            qkv_bias=read["qkv_bias"],
            encoder_layers=read["encoder_layers"],
            decoder_layers=read["decoder_layers"],
            is_encoder_only=fam.encoder_only,
            is_encoder_decoder=bool(config.get("is_encoder_decoder", fam.encoder_decoder)),
            sliding_window=sliding
            if isinstance(sliding, int) and not isinstance(sliding, bool) and sliding > 0
            else None,
            layer_types=read["layer_types"],
            num_experts=read["num_experts"],
            experts_per_token=read["experts_per_token"],
            torch_dtype=torch_dtype,
            model_type=config.get("model_type") if isinstance(config.get("model_type"), str) else None,
            architectures=archs,
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
    return family_for_config(config, path=path).name


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
