"""`mi params --json`, and the `cross_check` block of `mi inspect --json`."""

from __future__ import annotations

from typing import Any

from ...analysis.adapter import AdapterReport
from ...analysis.hparams import HParams
from ...analysis.params import CrossCheck, ParamReport
from . import envelope


def _hparams_dict(hp: HParams) -> dict[str, Any]:
    keys = (
        "vocab",
        "d_model",
        "layers",
        "heads",
        "kv_heads",
        "head_dim",
        "d_ff",
        "max_positions",
        "tied",
        "encoder_layers",
        "decoder_layers",
        "num_experts",
        "experts_per_token",
    )
    out = {k: getattr(hp, k) for k in keys if getattr(hp, k) is not None}
    out.update({k: list(v) if isinstance(v, tuple) else v for k, v in hp.extras})
    return out


def params_body(report: ParamReport) -> dict[str, Any]:
    """The body of `mi params --json` (`params_document` adds the envelope)."""
    hp = report.hparams
    total = report.total_params or 1
    doc: dict[str, Any] = {
        "method": report.method,
        "arch": report.arch,
        "model_type": hp.model_type,
        "total_params": report.total_params,
        "dtype": report.dtype,
        "total_bytes": report.nbytes,
        "terms": [
            {
                "name": t.name,
                "each": t.each,
                "count": t.count,
                "params": t.params,
                "share": t.params / total,
                "formula": t.formula,
                **({"active": t.active} if t.active_each is not None else {}),
            }
            for t in report.terms
        ],
        "hparams": _hparams_dict(hp),
        "assumptions": list(report.assumptions),
    }
    if report.is_moe:
        doc["active_params"] = report.active_params
    if report.left_out:
        doc["left_out"] = [{"what": w, "params": p} for w, p in report.left_out]
        doc["left_out_total"] = sum(p for _, p in report.left_out)
    if report.lora is not None:
        lo = report.lora
        doc["lora_params"] = lo.params
        doc["lora"] = {"r": lo.r, "targets": list(lo.targets), "matrices": lo.matrices, "share": lo.share}
    return doc


def params_document(report: ParamReport) -> dict[str, Any]:
    """The `mi params --json` document."""
    return envelope("params", **params_body(report))


def cross_check_document(cc: CrossCheck) -> dict[str, Any]:
    """JSON for `mi inspect --json` key `cross_check`."""
    return {
        "arch": cc.arch,
        "analytic_params": cc.analytic,
        "file_params": cc.file,
        "difference": cc.difference,
        "matches": cc.matches,
        "terms": [{"name": n, "analytic": a, "file": f, "difference": f - a} for n, a, f in cc.terms],
        "unmatched": [{"name": n, "params": p} for n, p in cc.unmatched],
        "notes": list(cc.notes),
    }


def adapter_document(rep: AdapterReport) -> dict[str, Any]:
    """The `adapter` block of `mi inspect --json` for a PEFT adapter."""
    return {
        "method": rep.method,
        "r": rep.r,
        "alpha": rep.alpha,
        "targets": list(rep.targets) if isinstance(rep.targets, tuple) else rep.targets,
        "base_model": rep.base,
        "params": rep.params,
        "base_params": rep.base_params,
        "base_config": rep.base_source,
        "share": rep.share,
        "terms": [
            {"target": t.target, "modules": t.modules, "params": t.params, "formula": t.formula, "agrees": t.agrees}
            for t in rep.terms
        ],
    }
