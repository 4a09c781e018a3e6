"""`mi memory` against measurements of real transformers models (tests/oracles_memory.py), not against itself.

* activations: bytes autograd saves for backward in a training forward (saved_tensors_hooks, unique storages,
  parameters excluded) for HF GPT-2 and Llama, eager attention, fp32, two shapes each — within ±10 %;
  plus the GPU dropout kernel, SDPA, bf16, Mistral sliding-window and Qwen2 variants.
* KV cache: the bytes a real transformers DynamicCache holds after a forward with use_cache=True.
* FLOPs: torch.utils.flop_counter over a forward and a backward.

Run `python -m tests.test_memory_oracles` to print the ratio table (ours/measured, Korthikanti/measured).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.conftest import run_cli  # noqa: E402
from tests.oracles_memory import config_dict, kv_cache_bytes, measure_saved_bytes, tiny_model  # noqa: E402

TOLERANCE = 0.10

GPT2 = {"vocab_size": 1000, "n_positions": 512, "n_embd": 128, "n_layer": 2, "n_head": 4}
LLAMA = {
    "vocab_size": 1000,
    "hidden_size": 128,
    "intermediate_size": 352,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
}
SMALL = {"vocab_size": 1000, "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4}
MOE = {**SMALL, "intermediate_size": 352, "num_key_value_heads": 2, "num_experts_per_tok": 2}
SHAPES = [(4, 64), (1, 256)]  # (batch, seq)

# (kind, config overrides, torch dtype name, attention implementation, device flag)
CASES: list[tuple[str, dict[str, Any], str, str, str]] = [
    ("gpt2", GPT2, "float32", "eager", "cpu"),
    ("llama", LLAMA, "float32", "eager", "cpu"),
]
EXTRA_CASES: list[tuple[str, dict[str, Any], str, str, str]] = [
    ("gpt2", GPT2, "float32", "eager", "gpu"),  # fused native_dropout: 1-byte masks
    ("llama", {**LLAMA, "attention_dropout": 0.1, "num_key_value_heads": 4}, "float32", "eager", "gpu"),
    ("llama", LLAMA, "float32", "sdpa", "cpu"),
    ("gpt2", GPT2, "float32", "sdpa", "cpu"),  # CPU + dropout: PyTorch's math kernel
    ("llama", LLAMA, "bfloat16", "eager", "cpu"),
    ("gpt2", GPT2, "bfloat16", "eager", "cpu"),
    ("mistral", {**LLAMA, "sliding_window": 32}, "float32", "eager", "cpu"),
    ("mistral", {**LLAMA, "sliding_window": 32}, "float32", "sdpa", "cpu"),  # window < seq: k/v repeated, mask kept
    ("qwen2", LLAMA, "float32", "eager", "cpu"),
    (
        "opt",
        {**SMALL, "ffn_dim": 512, "word_embed_proj_dim": 128, "max_position_embeddings": 512},
        "float32",
        "eager",
        "cpu",
    ),
    ("phi", {**SMALL, "intermediate_size": 512}, "float32", "eager", "cpu"),  # parallel block, partial rotary
    ("falcon", SMALL, "float32", "eager", "cpu"),  # multi-query, parallel block
    ("gemma", {**LLAMA, "head_dim": 32}, "float32", "eager", "cpu"),
    ("mixtral", {**MOE, "num_local_experts": 4}, "float32", "eager", "cpu"),
    (
        "qwen2_moe",
        {**MOE, "num_experts": 4, "moe_intermediate_size": 64, "shared_expert_intermediate_size": 128},
        "float32",
        "eager",
        "cpu",
    ),
]
_DTYPE_FLAG = {"float32": "fp32", "bfloat16": "bf16"}


def _model(kind: str, overrides: dict[str, Any], dtype: str, attention: str) -> Any:
    model = tiny_model(kind, **overrides)
    model.config._attn_implementation = attention
    return model.to(getattr(torch, dtype))


def _ours(tmp_path: Path, model: Any, *args: str) -> dict[str, Any]:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(config_dict(model)))
    r = run_cli("memory", "--config", str(cfg), "--json", *args)
    assert r.code == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def measure_case(
    tmp_path: Path, kind: str, overrides: dict[str, Any], dtype: str, attention: str, device: str, b: int, s: int
) -> tuple[int, int, int]:
    """(ours, measured, Korthikanti) activation bytes for one model and shape."""
    model = _model(kind, overrides, dtype, attention)
    torch.manual_seed(1)
    ids = torch.randint(0, overrides["vocab_size"], (b, s))
    measured = measure_saved_bytes(model, ids, fused_dropout=device == "gpu").total
    doc = _ours(
        tmp_path,
        model,
        "--training",
        "--attention",
        attention,
        "--dtype",
        _DTYPE_FLAG[dtype],
        "--device",
        device,
        "--batch",
        str(b),
        "--seq",
        str(s),
    )
    assert doc["activation_kind"] == "saved for backward"
    # The activation terms add up to the total (the arithmetic is shown, not hidden).
    assert sum(t["bytes"] for t in doc["activation_terms"]) == doc["activation_bytes"]
    return doc["activation_bytes"], measured, doc["korthikanti_bytes"]


@pytest.mark.parametrize(("b", "s"), SHAPES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[2]}-{c[3]}-{c[4]}")
def test_activations_within_10_percent(tmp_path: Path, case: tuple[Any, ...], b: int, s: int) -> None:
    ours, measured, kt = measure_case(tmp_path, *case, b, s)
    ratio = ours / measured
    print(f"{case[0]} b={b} s={s}: ours/measured {ratio:.4f}, Korthikanti/measured {kt / measured:.3f}")
    assert abs(ratio - 1) <= TOLERANCE, (ours, measured)


@pytest.mark.slow
@pytest.mark.parametrize("case", EXTRA_CASES, ids=lambda c: f"{c[0]}-{c[2]}-{c[3]}-{c[4]}")
def test_activation_variants_within_10_percent(tmp_path: Path, case: tuple[Any, ...]) -> None:
    b, s = SHAPES[0]
    ours, measured, _ = measure_case(tmp_path, *case, b, s)
    assert abs(ours / measured - 1) <= TOLERANCE, (ours, measured)


def test_dropout_kernel_is_what_differs(tmp_path: Path) -> None:
    """The GPU (fused, 1-byte mask) and CPU (dtype-sized noise) dropout kernels differ by exactly what we model:
    per layer b·a·s²·3 + 2·T·h·3 bytes, plus T·h·3 for the embedding dropout (fp32: 4 − 1 bytes each)."""
    b, s = SHAPES[0]
    cpu = measure_case(tmp_path, "gpt2", GPT2, "float32", "eager", "cpu", b, s)
    gpu = measure_case(tmp_path, "gpt2", GPT2, "float32", "eager", "gpu", b, s)
    h, a, L = GPT2["n_embd"], GPT2["n_head"], GPT2["n_layer"]
    expected = L * (b * a * s * s * 3 + 2 * b * s * h * 3) + b * s * h * 3
    assert cpu[1] - gpu[1] == expected  # measured difference
    assert cpu[0] - gpu[0] == expected  # modelled difference


# ---------------------------------------------------------------------------------------------------------------
# KV cache: equality with a real transformers cache


@pytest.mark.parametrize(
    ("kind", "overrides", "seq"),
    [
        ("llama", LLAMA, 24),  # GQA: 2 KV heads for 4 query heads
        ("gpt2", GPT2, 24),
        ("mistral", {**LLAMA, "sliding_window": 8}, 20),  # forward longer than the window
        ("mistral", {**LLAMA, "sliding_window": 64}, 20),  # shorter than the window
    ],
)
def test_kv_cache_equals_transformers_cache(tmp_path: Path, kind: str, overrides: dict[str, Any], seq: int) -> None:
    model = _model(kind, overrides, "float32", "eager")
    b = 3
    ids = torch.randint(0, overrides["vocab_size"], (b, seq))
    measured, shapes = kv_cache_bytes(model, ids)
    doc = _ours(tmp_path, model, "--dtype", "fp32", "--batch", str(b), "--seq", str(seq))
    assert doc["kv_cache_bytes"] == measured, shapes
    # Per layer, the cached tokens are what the cache tensors hold along the sequence axis.
    assert doc["kv_cache_tokens_per_layer"] == [shape[2] for shape in shapes[::2]]


def test_sliding_window_cache_storage_after_prefill() -> None:
    """Documented caveat: after a prefill longer than the window, transformers keeps the last window−1 tokens as a
    view into the full-length prefill tensor, so the storage behind the cache is still seq tokens long."""
    model = _model("mistral", {**LLAMA, "sliding_window": 8}, "float32", "eager")
    ids = torch.randint(0, 1000, (2, 20))
    model.eval()
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True)
    layer = out.past_key_values.layers[0]
    assert layer.keys.shape[2] == 7
    assert layer.keys.untyped_storage().nbytes() == 2 * 2 * 20 * 32 * 4  # b · kv_heads · seq · head_dim · 4
    with torch.no_grad():
        model(input_ids=ids[:, :1], past_key_values=out.past_key_values, use_cache=True)
    layer = out.past_key_values.layers[0]
    assert layer.keys.shape[2] == 7  # still window−1 tokens after a decode step
    assert layer.keys.untyped_storage().nbytes() == 2 * 2 * 8 * 32 * 4  # now backed by `window` tokens


# ---------------------------------------------------------------------------------------------------------------
# FLOPs: torch's flop counter


@pytest.mark.parametrize(("kind", "overrides"), [("llama", LLAMA), ("gpt2", GPT2)])
def test_flops_against_flop_counter(tmp_path: Path, kind: str, overrides: dict[str, Any]) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    model = _model(kind, overrides, "float32", "eager")
    b, s = 2, 64
    ids = torch.randint(0, overrides["vocab_size"], (b, s))
    with FlopCounterMode(display=False) as fwd:
        out = model(input_ids=ids, labels=ids, use_cache=False)
    with FlopCounterMode(display=False) as bwd:
        out.loss.backward()
    doc = _ours(tmp_path, model, "--dtype", "fp32", "--batch", str(b), "--seq", str(s), "--training")
    measured_fwd = fwd.get_total_flops() / (b * s)
    measured_train = (fwd.get_total_flops() + bwd.get_total_flops()) / (b * s)
    # Ours counts every parameter (biases, norm weights) as a multiply-add; the counter counts matmuls only.
    fwd_ratio = doc["flops_per_token"]["forward"] / measured_fwd
    train_ratio = doc["flops_per_token"]["training"] / measured_train
    print(f"{kind}: FLOPs forward {fwd_ratio:.4f}, training {train_ratio:.4f} (ours/counter)")
    assert fwd_ratio == pytest.approx(1, abs=0.02)
    assert train_ratio == pytest.approx(1, abs=0.02)


def ratio_table() -> str:
    """The ratio table of every activation case (for the closing report)."""
    import tempfile

    rows = ["| model | dtype | attention | device | batch | seq | measured B | ours B | ours/meas | Korthikanti/meas |"]
    rows.append("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        for case in CASES + EXTRA_CASES:
            shapes = SHAPES if case in CASES else SHAPES[:1]
            for b, s in shapes:
                ours, meas, kt = measure_case(Path(d), *case, b, s)
                kind, _, dtype, attn, dev = case
                rows.append(
                    f"| {kind} | {dtype} | {attn} | {dev} | {b} | {s} | {meas:,} | {ours:,} | "
                    f"{ours / meas:.4f} | {kt / meas:.3f} |"
                )
    return "\n".join(rows)


if __name__ == "__main__":
    print(ratio_table())
