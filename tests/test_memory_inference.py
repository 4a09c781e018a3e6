"""`mi memory` inference figures against the CPU allocator's peak during a real no-grad prefill.

tests/oracles_memory.py `inference_peak_bytes` sums the allocation events torch.profiler records during one
forward with use_cache=True (weights, allocated before, excluded). That peak is the KV cache (complete by the
last layer) plus the working set; ours is `kv_cache_bytes + activation_bytes` without --training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.conftest import run_cli  # noqa: E402
from tests.oracles_memory import config_dict, inference_peak_bytes, tiny_model  # noqa: E402

GPT2 = {"vocab_size": 1000, "n_positions": 1024, "n_embd": 128, "n_layer": 2, "n_head": 4}
LLAMA = {
    "vocab_size": 1000,
    "hidden_size": 128,
    "intermediate_size": 352,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 1024,
}


@pytest.mark.parametrize(("b", "s"), [(2, 256), (8, 32)])
@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize(("kind", "overrides"), [("gpt2", GPT2), ("llama", LLAMA)])
def test_inference_peak_within_10_percent(
    tmp_path: Path, kind: str, overrides: dict[str, Any], attention: str, b: int, s: int
) -> None:
    model = tiny_model(kind, **overrides)
    model.config._attn_implementation = attention
    ids = torch.randint(0, overrides["vocab_size"], (b, s))
    peak, end = inference_peak_bytes(model, ids)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(config_dict(model)))
    r = run_cli("memory", "--config", str(cfg), "--json", "--dtype", "fp32", "--attention", attention,
                "--batch", str(b), "--seq", str(s))  # fmt: skip
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    ours = doc["kv_cache_bytes"] + doc["activation_bytes"]
    print(f"{kind} {attention} b={b} s={s}: ours/measured peak {ours / peak:.3f}")
    assert abs(ours / peak - 1) <= 0.10, (ours, peak)
    # What survives the forward is exactly the KV cache plus the logits of every position.
    assert end == doc["kv_cache_bytes"] + b * s * overrides["vocab_size"] * 4
