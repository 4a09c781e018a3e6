"""Oracles for analysis/families/composite.py: mt5, bart, whisper, clip, vit, llava, qwen2_vl, gemma3.

Every case is a config.json dict (a config class's defaults, or the published values of a public model); the
transformers model is built from it on the meta device and its `parameters()` (tied weights once) are the
expected count. `mi params` reads the same dict as a config.json would give it and, again, as transformers'
`to_dict()` writes it (nested configs in full). Per term, the model's named parameters are assigned to the
report's terms by the terms' name patterns, so a formula right in total but wrong per component fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelscope_inspect.analysis.hparams import HParams
from modelscope_inspect.analysis.params import count_params, cross_check

from .conftest import ROOT, run_cli

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


# ---- published config.json values ---------------------------------------------------------------------------

LLAVA_15_7B = {
    "architectures": ["LlavaForConditionalGeneration"], "ignore_index": -100, "image_token_index": 32000,
    "model_type": "llava", "pad_token_id": 32001, "projector_hidden_act": "gelu",
    "text_config": {"_name_or_path": "lmsys/vicuna-7b-v1.5", "architectures": ["LlamaForCausalLM"],
                    "max_position_embeddings": 4096, "model_type": "llama", "rms_norm_eps": 1e-05,
                    "torch_dtype": "float16", "vocab_size": 32064},
    "tie_word_embeddings": False, "torch_dtype": "float16",
    "vision_config": {"hidden_size": 1024, "image_size": 336, "intermediate_size": 4096,
                      "model_type": "clip_vision_model", "num_attention_heads": 16, "num_hidden_layers": 24,
                      "patch_size": 14, "projection_dim": 768, "vocab_size": 32000},
    "vision_feature_layer": -2, "vision_feature_select_strategy": "default", "vocab_size": 32064,
}  # fmt: skip
# Qwen2-VL-7B-Instruct: a flat (pre-v5) config, the text model's sizes at the top level.
QWEN2_VL_7B = {
    "architectures": ["Qwen2VLForConditionalGeneration"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151645, "vision_start_token_id": 151652, "vision_end_token_id": 151653,
    "vision_token_id": 151654, "image_token_id": 151655, "video_token_id": 151656, "hidden_act": "silu",
    "hidden_size": 3584, "initializer_range": 0.02, "intermediate_size": 18944, "max_position_embeddings": 32768,
    "max_window_layers": 28, "model_type": "qwen2_vl", "num_attention_heads": 28, "num_hidden_layers": 28,
    "num_key_value_heads": 4, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": True, "use_sliding_window": False,
    "vision_config": {"depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16, "in_chans": 3,
                      "hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2, "spatial_patch_size": 14,
                      "temporal_patch_size": 2},
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}, "vocab_size": 152064,
}  # fmt: skip
QWEN2_VL_2B = {**QWEN2_VL_7B, "hidden_size": 1536, "intermediate_size": 8960, "num_attention_heads": 12,
               "num_key_value_heads": 2, "tie_word_embeddings": True, "vocab_size": 151936,
               "vision_config": {**QWEN2_VL_7B["vision_config"], "hidden_size": 1536}}  # fmt: skip
GEMMA3_4B = {
    "architectures": ["Gemma3ForConditionalGeneration"], "boi_token_index": 255999, "eoi_token_index": 256000,
    "eos_token_id": [1, 106], "image_token_index": 262144, "initializer_range": 0.02, "mm_tokens_per_image": 256,
    "model_type": "gemma3",
    "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text",
                    "num_hidden_layers": 34, "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
                    "sliding_window": 1024},
    "torch_dtype": "bfloat16",
    "vision_config": {"hidden_size": 1152, "image_size": 896, "intermediate_size": 4304,
                      "model_type": "siglip_vision_model", "num_attention_heads": 16, "num_hidden_layers": 27,
                      "patch_size": 14, "vision_use_head": False},
}  # fmt: skip
GEMMA3_27B = {**GEMMA3_4B, "text_config": {
    "head_dim": 128, "hidden_size": 5376, "intermediate_size": 21504, "model_type": "gemma3_text",
    "num_attention_heads": 32, "num_hidden_layers": 62, "num_key_value_heads": 16, "query_pre_attn_scalar": 168,
    "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024}}  # fmt: skip
WHISPER_SMALL = {
    "model_type": "whisper", "architectures": ["WhisperForConditionalGeneration"], "d_model": 768,
    "encoder_layers": 12, "decoder_layers": 12, "encoder_attention_heads": 12, "decoder_attention_heads": 12,
    "encoder_ffn_dim": 3072, "decoder_ffn_dim": 3072, "vocab_size": 51865, "num_mel_bins": 80,
    "max_source_positions": 1500, "max_target_positions": 448, "pad_token_id": 50257,
}  # fmt: skip
WHISPER_LARGE_V3 = {**WHISPER_SMALL, "d_model": 1280, "encoder_layers": 32, "decoder_layers": 32,
                    "encoder_attention_heads": 20, "decoder_attention_heads": 20, "encoder_ffn_dim": 5120,
                    "decoder_ffn_dim": 5120, "vocab_size": 51866, "num_mel_bins": 128}  # fmt: skip
CLIP_L14 = {
    "model_type": "clip", "architectures": ["CLIPModel"], "projection_dim": 768,
    "text_config": {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
                    "num_hidden_layers": 12, "projection_dim": 768},
    "vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16,
                      "num_hidden_layers": 24, "patch_size": 14, "projection_dim": 768},
}  # fmt: skip
BART_BASE = {"model_type": "bart", "architectures": ["BartForConditionalGeneration"], "d_model": 768,
             "encoder_layers": 6, "decoder_layers": 6, "encoder_ffn_dim": 3072, "decoder_ffn_dim": 3072,
             "encoder_attention_heads": 12, "decoder_attention_heads": 12, "vocab_size": 50265,
             "max_position_embeddings": 1024}  # fmt: skip
MT5_BASE = {"model_type": "mt5", "architectures": ["MT5ForConditionalGeneration"], "d_model": 768, "d_ff": 2048,
            "d_kv": 64, "num_layers": 12, "num_decoder_layers": 12, "num_heads": 12, "vocab_size": 250112,
            "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False}  # fmt: skip
VIT_L16 = {"model_type": "vit", "architectures": ["ViTForImageClassification"], "hidden_size": 1024,
           "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096,
           "id2label": {str(i): f"class {i}" for i in range(1000)}}  # fmt: skip

# Small sub-configs for the variants (ids inside the small vocabularies).
_T = {"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
      "num_key_value_heads": 2, "vocab_size": 300, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}  # fmt: skip
_V = {"hidden_size": 32, "intermediate_size": 40, "num_hidden_layers": 2, "num_attention_heads": 4, "image_size": 64,
      "patch_size": 8}  # fmt: skip
_SMALL_BART = {"d_model": 64, "vocab_size": 300, "encoder_attention_heads": 4, "decoder_attention_heads": 2,
               "encoder_ffn_dim": 80, "decoder_ffn_dim": 96, "encoder_layers": 1, "decoder_layers": 2,
               "max_position_embeddings": 40}  # fmt: skip


def _c(model_type: str, arch: str, **keys: Any) -> dict[str, Any]:
    return {"model_type": model_type, "architectures": [arch], **keys}


# (id, config.json dict, published total or None). The class is the config's first architecture.
CASES: list[tuple[str, dict[str, Any], int | None]] = [
    ("mt5-defaults", _c("mt5", "MT5ForConditionalGeneration"), None),  # mt5-small's sizes, lm_head tied in v5
    ("mt5-base", MT5_BASE, None),
    ("mt5-small-model", _c("mt5", "MT5Model", d_model=64, d_ff=96, d_kv=16, num_layers=2, num_decoder_layers=1,
                           num_heads=4, vocab_size=500), None),
    ("bart-defaults", _c("bart", "BartForConditionalGeneration"), 406_291_456),  # bart-large
    ("bart-base", BART_BASE, 139_420_416),
    ("bart-large-mnli", _c("bart", "BartForSequenceClassification",
                           id2label={"0": "contradiction", "1": "neutral", "2": "entailment"}), 407_344_131),
    ("bart-small-untied", _c("bart", "BartForConditionalGeneration", tie_word_embeddings=False, **_SMALL_BART), None),
    ("bart-small-model-untied", _c("bart", "BartModel", tie_word_embeddings=False, **_SMALL_BART), None),
    ("bart-small-qa", _c("bart", "BartForQuestionAnswering", **_SMALL_BART), None),
    ("whisper-defaults", _c("whisper", "WhisperForConditionalGeneration"), 37_760_640),  # whisper-tiny
    ("whisper-small", WHISPER_SMALL, 241_734_912),
    ("whisper-large-v3", WHISPER_LARGE_V3, 1_543_490_560),
    ("whisper-model-untied", _c("whisper", "WhisperModel", tie_word_embeddings=False), None),
    ("whisper-untied", _c("whisper", "WhisperForConditionalGeneration", tie_word_embeddings=False), None),
    ("whisper-audio-classification", _c("whisper", "WhisperForAudioClassification", use_weighted_layer_sum=True,
                                        classifier_proj_size=64, id2label={"0": "a", "1": "b", "2": "c"}), None),
    ("clip-defaults", _c("clip", "CLIPModel"), 151_277_313),  # openai/clip-vit-base-patch32
    ("clip-vit-large-patch14", CLIP_L14, 427_616_513),
    ("clip-legacy-dicts", _c("clip", "CLIPModel", projection_dim=128, text_config={"hidden_size": 128},
                             text_config_dict={"hidden_size": 256, "num_attention_heads": 4},
                             vision_config_dict={"image_size": 96, "patch_size": 16}), None),
    ("vit-defaults", _c("vit", "ViTModel"), 86_389_248),  # google/vit-base-patch16-224-in21k with its pooler
    ("vit-base-patch16-224", _c("vit", "ViTForImageClassification",
                                id2label={str(i): str(i) for i in range(1000)}), 86_567_656),
    ("vit-large-patch16-224", VIT_L16, 304_326_632),
    ("vit-small-rect", _c("vit", "ViTModel", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=80, qkv_bias=False, image_size=[64, 96], patch_size=[16, 32],
                          pooler_output_size=48, num_channels=1), None),
    ("llava-defaults", _c("llava", "LlavaForConditionalGeneration"), None),
    ("llava-1.5-7b", LLAVA_15_7B, 7_063_427_072),
    ("llava-small-model", _c("llava", "LlavaModel", text_config={**_T, "model_type": "llama"},
                             vision_config={**_V, "model_type": "clip_vision_model"}, vision_feature_layer=[-2, -1],
                             multimodal_projector_bias=False), None),
    ("llava-small-text-tied", _c("llava", "LlavaForConditionalGeneration",
                                 text_config={**_T, "model_type": "llama", "tie_word_embeddings": True},
                                 vision_config=_V), None),
    ("llava-small-qwen2-text", _c("llava", "LlavaForConditionalGeneration", text_config={**_T, "model_type": "qwen2"},
                                  vision_config=_V, tie_word_embeddings=True), None),
    ("qwen2-vl-defaults", _c("qwen2_vl", "Qwen2VLForConditionalGeneration"), None),
    ("qwen2-vl-7b", QWEN2_VL_7B, 8_291_375_616),
    ("qwen2-vl-2b", QWEN2_VL_2B, 2_208_985_600),
    ("qwen2-vl-small-model", _c("qwen2_vl", "Qwen2VLModel", text_config=_T,
                                vision_config={"depth": 2, "embed_dim": 32, "hidden_size": 64, "num_heads": 4,
                                               "mlp_ratio": 3, "spatial_merge_size": 1}), None),
    ("gemma3-defaults", _c("gemma3", "Gemma3ForConditionalGeneration"), None),
    ("gemma-3-4b", GEMMA3_4B, 4_300_079_472),
    ("gemma-3-27b", GEMMA3_27B, 27_432_406_640),
    ("gemma3-small-model-untied", _c("gemma3", "Gemma3Model", text_config={**_T, "head_dim": 24}, vision_config=_V,
                                     mm_tokens_per_image=16, tie_word_embeddings=False), None),
    ("gemma3-small-bias-no-pool", _c("gemma3", "Gemma3ForConditionalGeneration",
                                     text_config={**_T, "head_dim": 24, "attention_bias": True},
                                     vision_config={**_V, "vision_use_head": False}, mm_tokens_per_image=16,
                                     tie_word_embeddings=False), None),
]  # fmt: skip

FAMILIES = ("mt5", "bart", "whisper", "clip", "vit", "llava", "qwen2_vl", "gemma3")


# ---- helpers ------------------------------------------------------------------------------------------------


class _Rec:
    """The fields of TensorRecord the cross-check reads, for a model's named parameters."""

    def __init__(self, name: str, numel: int) -> None:
        self.name, self.counted_numel, self.section = name, numel, "model"


class _Inv:
    def __init__(self, model: Any, config: dict[str, Any]) -> None:
        self.tensors = [_Rec(n, p.numel()) for n, p in model.named_parameters()]  # tied weights listed once
        self.total_params = sum(r.counted_numel for r in self.tensors)
        self.config = config


_BUILT: dict[str, tuple[Any, Any]] = {}


def _built(case: str, cfg: dict[str, Any]) -> tuple[Any, Any]:
    """(transformers config, model on the meta device) for a case, built once."""
    if case not in _BUILT:
        kwargs = {k: v for k, v in cfg.items() if k != "model_type"}
        config = transformers.AutoConfig.for_model(cfg["model_type"], **kwargs)
        with torch.device("meta"):
            model = getattr(transformers, cfg["architectures"][0])(config)
        _BUILT[case] = (config, model)
    return _BUILT[case]


def _n(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def _assert_exact(config: dict[str, Any], model: Any) -> None:
    report = count_params(HParams.from_config(config))
    expected = _n(model)
    assert report.total_params == expected
    assert sum(t.params for t in report.terms) == expected
    cc = cross_check(_Inv(model, config))
    assert cc.unmatched == (), f"parameters no term accounts for: {cc.unmatched[:5]}"
    wrong = [(name, want, got) for name, want, got in cc.terms if want != got]
    assert wrong == [], f"terms that disagree with the model (term, ours, model): {wrong}"


# ---- exact counts -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "cfg", "published"), CASES, ids=[c[0] for c in CASES])
def test_exact_against_transformers(case: str, cfg: dict[str, Any], published: int | None) -> None:
    tf_config, model = _built(case, cfg)
    _assert_exact(cfg, model)  # the config.json as published (transformers' defaults fill the rest)
    _assert_exact(tf_config.to_dict(), model)  # the config as transformers writes it (nested configs in full)
    if published is not None:
        assert _n(model) == published


def test_every_family_has_defaults_and_published_sizes() -> None:
    for fam in FAMILIES:
        mine = [(c, p) for c, cfg, p in CASES if HParams.from_config(cfg).arch == fam]
        assert any(c.endswith("-defaults") for c, _ in mine), fam
        assert len(mine) >= 3, fam


def test_composite_terms_name_their_component() -> None:
    """One total, per-component terms: vision, projector, text (the text model counted by its family record)."""
    for cfg, parts in ((LLAVA_15_7B, ("vision", "projector", "text")), (GEMMA3_4B, ("vision", "projector", "text")),
                       (QWEN2_VL_7B, ("vision", "text")), (CLIP_L14, ("vision", "text", "projection"))):  # fmt: skip
        report = count_params(HParams.from_config(cfg))
        names = [t.name for t in report.terms]
        for part in parts:
            assert any(n.startswith(f"{part}: ") for n in names), (cfg["model_type"], part, names)
    report = count_params(HParams.from_config(LLAVA_15_7B))
    # The text model is LLaMA's record: its terms, prefixed; its defaults said.
    assert {"text: attention", "text: mlp", "text: lm_head"} <= {t.name for t in report.terms}
    assert any(a.startswith("text: ") and "hidden_size" in a for a in report.assumptions)


def test_composite_hparams_lift_the_text_model() -> None:
    """The top level of a composite config reads the text model's sizes; the nested configs stay in extras."""
    hp = HParams.from_config(LLAVA_15_7B)
    assert (hp.vocab, hp.d_model, hp.layers, hp.heads, hp.d_ff) == (32064, 4096, 32, 32, 11008)
    assert hp.get("text_config")["vocab_size"] == 32064 and hp.get("vision_config")["hidden_size"] == 1024
    hp = HParams.from_config(GEMMA3_4B)
    assert (hp.d_model, hp.layers, hp.head_dim, hp.kv_heads, hp.sliding_window) == (2560, 34, 256, 4, 1024)
    assert hp.attention_layer_types.count("full_attention") == 34 // 6  # every sixth layer global
    hp = HParams.from_config(QWEN2_VL_7B)  # flat: already at the top level
    assert (hp.vocab, hp.d_model, hp.layers, hp.kv_heads, hp.sliding_window) == (152064, 3584, 28, 4, None)


def test_unknown_head_is_said() -> None:
    report = count_params(HParams.from_config(_c("bart", "BartForCausalLM", **_SMALL_BART)))
    assert any("BartForCausalLM" in a and "counted as BartForConditionalGeneration" in a for a in report.assumptions)


# ---- flags --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "case"),
    [
        (("--arch", "mt5", "--vocab", "250112", "--d-model", "512", "--layers", "8", "--heads", "6", "--head-dim",
          "64"), "mt5-defaults"),
        (("--arch", "bart", "--vocab", "50265", "--d-model", "1024", "--layers", "12", "--heads", "16", "--d-ff",
          "4096"), "bart-defaults"),
        (("--arch", "whisper", "--vocab", "51865", "--d-model", "768", "--layers", "12", "--heads", "12", "--d-ff",
          "3072"), "whisper-small"),
    ],
    ids=["mt5", "bart", "whisper"],
)  # fmt: skip
def test_flags_form(flags: tuple[str, ...], case: str) -> None:
    r = run_cli("params", *flags, "--json")
    assert r.code == 0, r.stderr
    cfg = next(c for name, c, _ in CASES if name == case)
    assert json.loads(r.stdout)["total_params"] == _n(_built(case, cfg)[1])


@pytest.mark.parametrize("arch", ["clip", "vit", "llava", "qwen2_vl", "gemma3"])
def test_no_flag_form_is_refused(arch: str) -> None:
    r = run_cli("params", "--arch", arch, "--vocab", "100", "--d-model", "64", "--layers", "2")
    assert r.code == 2
    assert "arch-config" in r.stderr and "--config" in r.stderr


# ---- the command ---------------------------------------------------------------------------------------------


def test_params_config_view_and_json(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LLAVA_15_7B))
    r = run_cli("params", "--config", str(path))
    assert r.code == 0, r.stderr
    assert "7,063,427,072" in r.stdout and "text_config" not in r.stdout  # nested configs: JSON only
    doc = json.loads(run_cli("params", "--config", str(path), "--json").stdout)
    assert doc["total_params"] == 7_063_427_072 and doc["arch"] == "llava"
    assert doc["hparams"]["vision_config"]["hidden_size"] == 1024
    assert sum(t["params"] for t in doc["terms"]) == doc["total_params"]


@pytest.mark.parametrize("cfg", [LLAVA_15_7B, QWEN2_VL_7B, GEMMA3_4B, WHISPER_SMALL, CLIP_L14, BART_BASE, MT5_BASE,
                                 VIT_L16], ids=lambda c: c["model_type"])  # fmt: skip
def test_memory_reads_each_family(cfg: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    r = run_cli("memory", "--config", str(path), "--json")
    assert r.code == 0, r.stderr


def test_params_config_imports_no_torch_transformers(tmp_path: Path) -> None:
    configs = []
    for i, cfg in enumerate((LLAVA_15_7B, GEMMA3_4B, WHISPER_SMALL, VIT_L16)):
        path = tmp_path / f"c{i}.json"
        path.write_text(json.dumps(cfg))
        configs.append(str(path))
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from modelscope_inspect.cli import app\n"
        f"for p in {configs!r}:\n"
        "    r = CliRunner().invoke(app, ['params', '--config', p, '--json'])\n"
        "    assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in ('torch', 'transformers', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ---- bad input: contradicting sizes, exit 2 naming the key ---------------------------------------------------


@pytest.mark.parametrize(
    ("cfg", "names"),
    [
        (_c("bart", "BartModel", **{**_SMALL_BART, "encoder_attention_heads": 7}), ("encoder_attention_heads",)),
        (_c("whisper", "WhisperModel", d_model=64, encoder_attention_heads=5), ("encoder_attention_heads",)),
        (_c("mt5", "MT5Model", d_kv=0), ("head_dim",)),
        (_c("vit", "ViTModel", hidden_size=64, num_attention_heads=5), ("num_attention_heads",)),
        (_c("clip", "CLIPModel", vision_config={"hidden_size": 64, "num_attention_heads": 5}),
         ("vision_config.num_attention_heads",)),
        (_c("clip", "CLIPModel", text_config={"hidden_size": 64, "num_attention_heads": 5}),
         ("text_config.num_attention_heads",)),
        (_c("llava", "LlavaModel", text_config={**_T, "model_type": "llama", "num_key_value_heads": 3}),
         ("text_config", "must divide")),
        (_c("llava", "LlavaModel", vision_config={**_V, "num_attention_heads": 5}),
         ("vision_config.num_attention_heads",)),
        (_c("qwen2_vl", "Qwen2VLModel", vision_config={"embed_dim": 32, "num_heads": 5}), ("vision_config.num_heads",)),
        (_c("gemma3", "Gemma3Model", text_config={**_T, "num_key_value_heads": 3}), ("text_config", "must divide")),
        (_c("gemma3", "Gemma3Model", vision_config={**_V, "patch_size": 0}), ("vision_config.patch_size",)),
        (_c("llava", "LlavaModel", text_config=[1, 2]), ("text_config",)),
    ],
    ids=["bart", "whisper", "mt5", "vit", "clip-vision", "clip-text", "llava-text", "llava-vision", "qwen2-vl",
         "gemma3-text", "gemma3-vision", "not-an-object"],
)  # fmt: skip
def test_contradicting_sizes_exit_2(cfg: dict[str, Any], names: tuple[str, ...], tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    r = run_cli("params", "--config", str(path))
    assert r.code == 2, r.stdout
    assert "Traceback" not in r.stderr
    for name in names:
        assert name in r.stderr, r.stderr
