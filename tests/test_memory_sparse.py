"""`mi memory` for the sparse and state-space families against real transformers caches after a forward.

DeepSeek-V3 caches its compressed latent (not per-head keys and values), gpt-oss mixes sliding and full layers,
Jamba caches keys and values in its attention layers only, Mamba / Mamba-2 layers keep a conv state and an ssm
state whatever the sequence length. Every expected figure is the bytes of the tensors the returned cache holds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import run_cli

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TINY: dict[str, dict[str, Any]] = {
    "deepseek_v3": {"vocab_size": 200, "hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16,
                    "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 4, "n_routed_experts": 4,
                    "num_experts_per_tok": 2, "n_group": 2, "topk_group": 1, "kv_lora_rank": 16, "q_lora_rank": 24,
                    "qk_rope_head_dim": 8, "qk_nope_head_dim": 8, "v_head_dim": 12, "first_k_dense_replace": 1},
    "deepseek_v2": {"vocab_size": 200, "hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16,
                    "num_hidden_layers": 2, "num_attention_heads": 4, "n_routed_experts": 4,
                    "num_experts_per_tok": 2, "kv_lora_rank": 12, "q_lora_rank": None, "qk_rope_head_dim": 4,
                    "qk_nope_head_dim": 8, "v_head_dim": 8},
    "gpt_oss": {"vocab_size": 200, "hidden_size": 32, "intermediate_size": 32, "num_hidden_layers": 4,
                "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "num_local_experts": 4,
                "num_experts_per_tok": 2, "sliding_window": 8},
    "jamba": {"vocab_size": 200, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 4,
              "num_attention_heads": 4, "num_key_value_heads": 2, "num_experts": 4, "attn_layer_period": 2,
              "attn_layer_offset": 1, "expert_layer_period": 2, "expert_layer_offset": 0, "mamba_d_state": 8},
    "mamba": {"vocab_size": 200, "hidden_size": 32, "num_hidden_layers": 3, "state_size": 8, "conv_kernel": 3},
    "mamba2": {"vocab_size": 200, "hidden_size": 32, "num_hidden_layers": 2, "state_size": 8, "num_heads": 4,
               "head_dim": 16, "n_groups": 2},
}  # fmt: skip


def _tiny(kind: str, dtype: Any) -> Any:
    torch.manual_seed(0)
    config = transformers.AutoConfig.for_model(kind, pad_token_id=None, **TINY[kind])
    return transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=dtype)


def _cache_bytes(model: Any, ids: Any) -> tuple[int, int]:
    """(keys + values bytes, conv + ssm state bytes) of the cache a forward with use_cache=True returns."""
    model.eval()
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True)
    cache = getattr(out, "cache", None) or out.past_key_values
    kv = state = 0
    for layer in cache.layers:
        for name in ("keys", "values"):
            t = getattr(layer, name, None)
            if isinstance(t, torch.Tensor):
                kv += t.numel() * t.element_size()
        for name in ("conv_states", "recurrent_states"):
            for t in (getattr(layer, name, None) or {}).values():
                if isinstance(t, torch.Tensor):
                    state += t.numel() * t.element_size()
    return kv, state


def _memory(tmp_path: Path, model: Any, *args: str) -> dict[str, Any]:
    path = tmp_path / "config.json"
    path.write_text(model.config.to_json_string(use_diff=False))
    r = run_cli("memory", "--config", str(path), "--json", *args)
    assert r.code == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", list(TINY))
@pytest.mark.parametrize(("dtype", "flag"), [("float32", "fp32"), ("bfloat16", "bf16")])
@pytest.mark.parametrize("seq", [5, 21])
def test_cache_and_state_equal_a_real_cache(tmp_path: Path, kind: str, dtype: str, flag: str, seq: int) -> None:
    model = _tiny(kind, getattr(torch, dtype))
    ids = torch.randint(0, 200, (2, seq))
    kv, state = _cache_bytes(model, ids)
    doc = _memory(tmp_path, model, "--dtype", flag, "--batch", "2", "--seq", str(seq))
    assert doc["kv_cache_bytes"] == kv
    assert (doc["state_bytes"] or 0) == state
    if kind in ("mamba", "mamba2", "jamba"):
        assert state > 0  # the state is really there, and independent of seq (two lengths, one figure)
        per_layer = doc["state"]["bytes_per_layer"]
        assert doc["state_bytes"] == per_layer * doc["state"]["layers"] * 2


def test_deepseek_reports_the_latent_and_the_per_head_size(tmp_path: Path) -> None:
    model = _tiny("deepseek_v3", torch.float32)
    doc = _memory(tmp_path, model, "--dtype", "fp32", "--seq", "10")
    # The latent: (kv_lora_rank 16 + qk_rope_head_dim 8) fp32 values per token in each of the 3 layers.
    assert doc["kv_cache_bytes_per_token"] == 3 * (16 + 8) * 4
    # Rebuilt per head at each step: 4 heads × (8 + 8 key dims + 12 value dims), 3 layers, fp32.
    assert doc["kv_cache_expanded_bytes_per_token"] == 3 * 4 * (8 + 8 + 12) * 4
    r = run_cli("memory", "--config", str(tmp_path / "config.json"), "--seq", "10", env={"COLUMNS": "80"})
    kv_table = r.stdout.split("KV cache\n", 1)[1].split("\n\n", 1)[0]  # cells wrap at 80 columns
    assert "(the" in kv_table and "latent)" in kv_table and "(rebuilt, not cached)" in kv_table


def test_mamba_state_row_in_the_table(tmp_path: Path) -> None:
    model = _tiny("mamba", torch.float32)
    _memory(tmp_path, model, "--seq", "10")
    r = run_cli("memory", "--config", str(tmp_path / "config.json"), env={"COLUMNS": "80"})
    assert r.code == 0
    assert "state (Mamba layers, independent of seq)" in r.stdout
    assert all(len(line) <= 80 and line == line.rstrip() for line in r.stdout.splitlines())


# Measured (b=2, s=16, eager, fp32, CPU): mi's figure is 0.796 of autograd's saved bytes; the latent attention's
# extra projections and norms (q_a/q_b, kv_a/kv_b, their RMSNorms, the rebuilt keys) are not modelled yet.
@pytest.mark.xfail(strict=True, reason="MLA activations modelled by analogy with the Llama layout: 0.796 of measured")
def test_deepseek_v3_activations_within_10_percent(tmp_path: Path) -> None:
    from .oracles_memory import measure_saved_bytes

    model = _tiny("deepseek_v3", torch.float32)
    b, s = 2, 16
    ids = torch.randint(0, 200, (b, s))
    measured = measure_saved_bytes(model, ids).total
    doc = _memory(tmp_path, model, "--training", "--attention", "eager", "--dtype", "fp32", "--device", "cpu",
                  "--batch", str(b), "--seq", str(s))  # fmt: skip
    ratio = doc["activation_bytes"] / measured
    assert 0.9 <= ratio <= 1.1, ratio
