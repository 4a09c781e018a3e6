"""Measured memory oracles for `mi memory` (tests only: these import torch and transformers).

`measure_saved_bytes` runs one training forward (model.train(), loss included) under
`torch.autograd.graph.saved_tensors_hooks` and adds up the bytes of every tensor autograd keeps for backward,
deduplicated by storage (`untyped_storage().data_ptr()`, counted at the storage's `nbytes()`), parameters
excluded. That is the activation memory a training step holds at the end of the forward.

`kv_cache_bytes` runs a forward with `use_cache=True` and adds up the bytes of the key/value tensors the
returned cache really holds.

The models are tiny random HF models built from a config (no download), `attn_implementation="eager"`.
"""

from __future__ import annotations

import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class SavedBytes:
    """What autograd saved during one forward: total unique-storage bytes and where they came from."""

    total: int
    n_storages: int
    by_site: Counter[str] = field(default_factory=Counter)


def _site() -> str:
    """The innermost transformers (or torch.nn.functional) source line that caused a save: for diagnostics."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        if "transformers" in frame.filename or "torch/nn/functional" in frame.filename:
            return f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} {(frame.line or '').strip()[:60]}"
    return "?"


def measure_saved_bytes(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    *,
    fused_dropout: bool = False,
    attribute: bool = False,
) -> SavedBytes:
    """Bytes autograd saves for backward during `model(input_ids, labels=input_ids)` in training mode.

    `fused_dropout=True` routes `F.dropout` through `torch.native_dropout`, the kernel CUDA uses (it saves a
    one-byte bool mask); on CPU `F.dropout` multiplies by a dtype-sized noise tensor and saves that instead.
    """
    param_ptrs = {p.untyped_storage().data_ptr() for p in model.parameters()}
    param_ptrs |= {b.untyped_storage().data_ptr() for b in model.buffers()}
    seen: dict[int, int] = {}
    keep: list[torch.Tensor] = []  # hold every saved tensor so no storage address is reused during the forward
    by_site: Counter[str] = Counter()

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        keep.append(t)
        if ptr in param_ptrs or ptr == 0:
            return t
        if ptr not in seen:
            seen[ptr] = storage.nbytes()
            if attribute:
                by_site[f"{_site()} {tuple(t.shape)} {t.dtype}"] += storage.nbytes()
        return t

    real_dropout = torch.nn.functional.dropout

    def native(x: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> torch.Tensor:
        if not training or p == 0.0:
            return x
        return torch.native_dropout(x, p, True)[0]

    model.train()
    if fused_dropout:
        torch.nn.functional.dropout = native  # type: ignore[assignment]
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(input_ids=input_ids, labels=input_ids, use_cache=False)
    finally:
        torch.nn.functional.dropout = real_dropout
    assert out.loss is not None and out.loss.requires_grad
    keep.clear()
    return SavedBytes(total=sum(seen.values()), n_storages=len(seen), by_site=by_site)


def kv_cache_bytes(model: torch.nn.Module, input_ids: torch.Tensor) -> tuple[int, list[tuple[int, ...]]]:
    """Bytes of the key/value tensors a real transformers cache holds after one forward with use_cache=True."""
    model.eval()
    with torch.no_grad():
        out = model(input_ids=input_ids, use_cache=True)
    cache = out.past_key_values
    total = 0
    shapes: list[tuple[int, ...]] = []
    for layer in cache.layers:
        for t in (layer.keys, layer.values):
            total += t.numel() * t.element_size()
            shapes.append(tuple(t.shape))
    return total, shapes


def tiny_model(kind: str, **overrides: Any) -> Any:
    """A small random HF causal LM (`gpt2`, `llama`, `mistral`, `qwen2`, `opt`, `phi`, `falcon`, `gemma`,
    `mixtral`, `qwen2_moe`) in fp32 with eager attention."""
    import transformers

    torch.manual_seed(0)
    config_cls = {
        "gpt2": transformers.GPT2Config,
        "llama": transformers.LlamaConfig,
        "mistral": transformers.MistralConfig,
        "qwen2": transformers.Qwen2Config,
        "opt": transformers.OPTConfig,
        "phi": transformers.PhiConfig,
        "falcon": transformers.FalconConfig,
        "gemma": transformers.GemmaConfig,
        "mixtral": transformers.MixtralConfig,
        "qwen2_moe": transformers.Qwen2MoeConfig,
    }[kind]
    config = config_cls(**overrides)
    config._attn_implementation = "eager"
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32)
    return model


def config_dict(model: Any) -> dict[str, Any]:
    """The config.json a `save_pretrained` of this model would write."""
    import json

    return json.loads(model.config.to_json_string(use_diff=False))  # type: ignore[no-any-return]


def inference_peak_bytes(model: Any, input_ids: torch.Tensor) -> tuple[int, int]:
    """(peak, end) bytes the CPU allocator hands out during one no-grad forward with use_cache=True, counted
    from the start of the forward (weights excluded), from the profiler's allocation events. `end` is what the
    outputs (KV cache, logits) still hold afterwards."""
    import json
    import os
    import tempfile

    from torch.profiler import ProfilerActivity, profile

    model.eval()
    with torch.no_grad():
        model(input_ids=input_ids, use_cache=True)  # warm-up: lazy buffers (rotary tables) are not the forward's
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            out = model(input_ids=input_ids, use_cache=True)
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path, encoding="utf-8") as fh:
            events = json.load(fh)["traceEvents"]
    finally:
        os.unlink(path)
    live = peak = 0
    for ev in sorted((e for e in events if e.get("name") == "[memory]"), key=lambda e: e["ts"]):
        live += int(ev["args"]["Bytes"])
        peak = max(peak, live)
    del out
    return peak, live
