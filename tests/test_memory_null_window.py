"""`"sliding_window": null` (Mistral-7B-v0.2/v0.3, Mistral-Nemo) means no window, as in transformers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import run_cli

MISTRAL_V03 = {  # mistralai/Mistral-7B-v0.3 config.json
    "architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 4096,
    "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
    "head_dim": 128, "max_position_embeddings": 32768, "rope_theta": 1000000.0, "sliding_window": None,
    "vocab_size": 32768, "torch_dtype": "bfloat16", "tie_word_embeddings": False,
}  # fmt: skip


def _memory(tmp_path: Path, config: dict[str, object], *args: str) -> dict[str, object]:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    r = run_cli("memory", "--config", str(path), "--json", *args)
    assert r.code == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def test_null_window_caches_every_token(tmp_path: Path) -> None:
    doc = _memory(tmp_path, MISTRAL_V03, "--seq", "32768", "--dtype", "bf16")
    # 2 (k, v) · 32 layers · 8 KV heads · 128 dims · 2 bytes per token, every one of the 32,768 tokens kept: 4 GiB.
    assert doc["kv_cache_bytes"] == 4 * 1024**3
    assert set(doc["kv_cache_tokens_per_layer"]) == {32768}  # type: ignore[arg-type]


def test_absent_window_takes_the_class_default(tmp_path: Path) -> None:
    config = {k: v for k, v in MISTRAL_V03.items() if k != "sliding_window"}
    doc = _memory(tmp_path, config, "--seq", "32768", "--dtype", "bf16")
    assert max(doc["kv_cache_tokens_per_layer"]) <= 4096  # type: ignore[type-var]
    assert doc["kv_cache_bytes"] < 1024**3


def test_null_window_against_a_real_cache(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from .oracles_memory import config_dict, kv_cache_bytes, tiny_model

    model = tiny_model("mistral", vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, sliding_window=None)  # fmt: skip
    ids = torch.randint(0, 1000, (2, 40))
    measured, _shapes = kv_cache_bytes(model, ids)
    config = config_dict(model)
    assert config["sliding_window"] is None  # what save_pretrained writes
    doc = _memory(tmp_path, config, "--dtype", "fp32", "--batch", "2", "--seq", "40")
    assert doc["kv_cache_bytes"] == measured
