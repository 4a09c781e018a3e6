"""`mi fit`: placement across devices, the answers, exit codes. Every expected number is derived by hand in
the comment beside it from the model's published sizes, never from a second copy of analysis/fit.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelscope_inspect.analysis.accelerators import CATALOGUE, find_accelerator
from modelscope_inspect.analysis.fit import FitOptions, fit, stage_layers, what_do_i_need
from modelscope_inspect.analysis.hparams import HParams
from modelscope_inspect.analysis.memory import GIB, MemoryOptions, Precision, spec_from_hparams
from modelscope_inspect.api.memory import memory_spec
from modelscope_inspect.cli import app
from modelscope_inspect.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "examples" / "configs"
L70 = str(CONFIGS / "llama-3-70b.json")
L8 = str(CONFIGS / "llama-3-8b.json")
BF16 = MemoryOptions(dtype=Precision.bf16, seq=8192)
H100 = find_accelerator("H100")


def _fo(**kw: object) -> FitOptions:
    return FitOptions(opts=kw.pop("opts", BF16), **kw)  # type: ignore[arg-type]


def test_llama3_70b_needs_two_80gb_gpus() -> None:
    spec = memory_spec(config=L70)
    one = fit(spec, H100, _fo())
    # 70,553,706,496 parameters × 2 bytes = 141,107,412,992 bytes = 131.42 GiB: more than 80 GB on its own.
    assert one.device.weights_bytes == 141_107_412_992
    assert round(one.device.weights_bytes / GIB, 1) == 131.4
    assert not one.fits
    two = fit(spec, H100, _fo(tp=2))
    assert two.fits
    # KV per token: 2 (K, V) × 80 layers × 8 heads × 128 head_dim × 2 bytes = 327,680 on one device;
    # TP=2 gives each rank 4 of the 8 KV heads: 163,840.
    assert one.kv_bytes_per_token_per_device == 327_680
    assert two.kv_bytes_per_token_per_device == 163_840
    assert two.kv_heads_per_device == 4


def test_llama3_8b_tp16_replicates_kv_heads() -> None:
    r = fit(memory_spec(config=L8), H100, _fo(tp=16))
    # 8 KV heads over 16 ranks: each rank keeps one head (vLLM replicates): 2 × 32 layers × 1 × 128 × 2 B.
    assert r.kv_heads_per_device == 1
    assert r.kv_bytes_per_token_per_device == 2 * 32 * 1 * 128 * 2 == 16_384


def test_mla_latent_same_on_every_tp_rank() -> None:
    # DeepSeek-V3's published config: 61 layers, kv_lora_rank 512, qk_rope_head_dim 64. Its cache holds the
    # latent: 61 × (512 + 64) × 2 B = 70,272 per token, the same at TP 1 and TP 8 (the latent has no heads to split).
    spec = memory_spec(config=str(CONFIGS / "deepseek-v3.json"))
    a = fit(spec, find_accelerator("H200"), _fo(tp=1))
    b = fit(spec, find_accelerator("H200"), _fo(tp=8))
    assert a.kv_bytes_per_token_per_device == b.kv_bytes_per_token_per_device == 61 * (512 + 64) * 2 == 70_272
    assert b.kv_heads_per_device is None
    # The 671,026,404,352 parameters in bf16 are 1,342 GB: over 8 × H200 (8 × 141 GiB × 0.9 usable) even split 8 ways.
    assert not b.fits
    assert b.device.weights_bytes * 8 >= 671_026_404_352 * 2


def test_mixtral_ep8_one_expert_per_device() -> None:
    hp = HParams.from_options(
        arch="mixtral",
        vocab=32000,
        d_model=4096,
        layers=32,
        heads=32,
        kv_heads=8,
        d_ff=14336,
        num_experts=8,
        experts_per_token=2,
    )
    r = fit(spec_from_hparams(hp), H100, _fo(tp=8, ep=8))
    shards = {s.name: s.bytes for s in r.device.shards}
    # One expert (gate, up, down: 3 × 4096 × 14336 = 176,160,768 params) per layer per device, 32 layers, bf16.
    assert shards["experts"] == 32 * 176_160_768 * 2
    # Shared parts: attention 4096 × (2·32 + 2·8) × 128 = 41,943,040 per layer split by TP 8; the router
    # (4096 × 8) and the two RMSNorms (2 × 4096) replicated.
    assert shards["attention"] == 32 * 41_943_040 // 8 * 2
    assert shards["router"] == 32 * 4096 * 8 * 2
    assert shards["norms"] == 32 * 2 * 4096 * 2


def test_max_context_is_the_largest_that_fits() -> None:
    spec = memory_spec(config=L70)
    r = fit(spec, H100, _fo(tp=2))
    assert r.max_seq is not None and r.max_seq > 0
    at = fit(spec, H100, _fo(tp=2, opts=MemoryOptions(dtype=Precision.bf16, seq=r.max_seq)))
    past = fit(spec, H100, _fo(tp=2, opts=MemoryOptions(dtype=Precision.bf16, seq=r.max_seq + 1)))
    assert at.fits and not past.fits
    b = fit(spec, H100, _fo(tp=4, opts=MemoryOptions(dtype=Precision.bf16, seq=8192, batch=1)))
    assert b.max_batch is not None
    at_b = fit(spec, H100, _fo(tp=4, opts=MemoryOptions(dtype=Precision.bf16, seq=8192, batch=b.max_batch)))
    past_b = fit(spec, H100, _fo(tp=4, opts=MemoryOptions(dtype=Precision.bf16, seq=8192, batch=b.max_batch + 1)))
    assert at_b.fits and not past_b.fits
    assert r.kv_capacity_blocks == r.kv_capacity_tokens // 16  # type: ignore[operator]


def test_zero3_over_8_divides_state_by_8() -> None:
    spec = memory_spec(config=L8)
    opts = MemoryOptions(dtype=Precision.bf16, seq=2048, training=True)
    r = fit(spec, H100, _fo(opts=opts, zero=3, dp=8))
    # Pure bf16 AdamW: weights 2 B + gradients 2 B + two states 2 × 2 B = 8 B per parameter; ZeRO 3 over 8
    # ranks leaves 1 B per parameter on each: 8,030,261,248 bytes.
    assert r.device.training_bytes == 8_030_261_248
    z0 = fit(spec, H100, _fo(opts=opts, zero=0, dp=8))
    assert z0.device.training_bytes == 8 * 8_030_261_248


def test_pp_stages_follow_vllm() -> None:
    # vLLM's get_pp_indices: 80 layers over 3 stages → 26 each, the remainder 2 to the stages before the last.
    assert stage_layers(80, 3) == (27, 27, 26)
    assert stage_layers(32, 4) == (8, 8, 8, 8)


def test_vllm_kv_cache_cross_check() -> None:
    # vLLM issue #21348 (https://github.com/vllm-project/vllm/issues/21348): Qwen3-235B-A22B-FP8 on 4×H100, TP 4,
    # logs "Available KV cache memory: 8.11 GiB" and "GPU KV cache size: 178,880 tokens": 48,682 bytes a token
    # per device. By hand: 94 layers × 2 × max(1, 4 KV heads / 4) × 128 × 2 B (bf16 cache) = 48,128.
    r = fit(
        memory_spec(config=str(CONFIGS / "qwen3-235b-a22b.json")),
        H100,
        _fo(tp=4, opts=MemoryOptions(dtype=Precision.fp8, seq=8192)),
    )
    assert r.kv_bytes_per_token_per_device == 94 * 2 * 1 * 128 * 2 == 48_128
    logged = 8.11 * GIB / 178_880
    assert abs(r.kv_bytes_per_token_per_device - logged) / logged < 0.02


def test_what_do_i_need_sorted_by_memory() -> None:
    rep = what_do_i_need(memory_spec(config=L70), _fo())
    mems = [r.total_memory_bytes for r in rep.rows if r.total_memory_bytes is not None]
    assert mems == sorted(mems)
    h100 = next(r for r in rep.rows if r.accelerator.name == "H100-SXM")
    assert (h100.devices, h100.tp, h100.pp) == (2, 2, 1)  # as above: one does not fit, two do
    assert len(rep.rows) == len(CATALOGUE)


def test_unknown_gpu_lists_catalogue() -> None:
    with pytest.raises(UsageError) as e:
        find_accelerator("Z9000")
    assert "H100-SXM" in str(e.value) and "MI300X" in str(e.value)


def test_cli_exit_codes() -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["fit", "--config", L70, "--gpu", "H100x2", "--json"])
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.output)
    for key in (
        "fits",
        "devices",
        "tp",
        "pp",
        "ep",
        "kv_bytes_per_token_per_device",
        "kv_capacity_tokens",
        "max_seq",
        "max_batch",
        "decode_tokens_per_s",
        "prefill_seconds",
        "bound",
        "assumptions",
    ):
        assert key in doc
    assert set(doc["per_device"]) >= {
        "weights_bytes",
        "kv_cache_bytes",
        "activation_bytes",
        "reserve_bytes",
        "total_bytes",
        "usable_bytes",
    }
    assert doc["devices"] == 2 and doc["tp"] == 2
    no = runner.invoke(app, ["fit", "--config", L70, "--gpu", "H100"])
    assert no.exit_code == 1
    bad = runner.invoke(app, ["fit", "--config", L70, "--gpu", "Z9000"])
    assert bad.exit_code == 2 and "H100-SXM" in bad.output
    bad2 = runner.invoke(app, ["fit", "--config", L70, "--gpu", "H100", "--utilization", "1.5"])
    assert bad2.exit_code == 2
    assert runner.invoke(app, ["fit", "--list-gpus"]).exit_code == 0


def test_fit_imports_no_torch_and_is_fast() -> None:
    code = (
        "import sys, time; from modelscope_inspect.cli import main; sys.argv = ['mi', 'fit', '--config', "
        f"{L70!r}, '--json']\n"
        "t = time.perf_counter()\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write(f'SECONDS {time.perf_counter() - t:.3f}\\n')\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'\n"
    )
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    wall = time.perf_counter() - t
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["needs"]
    assert wall < 10  # generous: timings are reported, not asserted tightly


def test_kv_per_token_matches_hf_blog_table() -> None:
    # Hugging Face's Llama 3.1 post (https://huggingface.co/blog/llama31#inference-memory-requirements) lists the
    # fp16 KV cache of 1k tokens: 8B 0.125 GB, 70B 0.313 GB (binary GB). By hand: 131,072 × 1024 B = 0.125 GiB and
    # 327,680 × 1024 B = 0.3125 GiB.
    r8 = fit(memory_spec(config=L8), H100, _fo())
    r70 = fit(memory_spec(config=L70), H100, _fo())
    assert round(r8.kv_bytes_per_token_per_device * 1024 / GIB, 3) == 0.125
    assert abs(r70.kv_bytes_per_token_per_device * 1024 / GIB - 0.313) < 0.0006  # 0.3125 shown as 0.313


def test_gguf_weights_are_the_files_tensor_bytes() -> None:
    from modelscope_inspect.api.fit import fit_report

    gguf = str(ROOT / "fixtures" / "tiny_llama.gguf")
    opts = MemoryOptions(seq=16)
    r = fit_report(gguf, accelerator=find_accelerator("L4"), options=_fo(opts=opts, prefill_chunk=16))
    assert not isinstance(r, type(None)) and hasattr(r, "device")
    # fixtures/tiny_llama.gguf holds 51,072 bytes of tensors (mi inspect: "tensor bytes 51,072"), mixed quants.
    assert r.device.weights_bytes == 51_072  # type: ignore[union-attr]
    assert r.weights_as == "as stored"  # type: ignore[union-attr]


def test_offload_keeps_the_most_layers_that_fit() -> None:
    spec = memory_spec(config=L70)
    acc = find_accelerator("RTX-4090")
    opts = MemoryOptions(dtype=Precision.int4, seq=4096)
    r = fit(spec, acc, _fo(opts=opts, ram_bytes=64 * GIB))
    off = r.offload
    assert off is not None and 0 < off.gpu_layers < off.layers
    # The GPU side with n layers fits the usable memory, with n + 1 it would not: one layer is
    # (its weights + its KV) = (gpu_bytes − activations − reserve) / n.
    per_layer = (off.gpu_bytes - r.device.activation_bytes - r.device.reserve_bytes) // off.gpu_layers
    assert off.gpu_bytes <= r.device.usable_bytes < off.gpu_bytes + per_layer
    assert off.host_fits is True


def test_apple_unified_memory_share_and_gpu_memory() -> None:
    m2 = find_accelerator("M2-Ultra-192GB")
    assert m2.usable_bytes == 192 * GIB * 3 // 4  # Metal's recommended working set: 75% of unified memory
    runner = CliRunner()
    res = runner.invoke(app, ["fit", "--config", L8, "--gpu-memory", "24GiB", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["per_device"]["usable_bytes"] == int(24 * GIB * 0.9)


def test_fsdp_cli() -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["fit", "--config", L8, "--gpu", "H100x8", "--training", "--fsdp", "--seq", "2048",
                              "--json"])  # fmt: skip
    doc = json.loads(res.output)
    assert doc["options"]["zero"] == 3 and doc["options"]["dp"] == 8
    assert doc["per_device"]["training_bytes"] == 8_030_261_248  # 8 B/param ÷ 8 ranks, as above
    bad = runner.invoke(app, ["fit", "--config", L8, "--zero", "2"])
    assert bad.exit_code == 2


def test_placement_conserves_the_weights() -> None:
    # On one device every term lands whole: the shards add up to parameters × 2 bytes (bf16), here Qwen3-235B-A22B's
    # 235,093,634,560 parameters (counted by the qwen3_moe preset, checked against transformers elsewhere).
    spec = memory_spec(config=str(CONFIGS / "qwen3-235b-a22b.json"))
    assert spec.params == 235_093_634_560
    r = fit(spec, find_accelerator("MI325X"), _fo())
    assert r.device.weights_bytes == 2 * 235_093_634_560
    # TP 8 × EP 8: 16 of 128 experts per layer per device; the replicated norms and routers make the sum over the
    # 8 devices a little more than the whole.
    r8 = fit(spec, find_accelerator("H200"), _fo(tp=8, ep=8))
    assert 2 * spec.params <= 8 * r8.device.weights_bytes < 2 * spec.params * 1.01
    assert "16 of 128 experts" in next(s.rule for s in r8.device.shards if s.name == "experts")
