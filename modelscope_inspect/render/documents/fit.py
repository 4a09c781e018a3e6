"""`mi fit --json`."""

from __future__ import annotations

from typing import Any

from ...analysis.accelerators import CATALOGUE, Accelerator
from ...analysis.fit import FitReport, NeedReport
from . import envelope


def _acc(a: Accelerator) -> dict[str, Any]:
    return {
        "name": a.name,
        "memory_bytes": a.memory_bytes,
        "usable_fraction": a.usable_fraction,
        "bandwidth_bytes_per_s": a.bandwidth,
        "peak_ops_per_s": {"bf16": a.bf16, "fp16": a.fp16, "fp8": a.fp8, "int8": a.int8},
        "source": a.source,
    }


def fit_document(r: FitReport) -> dict[str, Any]:
    """The `mi fit --json` document for one accelerator and layout."""
    fo, o, d, s = r.options, r.options.opts, r.device, r.speed
    doc: dict[str, Any] = {
        **envelope("fit"),
        "source": r.source,
        "arch": r.arch,
        "params": r.params,
        "accelerator": _acc(r.accelerator),
        "fits": r.fits,
        "devices": fo.devices,
        "tp": fo.tp,
        "pp": fo.pp,
        "ep": fo.ep,
        "options": {
            "batch": o.batch,
            "seq": o.seq,
            "dtype": o.dtype.value,
            "kv_dtype": o.kv.value,
            "utilization": fo.utilization,
            "prefill_chunk": fo.prefill_chunk,
            "training": o.training,
            "zero": fo.zero if o.training else None,
            "dp": fo.dp if o.training else None,
        },
        "per_device": {
            "stage": d.stage,
            "layers": d.layers,
            "weights_bytes": d.weights_bytes,
            "kv_cache_bytes": d.kv_cache_bytes,
            "activation_bytes": d.activation_bytes,
            "reserve_bytes": d.reserve_bytes,
            "training_bytes": d.training_bytes,
            "total_bytes": d.total_bytes,
            "usable_bytes": d.usable_bytes,
            "weights": [{"name": x.name, "bytes": x.bytes, "rule": x.rule} for x in d.shards],
            "training": [{"name": x.name, "bytes": x.bytes, "rule": x.rule} for x in d.training_terms],
        },
        "kv_bytes_per_token_per_device": r.kv_bytes_per_token_per_device,
        "kv_heads_per_device": r.kv_heads_per_device,
        "kv_capacity_tokens": r.kv_capacity_tokens,
        "kv_capacity_blocks": r.kv_capacity_blocks,
        "max_seq": r.max_seq,
        "max_batch": r.max_batch,
        "max_position_embeddings": r.max_positions,
        "weights_as": r.weights_as,
        "decode_tokens_per_s": s.decode_tokens_per_s,
        "decode_aggregate_tokens_per_s": s.decode_aggregate_tokens_per_s,
        "decode_bytes_per_step_per_device": s.bytes_per_step,
        "decode_bandwidth_seconds": s.decode_bandwidth_s,
        "decode_compute_seconds": s.decode_compute_s,
        "prefill_seconds": s.prefill_seconds,
        "prefill_flops": s.prefill_flops,
        "bound": s.bound,
        "offload": None,
        "assumptions": list(r.assumptions),
    }
    if r.offload is not None:
        f = r.offload
        doc["offload"] = {
            "gpu_layers": f.gpu_layers,
            "layers": f.layers,
            "output_on_gpu": f.output_on_gpu,
            "gpu_bytes": f.gpu_bytes,
            "host_bytes": f.host_bytes,
            "ram_bytes": f.ram_bytes,
            "host_fits": f.host_fits,
        }
    return doc


def need_document(r: NeedReport) -> dict[str, Any]:
    """The `mi fit --json` document without --gpu: the smallest layout per accelerator."""
    o = r.options.opts
    return {
        **envelope("fit"),
        "source": r.source,
        "arch": r.arch,
        "params": r.params,
        "options": {
            "batch": o.batch,
            "seq": o.seq,
            "dtype": o.dtype.value,
            "kv_dtype": o.kv.value,
            "utilization": r.options.utilization,
        },
        "needs": [
            {
                "accelerator": x.accelerator.name,
                "devices": x.devices,
                "tp": x.tp,
                "pp": x.pp,
                "total_memory_bytes": x.total_memory_bytes,
                "kv_capacity_tokens": x.kv_capacity_tokens,
                "decode_tokens_per_s": x.decode_tokens_per_s,
            }
            for x in r.rows
        ],
        "assumptions": list(r.assumptions),
    }


def catalogue_document() -> dict[str, Any]:
    """`mi fit --list-gpus --json`."""
    return {**envelope("fit"), "accelerators": [_acc(a) for a in CATALOGUE]}
