"""`mi memory --json`."""

from __future__ import annotations

from typing import Any

from ...analysis.memory import MemoryReport, MemoryTerm
from . import envelope


def _term(t: MemoryTerm) -> dict[str, Any]:
    d: dict[str, Any] = {"name": t.name, "bytes": t.bytes, "formula": t.formula}
    if t.per_param is not None:
        d["bytes_per_param"] = t.per_param
    return d


def memory_document(r: MemoryReport) -> dict[str, Any]:
    """The `mi memory --json` document."""
    o = r.options
    doc: dict[str, Any] = {
        **envelope("memory"),
        "source": r.source,
        "arch": r.arch,
        "hparams": r.hparams,
        "options": {
            "batch": o.batch,
            "seq": o.seq,
            "dtype": o.dtype.value,
            "kv_dtype": o.kv.value,
            "activation_dtype": o.act_dtype.value,
            "training": o.training,
            "optimizer": o.optimizer.value if o.training else None,
            "mixed_precision": o.mixed_precision,
            "recompute": o.recompute.value,
            "attention": o.attention.value,
            "device": o.device.value,
            "group_size": o.group_size,
        },
        "params": r.params,
        "weights_bytes": r.weights_bytes,
        "weights_by_precision": dict(r.weights_by_precision),
        "stored": r.stored,
        "kv_cache_bytes": r.kv.bytes,
        "kv_cache_bytes_per_token": r.kv.per_token,
        "kv_cache_tokens_per_layer": list(r.kv.tokens_per_layer),
        "kv_cache_formula": r.kv.per_token_formula,
        # Latent attention (MLA): what the per-head keys and values rebuilt from the cached latent would take.
        "kv_cache_expanded_bytes_per_token": r.kv.expanded_per_token,
        # State-space (Mamba) layers: bytes kept per batch whatever the sequence length; null without such layers.
        "state_bytes": r.state.bytes if r.state else None,
        "state": None
        if r.state is None
        else {
            "layers": r.state.layers,
            "bytes_per_layer": r.state.per_layer,
            "conv_bytes_per_layer": r.state.conv_bytes,
            "ssm_bytes_per_layer": r.state.ssm_bytes,
            "formula": r.state.formula,
        },
        "activation_bytes": r.activation_bytes,
        "activation_kind": r.activation_kind,
        "activation_terms": [_term(t) for t in r.activation_terms],
        "korthikanti_bytes": r.korthikanti_bytes,
        "korthikanti_formula": r.korthikanti_formula,
        "inference_bytes": r.inference_bytes,
        "flops_per_token": {"forward": r.flops_forward, "training": r.flops_training},
        "flops_terms": [_term(t) for t in r.flops_terms],
        "assumptions": list(r.assumptions),
    }
    if o.training:
        doc["training_bytes"] = r.training_bytes
        doc["training_terms"] = [_term(t) for t in r.training_terms]
    return doc
