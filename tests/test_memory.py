"""`mi memory`: published figures, options, JSON schema, bad input, and the no-torch guarantee.

The measured oracles (autograd's saved tensors, transformers' KV cache, torch's flop counter) are in
tests/test_memory_oracles.py.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import modelscope_inspect as mi
from tests.conftest import ROOT, run_cli

LLAMA3_8B = ROOT / "examples" / "configs" / "llama-3-8b.json"
TINY_GPT2 = ROOT / "examples" / "tiny-gpt2"
GIB = 1024**3


def _json(*args: str) -> dict[str, Any]:
    r = run_cli("memory", *args, "--json")
    assert r.code == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def _write(tmp_path: Path, config: dict[str, Any], name: str = "config.json") -> str:
    p = tmp_path / name
    p.write_text(json.dumps(config))
    return str(p)


# ---------------------------------------------------------------------------------------------------------------
# Published figures


def test_llama3_8b_kv_cache_is_exactly_one_gib() -> None:
    # 2 (K and V) × 32 layers × 8 KV heads × 128 head_dim × 8192 tokens × 1 sequence × 2 bytes = 2^30.
    doc = _json("--config", str(LLAMA3_8B), "--seq", "8192", "--batch", "1", "--dtype", "fp16")
    assert doc["kv_cache_bytes"] == GIB
    assert doc["kv_cache_bytes_per_token"] == 2 * 32 * 8 * 128 * 2
    assert doc["params"] == 8_030_261_248  # Meta's published parameter count for Llama-3-8B
    assert doc["weights_bytes"] == 8_030_261_248 * 2


def test_llama3_8b_from_flags_matches_config() -> None:
    flags = ["--arch", "llama", "--vocab", "128256", "--d-model", "4096", "--layers", "32", "--heads", "32"]
    flags += ["--kv-heads", "8", "--d-ff", "14336", "--untied"]
    doc = _json(*flags, "--seq", "8192", "--dtype", "fp16")
    assert doc["kv_cache_bytes"] == GIB
    assert doc["params"] == 8_030_261_248


def test_kv_cache_table_is_labelled_gib() -> None:
    r = run_cli("memory", "--config", str(LLAMA3_8B), "--seq", "8192", "--dtype", "fp16")
    assert r.code == 0, r.stderr
    line = next(line for line in r.stdout.splitlines() if line.startswith("batch 1 × seq 8192"))
    assert "1,073,741,824" in line and "1.000 GiB" in line


# ---------------------------------------------------------------------------------------------------------------
# Weights


def test_weights_at_every_precision_and_as_stored() -> None:
    inv = mi.load(str(TINY_GPT2))
    doc = _json(str(TINY_GPT2), "--dtype", "fp32", "--seq", "16")
    n = inv.total_params
    assert doc["params"] == n
    bits = {"fp32": 32, "fp16": 16, "bf16": 16, "fp8": 8, "int8": 8, "int4": 4}
    assert doc["weights_by_precision"] == {k: n * b // 8 for k, b in bits.items()}
    assert doc["stored"]["bytes"] == inv.total_bytes
    assert doc["stored"]["by_dtype"] == {k: {"params": v.params, "bytes": v.nbytes} for k, v in inv.by_dtype.items()}


def test_group_quantization_overhead() -> None:
    doc = _json("--config", str(LLAMA3_8B), "--dtype", "int4", "--group-size", "128", "--seq", "16")
    n = doc["params"]
    groups = math.ceil(n / 128)
    # 4 bits a weight plus, per group of 128, an fp16 scale and a 4-bit zero point.
    assert doc["weights_by_precision"]["int4"] == (n * 4 + groups * (16 + 4) + 7) // 8
    assert doc["weights_by_precision"]["int8"] == (n * 8 + groups * (16 + 8) + 7) // 8
    assert doc["weights_by_precision"]["fp16"] == n * 2  # float types carry no group scales
    assert doc["weights_bytes"] == doc["weights_by_precision"]["int4"]
    assert doc["options"]["activation_dtype"] == "fp16"  # quantized weights compute in fp16
    assert any("group" in a for a in doc["assumptions"])


# ---------------------------------------------------------------------------------------------------------------
# Training


@pytest.mark.parametrize(
    ("args", "per_param"),
    [
        (["--dtype", "bf16", "--mixed-precision", "--optimizer", "adamw"], 16),  # 2 + 2 + 4 + 8 (ZeRO paper)
        (["--dtype", "fp32", "--optimizer", "adam"], 16),  # 4 + 4 + 8
        (["--dtype", "bf16", "--optimizer", "adamw"], 8),  # pure bf16: 2 + 2 + 4
        (["--dtype", "fp32", "--optimizer", "sgd"], 8),  # 4 + 4, no momentum buffer
    ],
)
def test_training_bytes_per_param(args: list[str], per_param: int) -> None:
    doc = _json("--config", str(LLAMA3_8B), "--seq", "512", "--training", *args)
    n = doc["params"]
    state = [t for t in doc["training_terms"] if "bytes_per_param" in t]
    assert sum(t["bytes_per_param"] for t in state) == per_param
    assert sum(t["bytes"] for t in state) == per_param * n
    # Every term is printed and the total is their sum, activations included.
    assert doc["training_bytes"] == sum(t["bytes"] for t in doc["training_terms"])
    assert doc["training_bytes"] == per_param * n + doc["activation_bytes"]


def test_recompute_and_attention_order() -> None:
    base = ["--config", str(LLAMA3_8B), "--seq", "4096", "--dtype", "bf16", "--training"]
    none = _json(*base, "--attention", "eager")["activation_bytes"]
    selective = _json(*base, "--attention", "eager", "--recompute", "selective")["activation_bytes"]
    full = _json(*base, "--attention", "eager", "--recompute", "full")["activation_bytes"]
    flash = _json(*base, "--attention", "flash")["activation_bytes"]
    assert full < selective < none
    assert flash < none
    # Selective recompute drops exactly the s×s tensors, which flash never keeps (flash adds only the lse and
    # keeps k/v at the 8 KV heads instead of repeating them to 32).
    b, s, a, L, h = 1, 4096, 32, 32, 4096
    assert none - selective == L * b * a * s * s * (4 + 2)  # fp32 softmax output + its bf16 copy
    kv_saving = L * b * s * 2 * (32 - 8) * 128 * 2
    assert selective - flash == kv_saving - L * b * a * s * 4
    assert full < 2 * L * b * s * h * 2 + none / L + 3 * GIB  # inputs + one layer + outside terms


def test_korthikanti_figure_is_printed_beside_ours() -> None:
    doc = _json("--config", str(LLAMA3_8B), "--seq", "2048", "--batch", "2", "--dtype", "fp16", "--training")
    s, b, h, L, a = 2048, 2, 4096, 32, 32
    assert doc["korthikanti_bytes"] == s * b * h * L * (34 + 5 * a * s // h)
    r = run_cli("memory", "--config", str(LLAMA3_8B), "--seq", "2048", "--training")
    assert "Korthikanti et al. 2022" in r.stdout and "s·b·h·L·(34 + 5·a·s/h)" in r.stdout


def test_flops_per_token() -> None:
    doc = _json("--config", str(LLAMA3_8B), "--seq", "8192", "--dtype", "bf16", "--training")
    n, v, h, L, s = doc["params"], 128256, 4096, 32, 8192
    # Untied: the input embedding is a lookup, the LM head a matmul.
    assert doc["flops_per_token"]["forward"] == 2 * (n - v * h) + 4 * L * s * h
    assert doc["flops_per_token"]["training"] == 3 * doc["flops_per_token"]["forward"]


# ---------------------------------------------------------------------------------------------------------------
# KV-cache normalisation across families


def test_kv_heads_across_families(tmp_path: Path) -> None:
    chatglm = {
        "model_type": "chatglm", "padded_vocab_size": 65024, "hidden_size": 4096, "num_layers": 28,
        "num_attention_heads": 32, "kv_channels": 128, "ffn_hidden_size": 13696, "multi_query_attention": True,
        "multi_query_group_num": 2, "seq_length": 32768,
    }  # fmt: skip
    doc = _json("--config", _write(tmp_path, chatglm), "--seq", "1000", "--dtype", "fp16")
    assert doc["kv_cache_bytes"] == 2 * 28 * 2 * 128 * 1000 * 2
    falcon = {
        "model_type": "falcon", "vocab_size": 65024, "hidden_size": 4544, "num_hidden_layers": 32,
        "num_attention_heads": 71, "multi_query": True, "new_decoder_architecture": False, "parallel_attn": True,
    }  # fmt: skip
    doc = _json("--config", _write(tmp_path, falcon, "f.json"), "--seq", "1000", "--dtype", "fp16")
    assert doc["kv_cache_bytes"] == 2 * 32 * 1 * 64 * 1000 * 2  # one KV head of 4544/71 = 64
    bert = {"model_type": "bert", "vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12,
            "num_attention_heads": 12, "intermediate_size": 3072, "max_position_embeddings": 512}  # fmt: skip
    doc = _json("--config", _write(tmp_path, bert, "b.json"), "--seq", "512")
    assert doc["kv_cache_bytes"] == 0
    assert any("encoder-only" in a for a in doc["assumptions"])


def test_kv_dtype_and_layer_types(tmp_path: Path) -> None:
    cfg = json.loads(LLAMA3_8B.read_text())
    cfg.update(sliding_window=1024, layer_types=["sliding_attention", "full_attention"] * 16, model_type="mistral")
    doc = _json("--config", _write(tmp_path, cfg), "--seq", "8192", "--kv-dtype", "int8")
    per_layer_token = 2 * 8 * 128 * 1  # int8: one byte
    assert doc["kv_cache_bytes"] == per_layer_token * (16 * 8192 + 16 * 1023)
    assert doc["options"]["kv_dtype"] == "int8"


# ---------------------------------------------------------------------------------------------------------------
# Bad input: one line, exit 2, the message names what is wrong


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--seq", "0"], "--seq must be positive"),
        (["--seq", "-5"], "--seq must be positive"),
        (["--batch", "0"], "--batch must be positive"),
        (["--dtype", "fp12"], "unknown dtype 'fp12'"),
        (["--kv-dtype", "q4"], "unknown dtype 'q4'"),
        (["--attention", "magic"], "--attention"),
        (["--training", "--dtype", "int4"], "--training needs --dtype"),
        (["--training", "--mixed-precision", "--dtype", "fp32"], "--mixed-precision needs"),
        (["--group-size", "0"], "--group-size must be positive"),
    ],
)
def test_bad_options_exit_2(args: list[str], needle: str) -> None:
    r = run_cli("memory", "--config", str(LLAMA3_8B), *args)
    assert r.code == 2
    assert needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize("key", ["vocab_size", "hidden_size", "num_hidden_layers"])
def test_config_missing_key_is_named(tmp_path: Path, key: str) -> None:
    cfg = json.loads(LLAMA3_8B.read_text())
    del cfg[key]
    r = run_cli("memory", "--config", _write(tmp_path, cfg), "--training")
    assert r.code == 2, r.stdout
    assert key in r.stderr and "Traceback" not in r.stderr


def test_config_key_defaulted_like_transformers_is_said(tmp_path: Path) -> None:
    # A key transformers' config class defaults (LlamaConfig: intermediate_size 11008) is read the way
    # from_pretrained reads it, and the assumptions say so.
    cfg = json.loads(LLAMA3_8B.read_text())
    del cfg["intermediate_size"]
    doc = _json("--config", _write(tmp_path, cfg), "--training")
    assert doc["hparams"]["d_ff"] == 11008
    assert any("intermediate_size not in config.json" in a and "11008" in a for a in doc["assumptions"])


def test_flags_without_heads_exit_2() -> None:
    r = run_cli("memory", "--arch", "llama", "--vocab", "100", "--d-model", "64", "--layers", "2")
    assert r.code == 2 and "--heads" in r.stderr


def test_path_without_config_and_missing_path(tmp_path: Path) -> None:
    r = run_cli("memory", str(ROOT / "fixtures" / "tiny_seed.safetensors"))
    assert r.code == 2 and "config.json" in r.stderr
    r = run_cli("memory", str(tmp_path / "nope"))
    assert r.code == 2
    r = run_cli("memory")
    assert r.code == 2 and "--config" in r.stderr
    r = run_cli("memory", str(TINY_GPT2), "--layers", "3")
    assert r.code == 2 and "--layers" in r.stderr


# ---------------------------------------------------------------------------------------------------------------
# Schema and the no-torch guarantee


def test_json_schema() -> None:
    doc = _json(str(TINY_GPT2), "--training", "--seq", "32", "--dtype", "fp32")
    for key in ("weights_bytes", "kv_cache_bytes", "activation_bytes", "training_bytes", "flops_per_token"):
        assert isinstance(doc[key], int | dict), key
    assert doc["schema_version"] == 1 and doc["command"] == "memory"
    assert isinstance(doc["assumptions"], list) and len(doc["assumptions"]) >= 8
    inference = _json(str(TINY_GPT2), "--seq", "32")
    assert "training_bytes" not in inference
    assert inference["inference_bytes"] == (
        inference["weights_bytes"] + inference["kv_cache_bytes"] + inference["activation_bytes"]
    )


def test_memory_never_imports_torch(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        from modelscope_inspect.cli import app
        for args in (["memory", {str(TINY_GPT2)!r}, "--training", "--json"],
                     ["memory", "--config", {str(LLAMA3_8B)!r}, "--attention", "eager", "--training"],
                     ["memory", "--arch", "gpt2", "--vocab", "100", "--d-model", "16", "--layers", "2",
                      "--heads", "2"]):
            try:
                app(args)
            except SystemExit as e:
                assert e.code in (0, None), e.code
        heavy = sorted(m for m in ("torch", "numpy", "transformers", "onnx", "safetensors") if m in sys.modules)
        assert not heavy, heavy
        print("ok")
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("ok")
