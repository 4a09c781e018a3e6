"""The sparse and state-space families of analysis/families/sparse.py against transformers, not against themselves.

Totals: `sum(p.numel())` of the transformers model built on the meta device from the same config. Terms: the
cross-check assigns every named parameter to exactly one term. Active parameters: counted on the meta model as
every parameter outside the routed experts plus, in each MoE layer, top-k / E of its routed-expert tensors (each
routed expert is a slice of those fused tensors), i.e. dense parts + shared experts + the k experts a token uses.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelscope_inspect.analysis.hparams import HParams
from modelscope_inspect.analysis.params import count_params

from .conftest import ROOT, run_cli
from .test_families_decoders import _assert_exact

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

FAMILIES = ("deepseek_v2", "deepseek_v3", "dbrx", "gpt_oss", "mamba", "mamba2", "jamba")

# DbrxAttentionConfig has no rope_theta unless given (its default config does not build); DeepseekV2Config's
# default num_experts_per_tok is None (it builds, but cannot route): the defaults with these filled in.
_DEFAULT_OVERRIDES: dict[str, dict[str, Any]] = {
    "dbrx": {"attn_config": {"rope_theta": 500000.0}},
    "deepseek_v2": {"num_experts_per_tok": 6},
}


def _config(cfg: dict[str, Any]) -> Any:
    kwargs = {k: v for k, v in cfg.items() if k not in ("model_type", "architectures")}
    kwargs.setdefault("pad_token_id", None)
    return transformers.AutoConfig.for_model(cfg["model_type"], **kwargs)


def _meta(config: Any) -> Any:
    with torch.device("meta"):
        return transformers.AutoModelForCausalLM.from_config(config)


def _routing(config: Any) -> tuple[int, int]:
    """(experts, top-k) as the model reads them from its config."""
    if config.model_type == "dbrx":
        return config.ffn_config.moe_num_experts, config.ffn_config.moe_top_k
    e = getattr(config, "n_routed_experts", None) or getattr(config, "num_local_experts", None)
    return int(e or config.num_experts), int(config.num_experts_per_tok)


_ROUTED = re.compile(r"\.experts\.")  # routed experts; DeepSeek's always-on `shared_experts` do not match


def _active_on_model(model: Any) -> int:
    """Parameters one token uses, counted on the model: all but the routed experts, plus k/E of those."""
    e, k = _routing(model.config)
    total = 0
    for name, p in model.named_parameters():
        if _ROUTED.search(name):
            assert p.shape[0] % e == 0, name  # every routed tensor is E experts stacked on its first dimension
            total += p.numel() // e * k
        else:
            total += p.numel()
    return total


def _check(cfg_dict: dict[str, Any], model: Any) -> Any:
    report = count_params(HParams.from_config(cfg_dict))
    _assert_exact(report, model, cfg_dict)
    if report.is_moe:
        assert report.active_params == _active_on_model(model)
    else:
        assert report.active_params == report.total_params
    return report


# ---- the config classes' defaults -----------------------------------------------------------------------------


@pytest.mark.parametrize("model_type", FAMILIES)
def test_config_class_defaults_exact(model_type: str) -> None:
    config = transformers.AutoConfig.for_model(model_type, **_DEFAULT_OVERRIDES.get(model_type, {}))
    doc = json.loads(config.to_json_string(use_diff=False))
    hp = HParams.from_config(doc)
    assert hp.arch == model_type
    _check(doc, _meta(config))


# ---- published sizes and switches -----------------------------------------------------------------------------

CASES: list[tuple[str, dict[str, Any]]] = [
    ("deepseek-v2-lite", {"model_type": "deepseek_v2", "vocab_size": 102400, "hidden_size": 2048,
                          "intermediate_size": 10944, "moe_intermediate_size": 1408, "num_hidden_layers": 27,
                          "num_attention_heads": 16, "num_key_value_heads": 16, "n_shared_experts": 2,
                          "n_routed_experts": 64, "num_experts_per_tok": 6, "first_k_dense_replace": 1,
                          "moe_layer_freq": 1, "kv_lora_rank": 512, "q_lora_rank": None, "qk_rope_head_dim": 64,
                          "qk_nope_head_dim": 128, "v_head_dim": 128, "topk_method": "greedy",
                          "tie_word_embeddings": False}),
    ("deepseek-v3", json.loads((ROOT / "examples/configs/deepseek-v3.json").read_text())),
    ("deepseek-v2-small-biases", {"model_type": "deepseek_v2", "vocab_size": 300, "hidden_size": 64,
                                  "intermediate_size": 96, "moe_intermediate_size": 24, "num_hidden_layers": 3,
                                  "num_attention_heads": 4, "n_shared_experts": 0, "n_routed_experts": 8,
                                  "num_experts_per_tok": 3, "first_k_dense_replace": 2, "kv_lora_rank": 16,
                                  "q_lora_rank": 12, "qk_rope_head_dim": 8, "qk_nope_head_dim": 4, "v_head_dim": 10,
                                  "attention_bias": True, "mlp_bias": True, "tie_word_embeddings": True}),
    ("deepseek-v3-small-plain-q", {"model_type": "deepseek_v3", "vocab_size": 300, "hidden_size": 64,
                                   "intermediate_size": 96, "moe_intermediate_size": 24, "num_hidden_layers": 3,
                                   "num_attention_heads": 4, "num_key_value_heads": 4, "n_shared_experts": 2,
                                   "n_routed_experts": 8, "num_experts_per_tok": 2, "n_group": 2, "topk_group": 1,
                                   "first_k_dense_replace": 0, "kv_lora_rank": 16, "q_lora_rank": None,
                                   "qk_rope_head_dim": 8, "qk_nope_head_dim": 8, "v_head_dim": 12}),
    ("dbrx", {"model_type": "dbrx", "d_model": 6144, "n_heads": 48, "n_layers": 40, "max_seq_len": 32768,
              "vocab_size": 100352, "attn_config": {"clip_qkv": 8, "kv_n_heads": 8, "rope_theta": 500000},
              "ffn_config": {"ffn_hidden_size": 10752, "moe_num_experts": 16, "moe_top_k": 4,
                             "moe_jitter_eps": 0.01, "moe_loss_weight": 0.05}}),
    ("gpt-oss-20b", {"model_type": "gpt_oss", "vocab_size": 201088, "hidden_size": 2880, "intermediate_size": 2880,
                     "num_hidden_layers": 24, "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64,
                     "num_local_experts": 32, "num_experts_per_tok": 4, "sliding_window": 128,
                     "tie_word_embeddings": False}),
    ("gpt-oss-120b", {"model_type": "gpt_oss", "vocab_size": 201088, "hidden_size": 2880, "intermediate_size": 2880,
                      "num_hidden_layers": 36, "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64,
                      "num_local_experts": 128, "num_experts_per_tok": 4, "sliding_window": 128,
                      "tie_word_embeddings": False}),
    ("gpt-oss-small-no-bias-tied", {"model_type": "gpt_oss", "vocab_size": 300, "hidden_size": 64,
                                    "intermediate_size": 48, "num_hidden_layers": 3, "num_attention_heads": 4,
                                    "num_key_value_heads": 2, "head_dim": 24, "num_local_experts": 4,
                                    "num_experts_per_tok": 2, "attention_bias": False, "tie_word_embeddings": True,
                                    "layer_types": ["full_attention", "sliding_attention", "full_attention"]}),
    ("mamba-130m", {"model_type": "mamba", "vocab_size": 50280, "hidden_size": 768, "num_hidden_layers": 24,
                    "state_size": 16, "expand": 2, "conv_kernel": 4, "time_step_rank": 48,
                    "intermediate_size": 1536}),
    ("mamba-2.8b", {"model_type": "mamba", "vocab_size": 50280, "hidden_size": 2560, "num_hidden_layers": 64,
                    "state_size": 16, "expand": 2, "conv_kernel": 4, "time_step_rank": 160,
                    "intermediate_size": 5120}),
    ("mamba-small-biases-untied", {"model_type": "mamba", "vocab_size": 300, "hidden_size": 40,
                                   "num_hidden_layers": 2, "state_size": 6, "expand": 3, "conv_kernel": 3,
                                   "use_bias": True, "use_conv_bias": False, "time_step_rank": 5,
                                   "tie_word_embeddings": False}),
    ("codestral-mamba-7b", {"model_type": "mamba2", "vocab_size": 32768, "hidden_size": 4096,
                            "num_hidden_layers": 64, "num_heads": 128, "head_dim": 64, "state_size": 128,
                            "n_groups": 8, "expand": 2, "conv_kernel": 4, "tie_word_embeddings": False}),
    ("mamba2-2.7b", {"model_type": "mamba2", "vocab_size": 50288, "hidden_size": 2560, "num_hidden_layers": 64,
                     "num_heads": 80, "head_dim": 64, "state_size": 128, "n_groups": 1, "expand": 2,
                     "conv_kernel": 4, "tie_word_embeddings": True}),
    ("mamba2-small-biases", {"model_type": "mamba2", "vocab_size": 300, "hidden_size": 32, "num_hidden_layers": 2,
                             "num_heads": 4, "head_dim": 16, "state_size": 8, "n_groups": 2, "use_bias": True,
                             "use_conv_bias": False}),
    ("jamba-v0.1", {"model_type": "jamba", "vocab_size": 65536, "hidden_size": 4096, "intermediate_size": 14336,
                    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
                    "num_experts": 16, "num_experts_per_tok": 2, "expert_layer_period": 2, "expert_layer_offset": 1,
                    "attn_layer_period": 8, "attn_layer_offset": 4, "mamba_d_state": 16, "mamba_d_conv": 4,
                    "mamba_expand": 2, "mamba_dt_rank": 256, "mamba_conv_bias": True, "mamba_proj_bias": False}),
    ("jamba-small-periods", {"model_type": "jamba", "vocab_size": 300, "hidden_size": 32, "intermediate_size": 48,
                             "num_hidden_layers": 6, "num_attention_heads": 4, "num_key_value_heads": 2,
                             "num_experts": 4, "num_experts_per_tok": 3, "expert_layer_period": 3,
                             "expert_layer_offset": 2, "attn_layer_period": 2, "attn_layer_offset": 0,
                             "mamba_d_state": 4, "mamba_expand": 3, "mamba_proj_bias": True,
                             "tie_word_embeddings": True}),
]  # fmt: skip

# The model cards' totals and active counts (billions, as rounded there), checked to 2 %: the exact figures come
# from the oracle; these say that the configs above are the published models. None: the card gives no active count
# comparable to ours (gpt-oss and DeepSeek-V2-Lite give it without the embeddings).
PUBLISHED: dict[str, tuple[float, float | None]] = {
    "deepseek-v2-lite": (15.7, None),  # DeepSeek: 15.7B total, 2.4B active without embeddings
    "deepseek-v3": (671.0, 37.0),  # DeepSeek: 671B total, 37B activated per token
    "dbrx": (132.0, 36.0),  # Databricks: 132B total, 36B active
    "gpt-oss-20b": (21.0, None),  # OpenAI: 21B total (3.6B active without the embedding)
    "gpt-oss-120b": (117.0, None),  # OpenAI: 117B total (5.1B active without the embedding)
    "mamba-130m": (0.13, None),
    "mamba-2.8b": (2.8, None),
    "codestral-mamba-7b": (7.3, None),  # Mistral: 7,285,403,648 parameters
    "mamba2-2.7b": (2.7, None),
    "jamba-v0.1": (52.0, 12.0),  # AI21: 52B total, 12B active
}


def _near(ours: int, card: float) -> bool:
    return abs(ours / 1e9 - card) <= 0.02 * card


@pytest.mark.parametrize(("case", "cfg"), CASES, ids=[c for c, _ in CASES])
def test_published_and_variant_configs_exact(case: str, cfg: dict[str, Any]) -> None:
    model = _meta(_config(cfg))
    report = _check(cfg, model)
    if case in PUBLISHED:
        total, active = PUBLISHED[case]
        assert _near(report.total_params, total), report.total_params
        assert active is None or _near(report.active_params, active), report.active_params
    print(case, f"{report.total_params:,}", f"{report.active_params:,}")


def test_deepseek_v3_total_as_published() -> None:
    cfg = json.loads((ROOT / "examples/configs/deepseek-v3.json").read_text())
    assert count_params(HParams.from_config(cfg)).total_params == 671_026_404_352


def test_every_family_has_cases() -> None:
    assert {cfg["model_type"] for _, cfg in CASES} == set(FAMILIES)


# ---- bad input: exit 2 naming the key -------------------------------------------------------------------------

_BAD = [
    ({"model_type": "deepseek_v3", "vocab_size": 100, "hidden_size": 64, "num_hidden_layers": 2,
      "num_attention_heads": 4, "kv_lora_rank": 16, "n_routed_experts": 4, "num_experts_per_tok": 5},
     "num_experts_per_tok"),
    ({"model_type": "deepseek_v3", "vocab_size": 100, "hidden_size": 64, "num_hidden_layers": 2,
      "num_attention_heads": 4}, "kv_lora_rank"),
    ({"model_type": "deepseek_v2", "vocab_size": 100, "hidden_size": 64, "num_hidden_layers": 2,
      "num_attention_heads": 4, "kv_lora_rank": None}, "kv_lora_rank"),
    ({"model_type": "gpt_oss", "num_local_experts": 4, "num_experts_per_tok": 8}, "num_local_experts"),
    ({"model_type": "jamba", "num_experts": 4, "num_experts_per_tok": 6}, "num_experts_per_tok"),
    ({"model_type": "dbrx", "ffn_config": {"moe_num_experts": 4, "moe_top_k": 5}}, "moe_top_k"),
    ({"model_type": "jamba", "attn_layer_period": 4, "attn_layer_offset": 4}, "attn_layer_offset"),
    ({"model_type": "mamba2", "hidden_size": 1000}, "num_heads"),
    ({"model_type": "dbrx", "tie_word_embeddings": True}, "tie_word_embeddings"),
]  # fmt: skip


@pytest.mark.parametrize(("cfg", "key"), _BAD, ids=[k for _, k in _BAD])
def test_bad_config_exit_2_naming_the_key(tmp_path: Path, cfg: dict[str, Any], key: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    r = run_cli("params", "--config", str(path))
    assert r.code == 2, r.stdout
    assert key in r.stderr
    assert "Traceback" not in r.stderr


def test_families_need_their_config() -> None:
    r = run_cli("params", "--arch", "deepseek_v3", "--vocab", "100", "--d-model", "64", "--layers", "2",
                "--heads", "4")  # fmt: skip
    assert r.code == 2
    assert "--config" in r.stderr


def test_params_config_imports_no_torch(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(dict(CASES)["jamba-v0.1"]))
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from modelscope_inspect.cli import app\n"
        "for f in ('examples/configs/deepseek-v3.json', " + repr(str(path)) + "):\n"
        "    r = CliRunner().invoke(app, ['params', '--config', f, '--json'])\n"
        "    assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in ('torch', 'transformers', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
