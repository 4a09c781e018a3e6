"""Packed low-bit weights: logical parameter counts for weights stored several to an integer.

Quantized checkpoints store 4-bit (or 2/3/8-bit) weights packed into wider integers, so counting stored
elements undercounts the model 8× (int32) or 2× (uint8). This pass rewrites `numel` of each packed weight to
its logical element count, keeps `nbytes` (the stored bytes), records the rule applied in
`TensorRecord.packing`, and marks the quantization side tensors (scales, zero points, group indices) with
kind "quant_aux". Rules, by the tensor names their writers use:

- GPTQ (AutoGPTQ / GPTQModel / optimum): `X.qweight` int32 `[in·bits/32, out]`, `X.qzeros` int32
  `[groups, out·bits/32]`, `X.scales` `[groups, out]`, optional `X.g_idx` `[in]` → `in × out`.
- AWQ (AutoAWQ, GEMM layout): `X.qweight` int32 `[in, out·bits/32]`, `X.qzeros`, `X.scales` `[groups, out]`.
  Both: bits from `quantization_config.bits` (or `w_bit`) in config.json when present, otherwise from the
  shapes (g_idx length or qzeros/scales widths); the rule says which.
- compressed-tensors "pack-quantized": `X.weight_packed` int32 `[out, in·bits/32]` with `X.weight_scale`;
  bits from `config_groups.*.weights.num_bits`, else 4 (the format's common case, said so in the rule).
- bitsandbytes 4-bit: `X.weight` uint8 with `X.weight.quant_state.bitsandbytes__nf4|fp4` → 2 per byte.
- NVIDIA ModelOpt NVFP4: `X.weight` uint8 `[out, in/2]` with an fp8 `X.weight_scale` `[out, in/16]` → 2 per byte.
- Native sub-byte dtypes (safetensors F4/I4/U4, ONNX INT4/UINT4/FLOAT4E2M1/INT2 …) already count logical
  elements; they are only labelled. GGUF block types (Q4_K …) are sized by their block tables in the loader.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..dtypes import lookup
from ..errors import MalformedFileError
from ..inventory import TensorRecord

AUX_KIND = "quant_aux"
_INT_PACKED = ("i32", "u32")
_SUB_BYTE = {"f4", "i4", "u4", "i2", "u2", "f6_e2m3", "f6_e3m2"}


def _quant_config(config: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not isinstance(config, Mapping):
        return {}
    for key in ("quantization_config", "quantization"):
        q = config.get(key)
        if isinstance(q, Mapping):
            return q
    return {}


def _config_bits(q: Mapping[str, Any]) -> int | None:
    for key in ("bits", "w_bit", "num_bits"):
        v = q.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 16:
            return v
    groups = q.get("config_groups")
    if isinstance(groups, Mapping):
        for g in groups.values():
            w = g.get("weights") if isinstance(g, Mapping) else None
            v = w.get("num_bits") if isinstance(w, Mapping) else None
            if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 16:
                return v
    return None


def _logical(rec: TensorRecord, bits: int) -> int | None:
    """Elements held by a packed integer tensor of `bits`-bit values, when that is a whole number."""
    width = lookup(rec.dtype).bits
    total = rec.numel * width
    return total // bits if total % bits == 0 else None


def _gptq_awq_bits(
    qweight: TensorRecord, scales: TensorRecord | None, qzeros: TensorRecord | None, g_idx: TensorRecord | None
) -> tuple[str, int | None, str]:
    """(layout, bits inferred from the shapes, how) for a qweight and its siblings."""
    if len(qweight.shape) != 2:
        return "?", None, ""
    rows, cols = qweight.shape
    out = scales.shape[-1] if scales is not None and scales.shape else None
    if out is not None and cols == out:
        layout = "gptq"
        if g_idx is not None and g_idx.numel and (32 * rows) % g_idx.numel == 0:
            return layout, 32 * rows // g_idx.numel, "from g_idx length"
    elif out is not None and cols and out % cols == 0:
        layout = "awq"
        return layout, 32 * cols // out, "from qweight/scales widths"
    else:
        return "?", None, ""
    if qzeros is not None and len(qzeros.shape) == 2 and out and (32 * qzeros.shape[1]) % out == 0:
        return layout, 32 * qzeros.shape[1] // out, "from qzeros/scales widths"
    return layout, None, ""


def apply_packing(
    records: list[TensorRecord], config: Mapping[str, Any] | None, details: dict[str, Any] | None = None
) -> list[TensorRecord]:
    """Rewrite packed weights to logical `numel`, mark quantization side tensors; add a summary to `details`.

    `details["packed weights"]` names each rule applied and how many tensors it covered.

    Example:
        >>> recs = apply_packing(scan.records, {"quantization_config": {"bits": 4}}, details)  # doctest: +SKIP
    """
    by_name = {r.name: i for i, r in enumerate(records)}
    out = list(records)
    rules: Counter[str] = Counter()
    aux: set[int] = set()
    q = _quant_config(config)
    method = str(q.get("quant_method", "")).lower()
    cfg_bits = _config_bits(q)

    def sibling(prefix: str, suffix: str) -> TensorRecord | None:
        i = by_name.get(prefix + suffix)
        return out[i] if i is not None else None

    def mark_aux(prefix: str, suffixes: tuple[str, ...]) -> None:
        for s in suffixes:
            i = by_name.get(prefix + s)
            if i is not None:
                aux.add(i)

    def set_logical(i: int, numel: int, rule: str) -> None:
        rec = out[i]
        out[i] = replace(rec, numel=numel, counted_numel=0, packing=rule)
        rules[rule.split(":")[0]] += 1

    for i, rec in enumerate(records):
        name = rec.name
        if name.endswith(".qweight") and rec.dtype in _INT_PACKED:
            prefix = name[: -len("qweight")]
            scales, qzeros, g_idx = (sibling(prefix, s) for s in ("scales", "qzeros", "g_idx"))
            layout, shape_bits, how = _gptq_awq_bits(rec, scales, qzeros, g_idx)
            if layout == "?":
                continue
            if method in ("gptq", "awq") and method != layout:
                how += f"; layout is {layout} though config says {method}"
            bits, source = (cfg_bits, "bits from config.json") if cfg_bits else (shape_bits, f"bits {how}")
            if bits is None:
                continue
            if cfg_bits and shape_bits and cfg_bits != shape_bits:
                raise MalformedFileError(
                    f"{name}: config.json says {cfg_bits}-bit but the tensor shapes imply {shape_bits}-bit",
                    path=rec.file,
                    rule="packing",
                )
            logical = _logical(rec, bits)
            if logical is None:
                continue
            per = lookup(rec.dtype).bits / bits
            set_logical(i, logical, f"{layout} {bits}-bit: {per:g} per {rec.dtype} ({source})")
            mark_aux(prefix, ("scales", "qzeros", "g_idx", "bias_scales"))
        elif name.endswith(".weight_packed") and rec.dtype in _INT_PACKED:
            prefix = name[: -len("weight_packed")]
            if sibling(prefix, "weight_scale") is None:
                continue
            bits = cfg_bits or 4
            source = "bits from config.json" if cfg_bits else "4-bit assumed: no config.json num_bits"
            logical = _logical(rec, bits)
            if logical is None:
                continue
            set_logical(i, logical, f"compressed-tensors {bits}-bit: {32 // bits} per {rec.dtype} ({source})")
            mark_aux(
                prefix, ("weight_scale", "weight_zero_point", "weight_global_scale", "weight_g_idx", "weight_shape")
            )
        elif name.endswith(".weight") and rec.dtype == "u8":
            qs = [s for s in ("nf4", "fp4") if name + f".quant_state.bitsandbytes__{s}" in by_name]
            scale = sibling(name[: -len("weight")], "weight_scale")
            if qs:
                set_logical(i, rec.numel * 2, f"bitsandbytes {qs[0]}: 2 per u8")
                mark_aux(
                    name,
                    (
                        f".quant_state.bitsandbytes__{qs[0]}",
                        ".absmax",
                        ".quant_map",
                        ".nested_absmax",
                        ".nested_quant_map",
                    ),
                )
            elif (
                scale is not None
                and scale.dtype.startswith("f8")
                and rec.shape
                and scale.shape
                and len(rec.shape) == len(scale.shape)
                and rec.shape[-1] * 2 == scale.shape[-1] * 16
            ):
                set_logical(i, rec.numel * 2, "nvfp4 (ModelOpt): 2 fp4 per u8, fp8 scale per 16")
                mark_aux(name[: -len("weight")], ("weight_scale", "weight_scale_2", "input_scale"))
        elif rec.dtype in _SUB_BYTE and rec.packing is None:
            per = 8 / lookup(rec.dtype).bits
            out[i] = replace(rec, packing=f"native {rec.dtype}: {per:g} per byte")
            rules[f"native {rec.dtype}"] += 1

    packed = {j for j, r in enumerate(out) if r.packing and not r.packing.startswith("native")}
    for i in aux - packed:
        out[i] = replace(out[i], kind=AUX_KIND)
    if rules and details is not None:
        found = ", ".join(f"{k} ×{v}" for k, v in rules.most_common())
        earlier = details.get("packed weights")  # a loader's own rule (ONNX MatMulNBits) comes first
        details["packed weights"] = f"{earlier}, {found}" if earlier else found
        if aux:
            n = sum(out[i].numel for i in aux if out[i].kind == AUX_KIND)
            details["quantization metadata"] = f"{len(aux)} tensors, {n:,} elements (scales, zero points, indices)"
    return out
