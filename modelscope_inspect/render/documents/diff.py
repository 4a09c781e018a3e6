"""`mi diff --json`."""

from __future__ import annotations

from typing import Any

from ...analysis.diff import DiffReport, TensorSide
from . import envelope


def _side_doc(s: TensorSide) -> dict[str, Any]:
    return {
        "name": s.name,
        "shape": list(s.shape),
        "dtype": s.dtype,
        "params": s.params,
        "bytes": s.nbytes,
        "shared_with": s.shared_with,
    }


def diff_document(r: DiffReport) -> dict[str, Any]:
    """The `--json` document (schema_version 1)."""
    return {
        **envelope("diff"),
        "a": {"path": r.path_a, "format": r.format_a, "params": r.params_a, "bytes": r.bytes_a,
              "file_bytes": r.file_bytes_a,
              **({"bytes_read": r.bytes_read_a} if r.bytes_read_a is not None else {})},
        "b": {"path": r.path_b, "format": r.format_b, "params": r.params_b, "bytes": r.bytes_b,
              "file_bytes": r.file_bytes_b,
              **({"bytes_read": r.bytes_read_b} if r.bytes_read_b is not None else {})},
        "identical": r.identical,
        "structurally_identical": r.structurally_identical,
        "rename": None if r.rename is None else {"a_prefix": r.rename[0], "b_prefix": r.rename[1],
                                                  "tensors": r.renamed},
        "added": [_side_doc(s) for s in r.added],
        "removed": [_side_doc(s) for s in r.removed],
        "changed": [
            {"name": c.key, "kinds": list(c.kinds), "a": _side_doc(c.a), "b": _side_doc(c.b)} for c in r.changed
        ],
        "unchanged": r.same,
        "delta_params": r.delta_params,
        "delta_bytes": r.delta_bytes,
        "delta_file_bytes": r.file_bytes_b - r.file_bytes_a,
        "groups": [
            {"name": g.name, "params_a": g.params_a, "params_b": g.params_b, "delta_params": g.params_b - g.params_a,
             "bytes_a": g.bytes_a, "bytes_b": g.bytes_b, "delta_bytes": g.bytes_b - g.bytes_a}
            for g in r.groups
        ],
        "values": None if r.values is None else [
            {"name": v.key, "equal": v.equal, "max_abs_diff": v.max_abs_diff, "mismatched": v.mismatched,
             "reason": v.reason or None}
            for v in r.values
        ],
    }  # fmt: skip
