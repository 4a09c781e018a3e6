"""Encoder-decoders, vision towers and composite configs: mt5, bart, whisper, clip, vit, llava, qwen2_vl, gemma3.

The encoder-decoders reproduce transformers' `…ForConditionalGeneration` classes; mt5 composes the t5 record of
`classic.py`. The vision towers (CLIP, SigLIP, ViT, Qwen2-VL's) are shared blocks. A composite config
(`text_config` / `vision_config`) is counted as one model: its vision tower, its projector and its text model,
each term prefixed with its component (`vision: …`, `projector: …`, `text: …`); the text model is counted by its
own family record (llama, qwen2, …), read from the nested config with `HParams.from_config`. The nested configs
stay in `extras` (`text_config`, `vision_config`: the dicts as the config.json gives them); `lift` hands the text
model's sizes to the top level, where `HParams` keeps them (vocab, d_model, layers, heads, …).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ...errors import InspectError, MalformedFileError, UsageError
from . import classic
from .base import REGISTRY, Build, Family, MemoryFacts, dff, layer_re, lin, lm_head, reject

if TYPE_CHECKING:
    from ..hparams import HParams


# ---- reading nested configs ---------------------------------------------------------------------------------

# transformers 5.24's config-class defaults of the sub-configs a composite config may hold (keys absent from the
# nested dict take them, as `SubConfigSpec.create_subconfig` does).
_CLIP_TEXT = {"vocab_size": 49408, "hidden_size": 512, "intermediate_size": 2048, "projection_dim": 512,
              "num_hidden_layers": 12, "num_attention_heads": 8, "max_position_embeddings": 77}  # fmt: skip
_CLIP_VISION = {"hidden_size": 768, "intermediate_size": 3072, "projection_dim": 512, "num_hidden_layers": 12,
                "num_attention_heads": 12, "num_channels": 3, "image_size": 224, "patch_size": 32}  # fmt: skip
# LlavaConfig's `vision_config` when the config has none (CLIP ViT-L/14 at 336 px).
_LLAVA_VISION = {**_CLIP_VISION, "intermediate_size": 4096, "hidden_size": 1024, "patch_size": 14, "image_size": 336,
                 "num_hidden_layers": 24, "num_attention_heads": 16, "projection_dim": 768}  # fmt: skip
_SIGLIP_VISION = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
                  "num_channels": 3, "image_size": 224, "patch_size": 16, "vision_use_head": True}  # fmt: skip
_QWEN2_VL_VISION = {"depth": 32, "embed_dim": 1280, "hidden_size": 3584, "mlp_ratio": 4, "num_heads": 16,
                    "in_channels": 3, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}  # fmt: skip
_QWEN2_VL_TEXT = {"vocab_size": 152064, "hidden_size": 8192, "intermediate_size": 29568, "num_hidden_layers": 80,
                  "num_attention_heads": 64, "num_key_value_heads": 8, "max_position_embeddings": 32768,
                  "use_sliding_window": False, "sliding_window": 4096, "max_window_layers": 80}  # fmt: skip
_GEMMA3_TEXT = {"vocab_size": 262208, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
                "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "max_position_embeddings": 131072,
                "attention_bias": False, "sliding_window": 4096, "tie_word_embeddings": True}  # fmt: skip
# Text models of composite configs: the config-class defaults of the sizes a config.json may leave out (the family
# record supplies the rest), and the family record that counts a text model_type the registry does not name.
# fmt: off
_TEXT_DEFAULTS: dict[str, dict[str, Any]] = {
    "llama": {"vocab_size": 32000, "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
              "intermediate_size": 11008, "max_position_embeddings": 2048, "tie_word_embeddings": False},
    "mistral": {"vocab_size": 32000, "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
                "num_key_value_heads": 8, "intermediate_size": 14336, "max_position_embeddings": 4096 * 32,
                "tie_word_embeddings": False},
    "qwen2": {"vocab_size": 151936, "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
              "num_key_value_heads": 32, "intermediate_size": 22016, "max_position_embeddings": 32768,
              "tie_word_embeddings": False},
    "qwen2_vl_text": _QWEN2_VL_TEXT,
    "gemma3_text": _GEMMA3_TEXT,
}
# fmt: on
_TEXT_AS = {"qwen2_vl_text": "qwen2"}  # Qwen2VLTextModel is Qwen2's decoder (q/k/v bias, RMSNorm, SwiGLU)
# What a flat (pre-v5) Qwen2-VL config.json keeps at the top level for its text model.
_QWEN2_VL_TEXT_KEYS = (*_QWEN2_VL_TEXT, "hidden_act", "rms_norm_eps", "layer_types", "attention_dropout",
                       "rope_parameters", "rope_scaling", "rope_theta", "tie_word_embeddings")  # fmt: skip
# The sizes `lift` hands from the text model to the top level of a composite config.
_LIFTED = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
           "head_dim", "intermediate_size", "max_position_embeddings")  # fmt: skip


def _nested(config: Mapping[str, Any], key: str, *, path: str | None = None) -> dict[str, Any]:
    """A nested config as the config.json gives it ({} when absent), without its label tables."""
    raw = config.get(key)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise MalformedFileError(f"config key {key!r} must be a JSON object", path=path, rule="config-key")
    return {k: v for k, v in raw.items() if k not in ("id2label", "label2id")}


def _int(cfg: Mapping[str, Any], key: str, where: str, path: str | None, *, zero_ok: bool = False) -> int:
    """A size from a (merged) nested config: a positive integer, else exit 2 naming `where.key`."""
    value = cfg.get(key)
    name = f"{where}.{key}" if where else key
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or (value == 0 and not zero_ok):
        raise MalformedFileError(
            f"config key {name!r} must be a {'non-negative' if zero_ok else 'positive'} integer, got {value!r}",
            path=path,
            rule="config-key",
        )
    return value


def _divides(heads: int, width: int, heads_key: str, width_key: str, path: str | None) -> None:
    if width % heads:
        raise UsageError(f"{heads_key} ({heads}) must divide {width_key} ({width})", path=path, rule="heads-divide")


def _num_labels(config: Mapping[str, Any]) -> int:
    """transformers' `num_labels`: the size of `id2label` when given, else `num_labels`, else 2."""
    labels = config.get("id2label")
    if isinstance(labels, Mapping) and labels:
        return len(labels)
    n = config.get("num_labels")
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else 2


def _head(v: Mapping[str, Any], heads: Mapping[str, str], default: str) -> dict[str, Any]:
    """The head `architectures` names (the first one this family knows), else `default`; an unknown name is kept
    so the builder can say what it counted instead."""
    names = v["architectures"]
    for a in names:
        if a in heads:
            return {"head": heads[a]}
    return {"head": default, **({"unknown_head": names[0]} if names else {})}


def _warn_unknown_head(hp: HParams, b: Build, counted: str) -> None:
    unknown = hp.get("unknown_head")
    if unknown:
        b.assumptions.append(
            f"architectures names {unknown}, which the {hp.arch} preset does not model: counted {counted}"
        )


def _config_only(hp: HParams, key: str) -> Mapping[str, Any]:
    """The nested config a composite builder reads; from flags there is none: a usage error."""
    nested = hp.get(key)
    if nested is None:
        raise UsageError(
            f"--arch {hp.arch} has no flag form: its components have sizes of their own (give --config config.json)",
            path=hp.path,
            rule="arch-config",
        )
    return dict(nested)


def _with_defaults(nested: Mapping[str, Any], defaults: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The nested config with the config class's defaults under it, and the keys the defaults supplied."""
    return {**defaults, **nested}, sorted(k for k in defaults if k not in nested)


def _merge(b: Build, label: str, sub: Build, defaulted: Sequence[str] = ()) -> None:
    """A component's terms, assumptions and LoRA targets in the whole model's accounting, named `label: …`."""
    b.terms.extend(replace(t, name=f"{label}: {t.name}") for t in sub.terms)
    b.linears.extend(sub.linears)
    b.assumptions.extend(f"{label}: {a}" for a in sub.assumptions)
    if defaulted:
        b.assumptions.append(f"{label}: {', '.join(defaulted)} not in the config: transformers' defaults used")
    b.is_moe = b.is_moe or sub.is_moe


def _drop_lm_head(sub: Build) -> None:
    """A base `…Model`: the builder's lm_head term, LoRA target and tying note left out."""
    sub.terms = [t for t in sub.terms if t.name != "lm_head"]
    sub.linears = [x for x in sub.linears if x.name != "lm_head"]
    sub.assumptions = [a for a in sub.assumptions if not a.startswith("lm_head")]


def _head_term(b: Build, name: str, d: int, v: int, tied: bool) -> None:
    """An output projection d → v without bias, tied to the token embedding or not (as `base.lm_head`)."""
    b.linear(name, d, v, 1)
    pat = (rf"(^|\.){name}\.",)
    if tied:
        b.term(name, 0, 1, "tied to the embedding", pat, keep=True)
        b.assumptions.append(f"{name} weight tied to the token embedding (counted once)")
    else:
        b.term(name, v * d, 1, "vocab·d", pat)


# ---- shared blocks: encoder layers and vision towers --------------------------------------------------------


def _clip_layers(b: Build, d: int, ff: int, n: int, at: str) -> None:
    """CLIP / SigLIP encoder layers: q/k/v/out with biases, fc1/fc2 with biases, layer_norm1/2."""
    b.term("attention", 4 * lin(d, d, True), n, "4·d² + 4d", (at + r"self_attn\.",))
    b.term("mlp", lin(d, ff, True) + lin(ff, d, True), n, "2·d·d_ff + d_ff + d", (at + r"mlp\.",))
    b.term("norms", 2 * 2 * d, n, "2 LayerNorm", (at + r"layer_norm[12]\.",))
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        b.linear(name, d, d, n)
    b.linear("fc1", d, ff, n)
    b.linear("fc2", ff, d, n)


def _vision_sizes(v: Mapping[str, Any], path: str | None, where: str = "vision_config") -> tuple[int, int, int, int]:
    d = _int(v, "hidden_size", where, path)
    heads = _int(v, "num_attention_heads", where, path)
    _divides(heads, d, f"{where}.num_attention_heads", f"{where}.hidden_size", path)
    return d, _int(v, "intermediate_size", where, path), _int(v, "num_hidden_layers", where, path, zero_ok=True), heads


def _patches(v: Mapping[str, Any], where: str, path: str | None) -> tuple[int, int, int]:
    """(patch size, channels, patches per image) of a square-image tower (CLIP, SigLIP)."""
    p = _int(v, "patch_size", where, path)
    img = _int(v, "image_size", where, path)
    return p, _int(v, "num_channels", where, path), (img // p) ** 2


def _clip_vision(b: Build, v: Mapping[str, Any], pre: str, path: str | None) -> int:
    """transformers CLIPVisionTransformer: class token, patch conv without bias, positions (patches + 1),
    pre-LayerNorm (`pre_layrnorm`), encoder, post-LayerNorm. Returns the tower's width."""
    d, ff, n, _ = _vision_sizes(v, path)
    p, c, patches = _patches(v, "vision_config", path)
    b.term("class embedding", d, 1, "d", (pre + r"embeddings\.class_embedding",))
    b.term(
        "patch embedding",
        c * p * p * d,
        1,
        "channels·patch²·d (conv, no bias)",
        (pre + r"embeddings\.patch_embedding\.",),
    )
    b.term("position embedding", (patches + 1) * d, 1, "(patches + 1)·d", (pre + r"embeddings\.position_embedding\.",))
    b.term("pre-norm", 2 * d, 1, "LayerNorm", (pre + r"pre_layrnorm\.",))
    _clip_layers(b, d, ff, n, pre + r"encoder\.layers\.\d+\.")
    b.term("post-norm", 2 * d, 1, "LayerNorm", (pre + r"post_layernorm\.",))
    b.assumptions.append(f"{n} layers of width {d:,}, {patches:,} patches of {p}×{p} px + the class token")
    return d


def _siglip_vision(b: Build, v: Mapping[str, Any], pre: str, path: str | None) -> int:
    """transformers SiglipVisionModel: patch conv with bias, positions (one per patch, no class token), encoder,
    post-LayerNorm and, with `vision_use_head`, the attention-pooling head. Returns the tower's width."""
    d, ff, n, _ = _vision_sizes(v, path)
    p, c, patches = _patches(v, "vision_config", path)
    b.term(
        "patch embedding",
        c * p * p * d + d,
        1,
        "channels·patch²·d + d (conv)",
        (pre + r"embeddings\.patch_embedding\.",),
    )
    b.term("position embedding", patches * d, 1, "patches·d", (pre + r"embeddings\.position_embedding\.",))
    _clip_layers(b, d, ff, n, pre + r"encoder\.layers\.\d+\.")
    b.term("post-norm", 2 * d, 1, "LayerNorm", (pre + r"post_layernorm\.",))
    if v.get("vision_use_head", True):
        # probe, nn.MultiheadAttention (in_proj 3d×d + 3d, out_proj d² + d), LayerNorm, MLP
        head = d + 4 * d * d + 4 * d + 2 * d + lin(d, ff, True) + lin(ff, d, True)
        b.term("pooling head", head, 1, "d + 4·d² + 4d + 2d + mlp", (pre + r"head\.",))
    b.assumptions.append(f"{n} layers of width {d:,}, {patches:,} patches of {p}×{p} px")
    return d


def _qwen2_vision(b: Build, v: Mapping[str, Any], path: str | None) -> None:
    """transformers Qwen2VisionTransformerPretrainedModel: Conv3d patch embedding without bias, `depth` blocks
    (LayerNorm, fused qkv with bias, proj, fc1/fc2), and the PatchMerger (LayerNorm, two Linears over the
    spatial_merge_size² merged patches) to the text width. Its rotary positions are buffers."""
    w = "vision_config"
    e = _int(v, "embed_dim", w, path)
    out = _int(v, "hidden_size", w, path)
    n = _int(v, "depth", w, path, zero_ok=True)
    heads = _int(v, "num_heads", w, path)
    _divides(heads, e, f"{w}.num_heads", f"{w}.embed_dim", path)
    c, p, t = _int(v, "in_channels", w, path), _int(v, "patch_size", w, path), _int(v, "temporal_patch_size", w, path)
    m = _int(v, "spatial_merge_size", w, path)
    ratio = v.get("mlp_ratio")
    if not isinstance(ratio, int | float) or isinstance(ratio, bool) or ratio <= 0:
        raise MalformedFileError(f"config key 'vision_config.mlp_ratio' must be positive, got {ratio!r}", path=path,
                                 rule="config-key")  # fmt: skip
    ff = int(e * ratio)
    merged = e * m * m
    pre = r"(^|\.)visual\."
    b.term("patch embedding", c * t * p * p * e, 1, "channels·temporal·patch²·embed (conv, no bias)",
           (pre + r"patch_embed\.",))  # fmt: skip
    b.term("attention", lin(e, 3 * e, True) + lin(e, e, True), n, "4·e² + 4e", (pre + r"blocks\.\d+\.attn\.",))
    b.term("mlp", lin(e, ff, True) + lin(ff, e, True), n, "2·e·mlp_ratio·e + biases", (pre + r"blocks\.\d+\.mlp\.",))
    b.term("norms", 2 * 2 * e, n, "2 LayerNorm", (pre + r"blocks\.\d+\.norm[12]\.",))
    b.term(
        "merger",
        2 * e + lin(merged, merged, True) + lin(merged, out, True),
        1,
        "LayerNorm + (e·merge²)² + e·merge²·d_text + biases",
        (pre + r"merger\.",),
    )
    b.linear("qkv", e, 3 * e, n)
    b.linear("proj", e, e, n)
    b.linear("fc1", e, ff, n)
    b.linear("fc2", ff, e, n)
    b.assumptions.append(f"{n} blocks of width {e:,}, {p}×{p}×{t} patches merged {m}×{m} into width {out:,}")


def _by_model_type(model_type: str) -> Family | None:
    return next((f for f in REGISTRY.values() if model_type in f.model_types), None)


def _text_part(b: Build, hp: HParams, text: Mapping[str, Any], *, tied: bool, head: bool) -> None:
    """The text model of a composite config, counted by its family record, its terms named `text: …`.

    The registry's record for the nested `model_type` counts it when there is one (read with `HParams.from_config`
    like a config.json of its own); Qwen2-VL's text model is Qwen2's decoder; Gemma 3's (`gemma3_text`) is
    counted here while the registry has no record for it.
    """
    mt, path = str(text.get("model_type")), hp.path
    merged, defaulted = _with_defaults(text, _TEXT_DEFAULTS.get(mt, {}))
    sub = Build()
    if _by_model_type(mt) is not None or mt in _TEXT_AS:
        try:  # type(hp): HParams, without importing hparams (which imports the registry, which imports this)
            thp = type(hp).from_config(merged, path=path, arch=_TEXT_AS.get(mt))
        except InspectError as exc:  # say which config: the nested one
            raise type(exc)(f"text_config: {exc.message}", path=exc.path, rule=exc.rule) from None
        thp = replace(thp, tied=tied)
        REGISTRY[thp.arch].build(thp, sub)
        defaulted = sorted({*defaulted, *thp.defaults_used})
    elif mt == "gemma3_text":
        _gemma3_text(sub, merged, tied, path)
    else:
        raise UsageError(
            f"text_config has model_type {mt!r}, which no preset counts; known: "
            + ", ".join(sorted(t for f in REGISTRY.values() for t in f.model_types if t.islower())),
            path=path,
            rule="model-type",
        )
    # The composite config decides the tying (its top-level flag, or the text config's when it says so).
    defaulted = [k for k in defaulted if k != "tie_word_embeddings"]
    if not head:  # the base …Model: no output projection
        _drop_lm_head(sub)
    _merge(b, "text", sub, defaulted)


def _gemma3_text(b: Build, t: Mapping[str, Any], tied: bool, path: str | None) -> None:
    """transformers Gemma3TextModel (+ lm_head): q/k/v/o (attention_bias), q/k RMSNorms over head_dim, SwiGLU MLP,
    four RMSNorms per layer (input, post-attention, pre- and post-feed-forward), final RMSNorm."""
    w = "text_config"
    d, v = _int(t, "hidden_size", w, path), _int(t, "vocab_size", w, path)
    n, ff = _int(t, "num_hidden_layers", w, path, zero_ok=True), _int(t, "intermediate_size", w, path)
    h, kv = _int(t, "num_attention_heads", w, path), _int(t, "num_key_value_heads", w, path)
    _divides(h, d, f"{w}.num_attention_heads", f"{w}.hidden_size", path)  # Gemma3TextConfig refuses it too
    _divides(kv, h, f"{w}.num_key_value_heads", f"{w}.num_attention_heads", path)
    hd = _int(t, "head_dim", w, path)
    bias = bool(t.get("attention_bias", False))
    q, k = h * hd, kv * hd
    b.term("embedding", v * d, 1, "vocab·d", (r"embed_tokens\.",))
    b.term(
        "attention",
        lin(d, q, bias) + 2 * lin(d, k, bias) + lin(q, d, bias) + 2 * hd,
        n,
        "d·(2·heads + 2·kv_heads)·head_dim + q/k norms",
        (layer_re("layers", r"\d+", "self_attn"),),
    )
    b.term("mlp", 3 * d * ff, n, "3·d·d_ff", (layer_re("layers", r"\d+", "mlp"),))
    b.term(
        "norms",
        4 * d,
        n,
        "4 RMSNorm",
        (layer_re("layers", r"\d+", r"(input|post_attention|pre_feedforward|post_feedforward)_layernorm"),),
    )
    b.term("final norm", d, 1, "RMSNorm", (r"(^|\.)norm\.weight$",))
    _head_term(b, "lm_head", d, v, tied)
    for name, d_in, d_out in (("q_proj", d, q), ("k_proj", d, k), ("v_proj", d, k), ("o_proj", q, d),
                              ("gate_proj", d, ff), ("up_proj", d, ff), ("down_proj", ff, d)):  # fmt: skip
        b.linear(name, d_in, d_out, n)
    if kv != h:
        b.assumptions.append(f"grouped-query attention: {h} query heads share {kv} key/value heads")


def _text_tied(text: Mapping[str, Any]) -> bool:
    """The text config's own tie_word_embeddings (its config class's default when absent)."""
    if text.get("tie_word_embeddings") is not None:
        return bool(text["tie_word_embeddings"])
    mt = str(text.get("model_type"))
    if mt in _TEXT_DEFAULTS:
        return bool(_TEXT_DEFAULTS[mt].get("tie_word_embeddings", False))
    fam = _by_model_type(mt)
    return bool(fam is not None and fam.tied)


def _check_text(text: Mapping[str, Any], path: str | None) -> None:
    """The nested text config's heads against its width, named as the config spells them (the whole text model is
    read by its own record when the model is counted)."""
    t = {**_TEXT_DEFAULTS.get(str(text.get("model_type")), {}), **text}
    w = "text_config"
    if t.get("num_attention_heads") is None:  # its record's default, checked when the text model is read
        return
    heads = _int(t, "num_attention_heads", w, path)
    if t.get("head_dim") is None and t.get("hidden_size") is not None:
        _divides(heads, _int(t, "hidden_size", w, path), f"{w}.num_attention_heads", f"{w}.hidden_size", path)
    if t.get("num_key_value_heads") is not None:
        kv = _int(t, "num_key_value_heads", w, path)
        _divides(kv, heads, f"{w}.num_key_value_heads", f"{w}.num_attention_heads", path)


def _lift_from(text_key: str, default_type: str) -> Callable[[Mapping[str, Any]], Mapping[str, Any]]:
    """`lift` for a composite config: the text model's sizes (its config class's defaults under the nested dict)."""

    def lift(config: Mapping[str, Any]) -> Mapping[str, Any]:
        raw = config.get(text_key)
        text = {"model_type": default_type, **raw} if isinstance(raw, Mapping) else {"model_type": default_type}
        merged, _ = _with_defaults(text, _TEXT_DEFAULTS.get(str(text["model_type"]), {}))
        return {k: merged[k] for k in _LIFTED if merged.get(k) is not None}

    return lift


# ---- mt5 ----------------------------------------------------------------------------------------------------

_T5 = next(f for f in classic.FAMILIES if f.name == "t5")
_MT5_HEADS = {"MT5ForConditionalGeneration": "seq2seq", "MT5Model": "base"}


def _mt5(hp: HParams, b: Build) -> None:
    """transformers MT5ForConditionalGeneration: the t5 builder with mT5's gated-gelu feed-forward (d_ff 1024)."""
    extras = dict(hp.extras)
    extras.setdefault("gated", True)  # from flags: mT5 is gated-gelu
    mhp = replace(hp, d_ff=dff(hp, 1024), extras=tuple(sorted(extras.items())))
    if hp.d_ff is None:
        b.assumptions.append("d_ff = 1,024 (MT5Config default)")
    sub = Build()
    _T5.build(mhp, sub)
    if hp.get("head") == "base":  # MT5Model: no lm_head (tied, so the count is the same; LoRA cannot target it)
        _drop_lm_head(sub)
        sub.assumptions.append("MT5Model: no lm_head")
    b.terms.extend(sub.terms)
    b.linears.extend(sub.linears)
    b.assumptions.extend(sub.assumptions)
    _warn_unknown_head(hp, b, "as MT5ForConditionalGeneration")


def _read_mt5(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    out = _T5.read(config, v) if _T5.read is not None else {}
    out["extras"] = {**out.get("extras", {}), **_head(v, _MT5_HEADS, "seq2seq")}
    return out


# ---- bart ---------------------------------------------------------------------------------------------------

_BART_HEADS = {"BartForConditionalGeneration": "seq2seq", "BartModel": "base",
               "BartForSequenceClassification": "classification", "BartForQuestionAnswering": "qa"}  # fmt: skip


def _seq2seq_attention(b: Build, side: str, what: str, each: int, n: int, module: str, formula: str) -> None:
    b.term(f"{side} {what}", each, n, formula, (layer_re(side, "layers", r"\d+", module),))


def _bart(hp: HParams, b: Build) -> None:
    """transformers BartForConditionalGeneration: one shared embedding (tied to lm_head), learned positions with
    OPT's offset of 2 rows, layernorm_embedding on each side, post-norm layers with biases; final_logits_bias is a
    buffer. BartModel drops the lm_head; …ForSequenceClassification / …ForQuestionAnswering add their heads."""
    reject(hp, kv_heads=hp.kv_heads, head_dim=hp.head_dim, bias=hp.bias)
    d, v = hp.d_model, hp.vocab
    ne = hp.encoder_layers if hp.encoder_layers is not None else hp.layers
    nd = hp.decoder_layers if hp.decoder_layers is not None else hp.layers
    ffd = dff(hp, 4096)
    ffe = int(hp.get("encoder_ffn_dim") or ffd)
    p = (hp.max_positions if hp.max_positions is not None else 1024) + 2
    head = str(hp.get("head", "seq2seq"))
    attn = 4 * lin(d, d, True)
    tied = hp.tied if hp.tied is not None else True
    if tied:
        b.term("shared embedding", v * d, 1, "vocab·d (encoder and decoder embed_tokens share it)",
               (r"(^|\.)shared\.", r"embed_tokens\."))  # fmt: skip
    else:  # transformers 5 unties every pair of _tied_weights_keys: shared, both embed_tokens and lm_head
        b.term("shared embedding", v * d, 1, "vocab·d", (r"(^|\.)shared\.",))
        b.term("token embeddings (untied)", v * d, 2, "vocab·d (encoder and decoder embed_tokens)",
               (r"(^|\.)(en|de)coder\.embed_tokens\.",))  # fmt: skip
        b.assumptions.append("tie_word_embeddings false: shared, the encoder's and the decoder's embed_tokens and "
                             "lm_head are separate matrices")  # fmt: skip
    for side, n, ff, norms in (("encoder", ne, ffe, 2), ("decoder", nd, ffd, 3)):
        b.term(f"{side} positions", p * d, 1, "(max_positions + 2)·d", (rf"{side}\.embed_positions\.",))
        b.term(f"{side} embedding norm", 2 * d, 1, "LayerNorm", (rf"{side}\.layernorm_embedding\.",))
        _seq2seq_attention(b, side, "self-attention", attn, n, "self_attn", "4·d² + 4d")
        if side == "decoder":
            _seq2seq_attention(b, side, "cross-attention", attn, n, "encoder_attn", "4·d² + 4d")
        b.term(f"{side} mlp", lin(d, ff, True) + lin(ff, d, True), n, "2·d·d_ff + d_ff + d",
               (layer_re(side, "layers", r"\d+", r"fc[12]"),))  # fmt: skip
        b.term(f"{side} norms", norms * 2 * d, n, f"{norms} LayerNorm",
               (layer_re(side, "layers", r"\d+", r"\w*layer_norm"),))  # fmt: skip
        b.linear("fc1", d, ff, n)
        b.linear("fc2", ff, d, n)
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        b.linear(name, d, d, ne + 2 * nd)
    labels = int(hp.get("num_labels", 2))
    if head == "seq2seq":
        lm_head(b, hp, tied)
        b.assumptions.append("final_logits_bias is a buffer (1 × vocab), not a parameter")
    elif head == "classification":
        b.term("classification head", lin(d, d, True) + lin(d, labels, True), 1, "d² + d + (d + 1)·labels",
               (r"(^|\.)classification_head\.",))  # fmt: skip
        b.linear("dense", d, d, 1)
        b.linear("out_proj", d, labels, 1)
        b.assumptions.append(f"classification head over {labels} labels")
    elif head == "qa":
        b.term("qa outputs", lin(d, labels, True), 1, "(d + 1)·labels", (r"(^|\.)qa_outputs\.",))
        b.linear("qa_outputs", d, labels, 1)
    else:
        b.assumptions.append("BartModel: no lm_head")
    if hp.get("encoder_ffn_dim") is None and hp.d_ff is None:
        b.assumptions.append("d_ff = 4,096 (BartConfig default encoder/decoder_ffn_dim)")
    _warn_unknown_head(hp, b, "as BartForConditionalGeneration")


def _read_seq2seq_heads(config: Mapping[str, Any], v: dict[str, Any], d_key: str) -> dict[str, Any]:
    """Encoder and decoder depths of a bart-like config; encoder heads must divide d (the decoder's are checked
    by `HParams.validate`)."""
    enc = _int(config, "encoder_layers", "", v["path"], zero_ok=True)
    dec = _int(config, "decoder_layers", "", v["path"], zero_ok=True)
    for key in ("encoder_attention_heads", "decoder_attention_heads"):
        _divides(_int(config, key, "", v["path"]), v["d_model"], key, d_key, v["path"])
    return {"encoder_layers": enc, "decoder_layers": dec, "layers": dec}


def _read_bart(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    extras: dict[str, Any] = {"encoder_ffn_dim": _int(config, "encoder_ffn_dim", "", v["path"]),
                              **_head(v, _BART_HEADS, "seq2seq")}  # fmt: skip
    if extras["head"] in ("classification", "qa"):
        extras["num_labels"] = _num_labels(config)
    return {**_read_seq2seq_heads(config, v, "d_model"), "extras": extras}


# ---- whisper ------------------------------------------------------------------------------------------------

_WHISPER_HEADS = {"WhisperForConditionalGeneration": "seq2seq", "WhisperModel": "base",
                  "WhisperForAudioClassification": "audio-classification"}  # fmt: skip


def _whisper(hp: HParams, b: Build) -> None:
    """transformers WhisperForConditionalGeneration: conv1/conv2 front-end over the mel bins, encoder positions (an
    nn.Embedding frozen with requires_grad_(False), still a parameter), learned decoder positions, attention with
    k_proj unbiased, pre-norm layers with final LayerNorms, proj_out tied to the token embedding."""
    reject(hp, kv_heads=hp.kv_heads, head_dim=hp.head_dim, bias=hp.bias)
    d, v = hp.d_model, hp.vocab
    ne = hp.encoder_layers if hp.encoder_layers is not None else hp.layers
    nd = hp.decoder_layers if hp.decoder_layers is not None else hp.layers
    ffd = dff(hp, 1536)
    ffe = int(hp.get("encoder_ffn_dim") or ffd)
    mels = int(hp.get("num_mel_bins", 80))
    src = int(hp.get("max_source_positions", 1500))
    tgt = hp.max_positions if hp.max_positions is not None else 448
    head = str(hp.get("head", "seq2seq"))
    attn = 4 * d * d + 3 * d  # q, v, out with bias; k without
    decoder = head != "audio-classification"
    b.term("conv front-end", mels * d * 3 + d + d * d * 3 + d, 1, "mel·d·3 + d + d²·3 + d (conv1, conv2)",
           (r"encoder\.conv[12]\.",))  # fmt: skip
    b.term("encoder positions", src * d, 1, "max_source_positions·d", (r"encoder\.embed_positions\.",))
    sides = (("encoder", ne, ffe, 2), ("decoder", nd, ffd, 3)) if decoder else (("encoder", ne, ffe, 2),)
    if decoder:
        b.term("token embedding", v * d, 1, "vocab·d", (r"decoder\.embed_tokens\.",))
        b.term("decoder positions", tgt * d, 1, "max_target_positions·d", (r"decoder\.embed_positions\.",))
    for side, n, ff, norms in sides:
        _seq2seq_attention(b, side, "self-attention", attn, n, "self_attn", "4·d² + 3d (k_proj without bias)")
        if side == "decoder":
            _seq2seq_attention(b, side, "cross-attention", attn, n, "encoder_attn", "4·d² + 3d (k_proj without bias)")
        b.term(f"{side} mlp", lin(d, ff, True) + lin(ff, d, True), n, "2·d·d_ff + d_ff + d",
               (layer_re(side, "layers", r"\d+", r"fc[12]"),))  # fmt: skip
        b.term(f"{side} norms", norms * 2 * d, n, f"{norms} LayerNorm",
               (layer_re(side, "layers", r"\d+", r"\w*layer_norm"),))  # fmt: skip
        b.term(f"{side} final norm", 2 * d, 1, "LayerNorm", (rf"{side}\.layer_norm\.",))
        b.linear("fc1", d, ff, n)
        b.linear("fc2", ff, d, n)
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        b.linear(name, d, d, ne + (2 * nd if decoder else 0))
    if head == "seq2seq":
        lm_head(b, hp, hp.tied if hp.tied is not None else True, name="proj_out")
    elif head == "audio-classification":
        proj, labels = int(hp.get("classifier_proj_size", 256)), int(hp.get("num_labels", 2))
        weights = ne + 1 if hp.get("use_weighted_layer_sum") else 0
        b.term("classifier", lin(d, proj, True) + lin(proj, labels, True) + weights, 1,
               "projector + classifier" + (" + layer weights" if weights else ""),
               (r"(^|\.)(projector|classifier)\.", r"(^|\.)layer_weights$"))  # fmt: skip
        b.linear("projector", d, proj, 1)
        b.linear("classifier", proj, labels, 1)
        b.assumptions.append(f"WhisperForAudioClassification: the encoder and a {labels}-label classifier")
    else:
        b.assumptions.append("WhisperModel: no proj_out")
    b.assumptions.append(f"{mels} mel bins, {src:,} encoder positions (sinusoidal values, stored as a parameter)")
    _warn_unknown_head(hp, b, "as WhisperForConditionalGeneration")


def _read_whisper(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    path = v["path"]
    extras = {
        "encoder_ffn_dim": _int(config, "encoder_ffn_dim", "", path),
        "num_mel_bins": _int(config, "num_mel_bins", "", path),
        "max_source_positions": _int(config, "max_source_positions", "", path),
        **_head(v, _WHISPER_HEADS, "seq2seq"),
    }
    if extras["head"] == "audio-classification":
        extras["classifier_proj_size"] = _int({"classifier_proj_size": 256, **config}, "classifier_proj_size", "", path)
        extras["use_weighted_layer_sum"] = bool(config.get("use_weighted_layer_sum", False))
        extras["num_labels"] = _num_labels(config)
    return {**_read_seq2seq_heads(config, v, "d_model"), "extras": extras}


# ---- vit ----------------------------------------------------------------------------------------------------

_VIT_HEADS = {"ViTModel": "base", "ViTForImageClassification": "classification"}


def _pair(value: Any, key: str, path: str | None) -> tuple[int, int]:
    if isinstance(value, list | tuple) and len(value) == 2:
        return _int({"v": value[0]}, "v", key, path), _int({"v": value[1]}, "v", key, path)
    n = _int({key: value}, key, "", path)
    return n, n


def _vit(hp: HParams, b: Build) -> None:
    """transformers ViTModel (with its pooler) / ViTForImageClassification (classifier, no pooler): class token,
    positions (patches + 1, a parameter), patch conv with bias, pre-norm layers, final LayerNorm."""
    if hp.get("image_size") is None:
        raise UsageError("--arch vit has no flag form: a ViT reads pixels, not tokens (give --config config.json)",
                         path=hp.path, rule="arch-config")  # fmt: skip
    d, n = hp.d_model, hp.layers
    q = hp.q_dim
    ff = dff(hp, 3072)
    (ih, iw), (ph, pw) = hp.get("image_size"), hp.get("patch_size")
    c = int(hp.get("num_channels", 3))
    patches = (ih // ph) * (iw // pw)
    qkv_bias = bool(hp.get("qkv_bias", True))
    head = str(hp.get("head", "base"))
    at = r"(^|\.)(encoder\.)?layers?\.\d+\."  # transformers 5 `layers.N.`; files saved by 4: `encoder.layer.N.`
    b.term("class token", d, 1, "d", (r"embeddings\.cls_token",))
    b.term("position embedding", (patches + 1) * d, 1, "(patches + 1)·d", (r"embeddings\.position_embeddings",))
    b.term("patch embedding", c * ph * pw * d + d, 1, "channels·patch²·d + d (conv)",
           (r"embeddings\.patch_embeddings\.",))  # fmt: skip
    b.term("attention", 3 * lin(d, q, qkv_bias) + lin(q, d, True), n, "4·d·heads·head_dim + biases",
           (at + r"attention\.",))  # fmt: skip
    b.term("mlp", lin(d, ff, True) + lin(ff, d, True), n, "2·d·d_ff + d_ff + d",
           (at + r"mlp\.", at + r"intermediate\.", at + r"output\."))  # fmt: skip
    b.term("norms", 2 * 2 * d, n, "2 LayerNorm", (at + r"layernorm_(before|after)\.",))
    b.term("final norm", 2 * d, 1, "LayerNorm", (r"(^|\.)layernorm\.",))
    labels = int(hp.get("num_labels", 2))
    if head == "classification":
        b.term("classifier", lin(d, labels, True) if labels else 0, 1, "(d + 1)·labels", (r"(^|\.)classifier\.",))
        b.linear("classifier", d, labels, 1 if labels else 0)
        b.assumptions.append(f"ViTForImageClassification over {labels:,} labels (vocab reads as the label count)")
    else:
        po = int(hp.get("pooler_output_size") or d)
        b.term("pooler", lin(d, po, True), 1, "d·pooler + pooler", (r"(^|\.)pooler\.",))
        b.linear("dense", d, po, 1)
        b.assumptions.append("ViTModel with its pooler (no task head; vocab reads as the config's label count)")
    for name in ("q_proj", "k_proj", "v_proj"):
        b.linear(name, d, q, n)
    b.linear("o_proj", q, d, n)
    b.linear("fc1", d, ff, n)
    b.linear("fc2", ff, d, n)
    b.assumptions.append(f"{patches} patches of {ph}×{pw} px from {ih}×{iw} images, {c} channels")
    _warn_unknown_head(hp, b, "as ViTModel")


def _lift_vit(config: Mapping[str, Any]) -> Mapping[str, Any]:
    # A ViT has no token vocabulary; the label count stands in for `vocab` (the classifier's outputs).
    return {"vocab_size": max(_num_labels(config), 1)}


def _read_vit(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    path = v["path"]
    image, patch = (
        _pair(config.get("image_size"), "image_size", path),
        _pair(config.get("patch_size"), "patch_size", path),
    )
    if v["head_dim"] is None:
        _divides(v["heads"], v["d_model"], "num_attention_heads", "hidden_size", path)
    extras: dict[str, Any] = {
        "image_size": image,
        "patch_size": patch,
        "qkv_bias": bool(config.get("qkv_bias", True)),
        "num_channels": _int(config, "num_channels", "", path),
        **_head(v, _VIT_HEADS, "base"),
    }
    if extras["head"] == "classification":
        extras["num_labels"] = _num_labels(config)
    elif config.get("pooler_output_size") is not None:
        extras["pooler_output_size"] = _int(config, "pooler_output_size", "", path)
    return {"extras": extras}


# ---- clip ---------------------------------------------------------------------------------------------------


def _clip_configs(config: Mapping[str, Any], path: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """CLIPConfig's text and vision configs; the legacy `text_config_dict` / `vision_config_dict` win, as in
    transformers."""
    text = {**_nested(config, "text_config", path=path), **_nested(config, "text_config_dict", path=path)}
    vision = {**_nested(config, "vision_config", path=path), **_nested(config, "vision_config_dict", path=path)}
    return text, vision


def _clip(hp: HParams, b: Build) -> None:
    """transformers CLIPModel: the text transformer (token and position embeddings, encoder, final LayerNorm),
    the vision transformer, text_projection and visual_projection (no bias) and logit_scale."""
    text, _ = _with_defaults(_config_only(hp, "text_config"), _CLIP_TEXT)
    vision, v_def = _with_defaults(_config_only(hp, "vision_config"), _CLIP_VISION)
    t_def = sorted(k for k in _CLIP_TEXT if k not in hp.get("text_config"))
    proj = int(hp.get("projection_dim", 512))
    path = hp.path
    vb = Build()
    dv = _clip_vision(vb, vision, r"(^|\.)vision_model\.", path)
    _merge(b, "vision", vb, v_def)
    tb = Build()
    dt, ff, n, _ = _vision_sizes(text, path, "text_config")
    vocab, pos = (
        _int(text, "vocab_size", "text_config", path),
        _int(text, "max_position_embeddings", "text_config", path),
    )
    pre = r"(^|\.)text_model\."
    tb.term("token embedding", vocab * dt, 1, "vocab·d", (pre + r"embeddings\.token_embedding\.",))
    tb.term("position embedding", pos * dt, 1, "max_positions·d", (pre + r"embeddings\.position_embedding\.",))
    _clip_layers(tb, dt, ff, n, pre + r"encoder\.layers\.\d+\.")
    tb.term("final norm", 2 * dt, 1, "LayerNorm", (pre + r"final_layer_norm\.",))
    _merge(b, "text", tb, t_def)
    b.term("projection: visual", dv * proj, 1, "d_vision·projection_dim", (r"(^|\.)visual_projection\.",))
    b.term("projection: text", dt * proj, 1, "d_text·projection_dim", (r"(^|\.)text_projection\.",))
    b.term("logit_scale", 1, 1, "1", (r"(^|\.)logit_scale$",))
    b.linear("visual_projection", dv, proj, 1)
    b.linear("text_projection", dt, proj, 1)
    _warn_unknown_head(hp, b, "as CLIPModel")


def _lift_clip(config: Mapping[str, Any]) -> Mapping[str, Any]:
    text, _ = _clip_configs(config, None)
    merged = {**_CLIP_TEXT, **text}
    return {k: merged[k] for k in _LIFTED if merged.get(k) is not None}


def _read_clip(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    text, vision = _clip_configs(config, v["path"])
    _vision_sizes({**_CLIP_TEXT, **text}, v["path"], "text_config")  # contradicting sizes stop the reading
    _clip_vision(Build(), {**_CLIP_VISION, **vision}, "", v["path"])
    extras = {
        "text_config": text,
        "vision_config": vision,
        "projection_dim": _int(config, "projection_dim", "", v["path"]),
        **_head(v, {"CLIPModel": "base"}, "base"),
    }
    return {"extras": extras}


# ---- llava, qwen2_vl, gemma3: vision tower + projector + text model -----------------------------------------

_VISION_TOWER = r"(^|\.)vision_tower\.(vision_model\.)?"  # transformers 5 drops the `vision_model.` level


def _llava(hp: HParams, b: Build) -> None:
    """transformers LlavaForConditionalGeneration: a CLIP vision tower (CLIPVisionModel, every layer built), the
    multi-modal projector linear_1 (vision width × feature layers → text width) and linear_2, the text model
    (LlamaModel by default) and an lm_head tied as the config says. LlavaModel: no lm_head."""
    vision_raw = _config_only(hp, "vision_config")
    text = dict(hp.get("text_config"))
    vision, v_def = _with_defaults(vision_raw, _CLIP_VISION if vision_raw else _LLAVA_VISION)
    if vision.get("model_type", "clip_vision_model") != "clip_vision_model":
        raise UsageError(f"llava with a {vision['model_type']!r} vision tower is not counted (clip_vision_model is)",
                         path=hp.path, rule="model-type")  # fmt: skip
    vb = Build()
    dv = _clip_vision(vb, vision, _VISION_TOWER, hp.path)
    _merge(b, "vision", vb, v_def)
    dt = _int(_with_defaults(text, _TEXT_DEFAULTS.get(str(text["model_type"]), {}))[0], "hidden_size", "text_config",
              hp.path)  # fmt: skip
    layers = hp.get("vision_feature_layer", -2)
    nf = len(layers) if isinstance(layers, list | tuple) else 1
    bias = bool(hp.get("multimodal_projector_bias", True))
    pat = r"(^|\.)multi_modal_projector\."
    b.term("projector: linear_1", lin(dv * nf, dt, bias), 1, "d_vision·feature_layers·d_text + d_text",
           (pat + r"linear_1\.",))  # fmt: skip
    b.term("projector: linear_2", lin(dt, dt, bias), 1, "d_text² + d_text", (pat + r"linear_2\.",))
    b.linear("linear_1", dv * nf, dt, 1)
    b.linear("linear_2", dt, dt, 1)
    _text_part(b, hp, text, tied=bool(hp.tied), head=hp.get("head") != "base")
    _warn_unknown_head(hp, b, "as LlavaForConditionalGeneration")


def _read_llava(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    path = v["path"]
    text = {"model_type": "llama", **_nested(config, "text_config", path=path)}
    _check_text(text, path)
    vision = _nested(config, "vision_config", path=path)
    _clip_vision(Build(), {**(_CLIP_VISION if vision else _LLAVA_VISION), **vision}, "", path)
    top = config.get("tie_word_embeddings")
    extras = {
        "text_config": text,
        "vision_config": vision,
        "vision_feature_layer": config.get("vision_feature_layer", -2),
        "multimodal_projector_bias": bool(config.get("multimodal_projector_bias", True)),
        **_head(v, {"LlavaForConditionalGeneration": "causal-lm", "LlavaModel": "base"}, "causal-lm"),
    }
    # LlavaConfig forwards the text config's tie_word_embeddings when its own is false.
    return {"tied": bool(top) or _text_tied(text), "extras": extras}


def _qwen2_vl(hp: HParams, b: Build) -> None:
    """transformers Qwen2VLForConditionalGeneration: the vision transformer and its patch merger, the Qwen2 text
    decoder (Qwen2VLTextModel), lm_head tied as the config says. Qwen2VLModel: no lm_head."""
    vision, v_def = _with_defaults(_config_only(hp, "vision_config"), _QWEN2_VL_VISION)
    vb = Build()
    _qwen2_vision(vb, vision, hp.path)
    _merge(b, "vision", vb, v_def)
    _text_part(b, hp, dict(hp.get("text_config")), tied=bool(hp.tied), head=hp.get("head") != "base")
    _warn_unknown_head(hp, b, "as Qwen2VLForConditionalGeneration")


def _qwen2_vl_text(config: Mapping[str, Any], path: str | None) -> dict[str, Any]:
    """Qwen2-VL's text config: `text_config`, or the top level of a flat (pre-v5) config.json, as Qwen2VLConfig
    reads it."""
    if config.get("text_config") is not None:
        return {**_nested(config, "text_config", path=path), "model_type": "qwen2_vl_text"}
    return {**{k: config[k] for k in _QWEN2_VL_TEXT_KEYS if k in config}, "model_type": "qwen2_vl_text"}


def _lift_qwen2_vl(config: Mapping[str, Any]) -> Mapping[str, Any]:
    merged = {**_QWEN2_VL_TEXT, **_qwen2_vl_text(config, None)}
    return {k: merged[k] for k in _LIFTED if merged.get(k) is not None}


def _read_qwen2_vl(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    path = v["path"]
    text = _qwen2_vl_text(config, path)
    _check_text(text, path)
    vision = _nested(config, "vision_config", path=path)
    vision.pop("model_type", None)
    _qwen2_vision(Build(), {**_QWEN2_VL_VISION, **vision}, path)
    merged = {**_QWEN2_VL_TEXT, **text}
    sliding = merged.get("sliding_window") if merged.get("use_sliding_window") else None
    heads = {"Qwen2VLForConditionalGeneration": "causal-lm", "Qwen2VLModel": "base"}
    extras = {"text_config": text, "vision_config": vision, **_head(v, heads, "causal-lm")}
    tied = bool(config.get("tie_word_embeddings")) or bool(text.get("tie_word_embeddings"))
    return {"tied": tied, "sliding_window": sliding, "extras": extras}


def _gemma3(hp: HParams, b: Build) -> None:
    """transformers Gemma3ForConditionalGeneration: a SigLIP vision tower, the multi-modal projector
    (mm_input_projection_weight, vision width × text width, and mm_soft_emb_norm, an RMSNorm over the vision
    width), the Gemma 3 text model and an lm_head tied unless the top-level config says otherwise."""
    vision, v_def = _with_defaults(_config_only(hp, "vision_config"), _SIGLIP_VISION)
    text = dict(hp.get("text_config"))
    vb = Build()
    dv = _siglip_vision(vb, vision, _VISION_TOWER, hp.path)
    _merge(b, "vision", vb, v_def)
    dt = _int(_with_defaults(text, _GEMMA3_TEXT)[0], "hidden_size", "text_config", hp.path)
    pat = r"(^|\.)multi_modal_projector\."
    b.term("projector: input projection", dv * dt, 1, "d_vision·d_text", (pat + r"mm_input_projection_weight",))
    b.term("projector: soft-embedding norm", dv, 1, "RMSNorm (d_vision)", (pat + r"mm_soft_emb_norm\.",))
    _text_part(b, hp, text, tied=bool(hp.tied), head=hp.get("head") != "base")
    _warn_unknown_head(hp, b, "as Gemma3ForConditionalGeneration")


def _gemma3_layer_types(text: Mapping[str, Any]) -> tuple[str, ...] | None:
    """Gemma3TextConfig's layer_types: given, or every `sliding_window_pattern`-th layer (default 6) full."""
    given = text.get("layer_types")
    if isinstance(given, list) and all(isinstance(t, str) for t in given):
        return tuple(given)
    n = {**_GEMMA3_TEXT, **text}["num_hidden_layers"]
    pattern = text.get("sliding_window_pattern", 6)
    if not isinstance(n, int) or not isinstance(pattern, int) or pattern <= 0:
        return None
    return tuple("sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(n))


def _read_gemma3(config: Mapping[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    path = v["path"]
    text = {"model_type": "gemma3_text", **_nested(config, "text_config", path=path)}
    _check_text(text, path)
    vision = _nested(config, "vision_config", path=path)
    if vision.get("model_type", "siglip_vision_model") != "siglip_vision_model":
        raise UsageError(f"gemma3 with a {vision['model_type']!r} vision tower is not counted (siglip_vision_model "
                         "is)", path=path, rule="model-type")  # fmt: skip
    _siglip_vision(Build(), {**_SIGLIP_VISION, **vision}, "", path)
    heads = {"Gemma3ForConditionalGeneration": "causal-lm", "Gemma3Model": "base"}
    extras = {"text_config": text, "vision_config": vision, **_head(v, heads, "causal-lm")}
    tied = config.get("tie_word_embeddings")
    return {
        "tied": True if tied is None else bool(tied),  # the top-level flag decides (Gemma3Config default: true)
        "sliding_window": {**_GEMMA3_TEXT, **text}.get("sliding_window"),
        "layer_types": _gemma3_layer_types(text),
        "extras": extras,
    }


# ---- records ------------------------------------------------------------------------------------------------

_SEQ2SEQ_KEYS = {"layers": ("decoder_layers",), "heads": ("decoder_attention_heads",), "d_ff": ("decoder_ffn_dim",),
                 "kv_heads": (), "head_dim": ()}  # fmt: skip
_ENC_DROPS = ((("dropout",), 0.1), (("attention_dropout",), 0.0), (("dropout",), 0.1), (("activation_dropout",), 0.0))
_LLAMA_LIKE = MemoryFacts(softmax_fp32=True)
_TOWER = MemoryFacts(norm="layernorm", mlp="plain", act="quick_gelu", rotary="none", learned_positions=0,
                     dropouts=(((), 0.0), (("attention_dropout",), 0.0), ((), 0.0), ((), 0.0)))  # fmt: skip

FAMILIES: tuple[Family, ...] = (
    Family(
        "mt5", _mt5, "transformers MT5ForConditionalGeneration (the t5 builder, gated-gelu)", model_types=("mt5",),
        architectures=tuple(_MT5_HEADS), keys=_T5.keys,
        defaults={"vocab_size": 250112, "d_model": 512, "d_kv": 64, "d_ff": 1024, "num_layers": 8, "num_heads": 6,
                  "relative_attention_num_buckets": 32, "feed_forward_proj": "gated-gelu",
                  "tie_word_embeddings": True},
        tied=True, read=_read_mt5, encoder_decoder=True,
        memory=MemoryFacts(norm="rmsnorm", mlp="plain", act="gelu_new", rotary="none",
                           dropouts=((("dropout_rate",), 0.1),) * 4),
    ),
    Family(
        "bart", _bart, "transformers BartForConditionalGeneration / BartModel / …ForSequenceClassification",
        model_types=("bart",), architectures=tuple(_BART_HEADS),
        keys={**_SEQ2SEQ_KEYS, "max_positions": ("max_position_embeddings",)},
        defaults={"vocab_size": 50265, "d_model": 1024, "max_position_embeddings": 1024, "encoder_layers": 12,
                  "decoder_layers": 12, "encoder_ffn_dim": 4096, "decoder_ffn_dim": 4096,
                  "encoder_attention_heads": 16, "decoder_attention_heads": 16, "tie_word_embeddings": True},
        tied=True, read=_read_bart, encoder_decoder=True,
        memory=MemoryFacts(norm="layernorm", mlp="plain", act="gelu", rotary="none", learned_positions=2,
                           dropouts=_ENC_DROPS),
    ),
    Family(
        "whisper", _whisper, "transformers WhisperForConditionalGeneration / WhisperModel", model_types=("whisper",),
        architectures=tuple(_WHISPER_HEADS), keys={**_SEQ2SEQ_KEYS, "max_positions": ("max_target_positions",)},
        defaults={"vocab_size": 51865, "d_model": 384, "num_mel_bins": 80, "encoder_layers": 4, "decoder_layers": 4,
                  "encoder_attention_heads": 6, "decoder_attention_heads": 6, "encoder_ffn_dim": 1536,
                  "decoder_ffn_dim": 1536, "max_source_positions": 1500, "max_target_positions": 448,
                  "tie_word_embeddings": True},
        tied=True, read=_read_whisper, encoder_decoder=True,
        memory=MemoryFacts(norm="layernorm", mlp="plain", act="gelu", rotary="none", learned_positions=0,
                           dropouts=((("dropout",), 0.0), (("attention_dropout",), 0.0), (("dropout",), 0.0),
                                     (("activation_dropout",), 0.0))),
    ),
    Family(
        "clip", _clip, "transformers CLIPModel (text and vision towers, projections)", model_types=("clip",),
        architectures=("CLIPModel",), defaults={"projection_dim": 512}, read=_read_clip, lift=_lift_clip,
        encoder_only=True, memory=_TOWER,
    ),
    Family(
        "vit", _vit, "transformers ViTModel / ViTForImageClassification", model_types=("vit",),
        architectures=tuple(_VIT_HEADS), keys={"kv_heads": (), "max_positions": ()},
        defaults={"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
                  "image_size": 224, "patch_size": 16, "num_channels": 3, "qkv_bias": True},
        read=_read_vit, lift=_lift_vit, encoder_only=True,
        memory=MemoryFacts(norm="layernorm", mlp="plain", act="gelu", rotary="none",
                           dropouts=((("hidden_dropout_prob",), 0.0), (("attention_probs_dropout_prob",), 0.0),
                                     (("hidden_dropout_prob",), 0.0), ((), 0.0))),
    ),
    Family(
        "llava", _llava, "transformers LlavaForConditionalGeneration (CLIP tower, projector, text model)",
        model_types=("llava",), architectures=("LlavaForConditionalGeneration", "LlavaModel"),
        defaults={"vision_feature_layer": -2, "multimodal_projector_bias": True, "tie_word_embeddings": False},
        tied=False, read=_read_llava, lift=_lift_from("text_config", "llama"), memory=_LLAMA_LIKE,
    ),
    Family(
        "qwen2_vl", _qwen2_vl, "transformers Qwen2VLForConditionalGeneration (vision transformer, merger, Qwen2)",
        model_types=("qwen2_vl",), architectures=("Qwen2VLForConditionalGeneration", "Qwen2VLModel"),
        defaults={"tie_word_embeddings": False}, tied=False, read=_read_qwen2_vl, lift=_lift_qwen2_vl,
        memory=_LLAMA_LIKE,
    ),
    Family(
        "gemma3", _gemma3, "transformers Gemma3ForConditionalGeneration (SigLIP tower, projector, Gemma 3)",
        model_types=("gemma3",), architectures=("Gemma3ForConditionalGeneration", "Gemma3Model"),
        defaults={"tie_word_embeddings": True}, tied=True, read=_read_gemma3,
        lift=_lift_from("text_config", "gemma3_text"),
        memory=MemoryFacts(act="gelu_pytorch_tanh", softmax_fp32=True, norms_per_layer=lambda hp: 4,
                           norm_impl="gemma", qk_norm="head"),
    ),
)  # fmt: skip
# Every builder here reads its head from `architectures` itself (base models, classifiers, encoder-decoders).
FAMILIES = tuple(replace(f, heads="builder") for f in FAMILIES)
