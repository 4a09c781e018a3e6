"""The memory profiles of the family registry against transformers, not against themselves.

* Every family with a transformers model class: the profile `mi memory` reads (norm kind, norms per layer, q/k
  norms, gated or plain MLP, activation function, rotary width) agrees with the module tree transformers builds on
  the meta device from the config class's defaults (one layer): norms are told apart by what they do (a LayerNorm
  centres its
  output, an RMSNorm does not) on a copy of the module itself, the MLP is gated when a gate projection exists, the
  activation is the class transformers' ACT2CLS maps the profile's name to, the rotary width is twice the length of
  the rotary embedding's `inv_freq` (GPT-J: its sin/cos table's width).
* Partial rotary factors that transformers 5 saves only inside `rope_parameters` (or a legacy `rope_scaling`): the
  rotary width and `mi memory --training` bytes match the model built from that same config.json (autograd's saved
  tensors, eager, fp32, CPU).
* Gemma 2 with its softcapping switched off (`null` in config.json, as transformers means it) is still byte-exact.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from modelscope_inspect.analysis.families import FAMILIES
from modelscope_inspect.analysis.hparams import HParams
from modelscope_inspect.analysis.memory import profile_for

from .conftest import run_cli

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

# ---- the registry against transformers' module trees -------------------------------------------------------------

_LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "encoder_layers", "decoder_layers", "num_decoder_layers")
# Config class defaults that do not build as they are (NemotronConfig's num_key_value_heads None).
_OVERRIDES: dict[str, dict[str, Any]] = {"nemotron": {"num_key_value_heads": 48}}
# Sub-models whose norms, MLPs and rotary are not the family's text decoder (vision towers, projectors).
_NOT_TEXT = re.compile(r"(^|\.)(vision_tower|visual|vision_model|multi_modal_projector|encoder\.conv)")


def _transformers_families() -> list[str]:
    names = []
    for f in FAMILIES:
        if f.model_types and f.model_types[0] in transformers.models.auto.configuration_auto.CONFIG_MAPPING:
            names.append(f.name)
    return names


def _config(model_type: str) -> Any:
    """The config class's defaults, one layer (nested text/vision configs too)."""
    cls = transformers.AutoConfig.for_model(model_type).__class__
    defaults = cls().to_dict()
    kw: dict[str, Any] = {k: 1 for k in _LAYER_KEYS if isinstance(defaults.get(k), int)}
    for sub in ("text_config", "vision_config"):
        if isinstance(defaults.get(sub), dict):
            kw[sub] = {**defaults[sub], **{k: 1 for k in _LAYER_KEYS if isinstance(defaults[sub].get(k), int)}}
            kw[sub].pop("layer_types", None)
    kw.pop("layer_types", None)
    return transformers.AutoConfig.for_model(model_type, **{**kw, **_OVERRIDES.get(model_type, {})})


def _first_layer(model: Any) -> tuple[str, Any]:
    """The first decoder (else encoder) layer of the text model: `…layers.0`, `…h.0`, `…block(s).0`, `…layer.0`."""
    found = [(n, m) for n, m in model.named_modules() if re.search(r"(layers|h|block|blocks|layer)\.0$", n)]
    text = [(n, m) for n, m in found if not _NOT_TEXT.search(n)]
    decoder = [(n, m) for n, m in text if "decoder" in n]
    return (decoder or text)[0]


def _is_norm(m: Any) -> bool:
    return "Norm" in type(m).__name__ and "Group" not in type(m).__name__


def _centres(norm: Any) -> bool:
    """Whether this norm module subtracts the mean (LayerNorm) or not (RMSNorm): run a CPU copy on a shifted input."""
    cpu = copy.deepcopy(norm).to_empty(device="cpu")
    with torch.no_grad():
        for name, p in cpu.named_parameters():
            p.fill_(0.0 if name.endswith("bias") else 1.0)
        width = next((p.numel() for p in cpu.parameters()), None) or int(getattr(cpu, "normalized_shape", [8])[0])
        x = torch.randn(3, width) + 5.0
        y = cpu(x)
    return bool(y.mean(-1).abs().max() < 1e-3)


# Families whose activation profile is known not to describe the layer yet, each with what is missing. The memory
# report says so for them (SSM activations are reported as not modelled; DeepSeek's activations are a strict xfail
# in tests/test_memory_sparse.py at 0.796 of autograd's bytes).
_PROFILE_GAPS = {
    "deepseek_v2": "MLA's q_a_layernorm / kv_a_layernorm (latent-width norms) are not in the profile",
    "deepseek_v3": "MLA's q_a_layernorm / kv_a_layernorm (latent-width norms) are not in the profile",
    "mamba": "SSM layers: activations are not modelled (mi memory says so)",
    "mamba2": "SSM layers: activations are not modelled (mi memory says so)",
    "jamba": "its Mamba layers' dt/b/c norms: the activations of SSM layers are not modelled",
    "dbrx": "transformers' DbrxConfig cannot be rebuilt from its own to_dict() with one layer (rope_theta)",
}


def _with_gaps(names: list[str]) -> list[Any]:
    return [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=_PROFILE_GAPS[n])) if n in _PROFILE_GAPS else n
        for n in names
    ]


@pytest.mark.parametrize("name", _with_gaps(_transformers_families()))
def test_profile_matches_the_module_tree(name: str) -> None:
    fam = next(f for f in FAMILIES if f.name == name)
    config = _config(fam.model_types[0])
    raw = config.to_dict()
    hp = HParams.from_config(raw)
    prof = profile_for(hp, raw)
    with torch.device("meta"):
        model = transformers.AutoModel.from_config(config)
    layer_name, layer = _first_layer(model)

    # Norms: of the layer itself (q/k norms are not among the per-layer norms the profile counts).
    qk_name = re.compile(r"(^|\.)(q|k|query|key)_(norm|layernorm|ln)$")
    norms = [(n, m) for n, m in layer.named_modules() if _is_norm(m) and not qk_name.search(n)]
    assert norms, f"{name}: no norm in {layer_name}"
    kinds = {"layernorm" if _centres(m) else "rmsnorm" for _, m in norms}
    assert kinds == {prof.norm}, (name, [(n, type(m).__name__) for n, m in norms], prof.norm)
    if not (fam.encoder_only or fam.encoder_decoder):
        assert len(norms) == prof.norms_per_layer, (name, [n for n, _ in norms], prof.norms_per_layer)

    # q/k norms: norms inside the attention, per head (head_dim wide) or over all heads.
    qk = [m for n, m in layer.named_modules() if _is_norm(m) and qk_name.search(n)]
    widths = {next(p.numel() for p in m.parameters()) for m in qk}
    hd = hp.d_head
    assert bool(qk) == bool(prof.qk_norm), (name, prof.qk_norm, widths)
    if prof.qk_norm == "head":
        assert widths == {hd}, (name, widths, hd)
    elif prof.qk_norm == "width":
        assert widths == {hp.n_heads * hd, hp.n_kv_heads * hd}, (name, widths)

    # MLP: gated when the layer has a gate projection (a module or, for fused MoE experts, a parameter).
    names = [n for n, _ in layer.named_parameters()]
    gated = any(re.search(r"(^|\.)(gate_proj|gate_up_proj|wi_0|w3)(\.|$)", n) for n in names)
    assert (prof.mlp == "gated") == gated, (name, prof.mlp, names)

    # Activation: the class transformers maps the profile's name to is the one in the layer (when it is a module).
    acts = [m for _, m in layer.named_modules() if type(m) in _act_classes()]
    if acts:
        want = transformers.activations.ACT2CLS[prof.act]
        want = want[0] if isinstance(want, tuple) else want
        assert {type(m) for m in acts} == {want}, (name, prof.act, {type(m).__name__ for m in acts})

    # Rotary: the width the rotary embedding's inverse frequencies cover, or none.
    # GPT-J keeps a (positions × rotary_dim) sin/cos table instead.
    text = [(n, b) for n, b in model.named_buffers() if not _NOT_TEXT.search(n)]
    widths = {2 * b.numel() for n, b in text if n.endswith("inv_freq")}
    widths |= {b.shape[-1] for n, b in text if n.endswith("embed_positions") and b.dim() == 2}
    assert widths == ({prof.rotary_dim} if prof.rotary_dim else set()), (name, widths, prof.rotary_dim)


def _act_classes() -> set[type]:
    out = set()
    for v in transformers.activations.ACT2CLS.values():
        out.add(v[0] if isinstance(v, tuple) else v)
    return out


# ---- partial rotary where transformers 5 saves it; softcapping switched off --------------------------------------

_TINY = {"vocab_size": 1000, "hidden_size": 128, "intermediate_size": 352, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512}  # fmt: skip


def _write(tmp_path: Path, doc: dict[str, Any]) -> tuple[Path, Any]:
    """config.json as given, and the fp32 eager model transformers builds from that very file."""
    (tmp_path / "config.json").write_text(json.dumps(doc))
    config = transformers.AutoConfig.from_pretrained(tmp_path)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32)
    return tmp_path / "config.json", model


def _rotary_width(model: Any) -> int:
    (inv,) = {b.numel() for n, b in model.named_buffers() if n.endswith("inv_freq")}
    return 2 * inv


def _ours_and_autograd(path: Path, model: Any, b: int, s: int) -> tuple[int, int]:
    from tests.oracles_memory import measure_saved_bytes

    ids = torch.randint(0, 1000, (b, s))
    measured = measure_saved_bytes(model, ids).total
    args = ("--training", "--attention", "eager", "--dtype", "fp32", "--device", "cpu", "--batch", str(b))
    r = run_cli("memory", "--config", str(path), "--json", *args, "--seq", str(s))
    assert r.code == 0, r.stderr
    return json.loads(r.stdout)["activation_bytes"], measured


# (model type, a factor other than the config class's default, its head_dim): every registry family whose
# transformers implementation rotates part of each head by `partial_rotary_factor` (Phi-3.5 / Phi-4-mini set it).
_PARTIAL = [("phi", 0.4, None), ("phi3", 0.75, None), ("stablelm", 0.5, None), ("nemotron", 0.25, 32),
            ("glm4", 0.25, 32)]  # fmt: skip


@pytest.mark.parametrize(("model_type", "factor", "head_dim"), _PARTIAL, ids=[p[0] for p in _PARTIAL])
def test_partial_rotary_only_in_rope_parameters(
    tmp_path: Path, model_type: str, factor: float, head_dim: int | None
) -> None:
    extra = {} if head_dim is None else {"head_dim": head_dim}
    doc = transformers.AutoConfig.for_model(
        model_type, pad_token_id=None, partial_rotary_factor=factor, **_TINY, **extra
    ).to_dict()
    doc.pop("partial_rotary_factor", None)  # Phi3Config also keeps a top-level copy: leave only the nested one
    assert doc["rope_parameters"]["partial_rotary_factor"] == factor
    path, model = _write(tmp_path, doc)
    hd = 128 // 4 if head_dim is None else head_dim
    default = transformers.AutoConfig.for_model(model_type).to_dict()["rope_parameters"]["partial_rotary_factor"]
    assert _rotary_width(model) == int(hd * factor) != int(hd * default)
    assert profile_for(HParams.from_config(doc), doc).rotary_dim == _rotary_width(model)
    for b, s in [(2, 64), (1, 200)]:
        ours, measured = _ours_and_autograd(path, model, b, s)
        assert abs(ours / measured - 1) <= 0.001, (b, s, ours, measured)


def test_partial_rotary_legacy_spellings(tmp_path: Path) -> None:
    """An older config.json: the factor at the top level (Phi-4-mini), or inside `rope_scaling` (which replaces
    `rope_parameters` in transformers 5)."""
    top = {"model_type": "phi3", **_TINY, "pad_token_id": None, "partial_rotary_factor": 0.75}
    _, model = _write(tmp_path, top)
    assert profile_for(HParams.from_config(top), top).rotary_dim == _rotary_width(model) == 24
    legacy = {"model_type": "stablelm", **_TINY, "pad_token_id": None,
              "rope_parameters": {"rope_type": "default", "rope_theta": 1e4},
              "rope_scaling": {"rope_type": "default", "partial_rotary_factor": 0.5}}  # fmt: skip
    _, model = _write(tmp_path, legacy)
    assert profile_for(HParams.from_config(legacy), legacy).rotary_dim == _rotary_width(model) == 16


def test_partial_rotary_factor_not_a_number(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "phi", **_TINY, "rope_parameters": {"partial_rotary_factor": "half"}}))
    r = run_cli("memory", "--config", str(path), "--training")
    assert r.code == 2
    assert "'rope_parameters.partial_rotary_factor' must be a number from 0 to 1" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_gemma2_softcapping_null_is_off(tmp_path: Path) -> None:
    """`attn_logit_softcapping: null` and `final_logit_softcapping: null` switch the tanh off (no default 50 / 30)."""
    doc = transformers.AutoConfig.for_model("gemma2", pad_token_id=None, head_dim=32, **_TINY).to_dict()
    doc.update(attn_logit_softcapping=None, final_logit_softcapping=None)
    path, model = _write(tmp_path, doc)
    ours, measured = _ours_and_autograd(path, model, 2, 64)
    assert abs(ours / measured - 1) <= 0.001, (ours, measured)
    doc.pop("attn_logit_softcapping")  # absent: Gemma2Config's default cap 50
    path, model = _write(tmp_path, doc)
    ours, measured = _ours_and_autograd(path, model, 2, 64)
    assert abs(ours / measured - 1) <= 0.001, (ours, measured)


# ---- inference: fused projections keep their whole output live --------------------------------------------------


@pytest.mark.parametrize(("b", "s"), [(2, 256), (8, 32)])
@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_phi3_inference_peak(tmp_path: Path, attention: str, b: int, s: int) -> None:
    """Phi-3's qkv_proj and gate_up_proj: the q/k/v and gate/up outputs are views of one live tensor each; the
    working set plus the KV cache is the CPU allocator's peak during a no-grad prefill."""
    from tests.oracles_memory import inference_peak_bytes

    doc = transformers.AutoConfig.for_model("phi3", pad_token_id=None, **_TINY).to_dict()
    (tmp_path / "config.json").write_text(json.dumps(doc))
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(
        transformers.AutoConfig.from_pretrained(tmp_path), attn_implementation=attention, dtype=torch.float32
    )
    peak, _ = inference_peak_bytes(model, torch.randint(0, 1000, (b, s)))
    r = run_cli("memory", "--config", str(tmp_path / "config.json"), "--json", "--dtype", "fp32",
                "--attention", attention, "--batch", str(b), "--seq", str(s))  # fmt: skip
    assert r.code == 0, r.stderr
    out = json.loads(r.stdout)
    ours = out["kv_cache_bytes"] + out["activation_bytes"]
    assert abs(ours / peak - 1) <= 0.01, (ours, peak)


# ---- q/k norms: what autograd saves for them ------------------------------------------------------------------

# Gemma 3 (Gemma's fp32 RMSNorm per head), Qwen 3 and Qwen 3 MoE (Llama's RMSNorm per head), OLMo 2 (fp32 RMSNorm over
# all heads at once): ours/autograd was 0.91 / 0.90 / 0.90 / 0.89 without the q/k norms.
_MOE = {"num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 64}
_QK = [("gemma3_text", {"head_dim": 32}), ("qwen3", {"head_dim": 32}), ("olmo2", {}),
       ("qwen3_moe", {"head_dim": 32, **_MOE})]  # fmt: skip


@pytest.mark.parametrize(("model_type", "extra"), _QK, ids=[q[0] for q in _QK])
def test_qk_norm_activations_exact(tmp_path: Path, model_type: str, extra: dict[str, Any]) -> None:
    doc = transformers.AutoConfig.for_model(model_type, pad_token_id=None, **_TINY, **extra).to_dict()
    path, model = _write(tmp_path, doc)
    for b, s in [(2, 64), (1, 200)]:
        ours, measured = _ours_and_autograd(path, model, b, s)
        assert abs(ours / measured - 1) <= 0.001, (b, s, ours, measured)
