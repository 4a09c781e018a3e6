"""`diff`: two models compared by structure, and by tensor contents on request."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import UsageError
from .paths import is_url

if TYPE_CHECKING:
    from ..analysis.diff import DiffReport, ValueResult
    from ..inventory import TensorInventory
    from ..loaders.base import Progress
    from ..loaders.tensor_data import Located

DETAIL_BYTES = 256 << 20  # differing tensors up to this size are re-read through numpy for counts and max |a-b|


def diff_paths(
    path_a: str | os.PathLike[str],
    path_b: str | os.PathLike[str],
    *,
    values: bool = False,
    progress: Progress | None = None,
    endpoint: str | None = None,
    token: str | None = None,
) -> DiffReport:
    """Load both paths (headers only) and compare them; with `values`, also compare tensor contents
    (reading their data; `progress` is told how many bytes are done).

    Example:
        >>> r = diff_paths("model.pth", "model.safetensors")  # doctest: +SKIP
        >>> r.identical, r.delta_params  # doctest: +SKIP
        (True, 0)
    """
    from ..analysis.diff import diff_inventories
    from .model import open_model

    if values:
        for p in (path_a, path_b):
            if is_url(p):
                # Comparing values means downloading every tensor: not what a header reader does.
                raise UsageError(
                    "--values reads every tensor's data; download the model first (URLs are read headers only)",
                    path=str(p),
                    rule="options",
                )
    a = open_model(path_a, endpoint=endpoint, token=token)
    b = open_model(path_b, endpoint=endpoint, token=token)
    report = diff_inventories(a, b)
    if values:
        report = replace(report, values=compare_values(a, b, report, progress))
    return report


def compare_values(
    a: TensorInventory, b: TensorInventory, report: DiffReport, progress: Progress | None = None
) -> tuple[ValueResult, ...]:
    """A `ValueResult` for every tensor both sides hold with the same shape."""
    from ..analysis.diff import ValueResult, value_pairs
    from ..loaders.tensor_data import Locator, same_bytes

    pairs = value_pairs(a, b, report)
    total = sum(max(ra.nbytes, rb.nbytes) for _k, ra, rb in pairs)
    task = progress.start("comparing values", total, "bytes") if progress is not None else None
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if task is not None:
            task.advance(done, done)

    loc_a, loc_b = Locator(a), Locator(b)
    results: list[ValueResult] = []
    try:
        for k, ra, rb in pairs:
            la, lb = loc_a.locate(ra), loc_b.locate(rb)
            if ra.dtype == rb.dtype and la.contiguous and lb.contiguous:
                equal = same_bytes(la, lb, step)
                detail = None
                if not equal and ra.nbytes <= DETAIL_BYTES:
                    detail = _compare_numpy(k, la, lb)  # how many elements and by how much, when numpy is there
                results.append(detail if detail is not None and detail.equal is False else ValueResult(k, equal))
            else:
                results.append(_compare_numpy(k, la, lb))
                step(max(ra.nbytes, rb.nbytes))
    finally:
        if task is not None:
            task.close()
    return tuple(results)


def _compare_numpy(key: str, la: Located, lb: Located) -> ValueResult:
    from ..analysis.diff import ValueResult, compare_arrays
    from ..loaders.tensor_data import numpy_view

    try:
        import numpy as np
    except ImportError:
        return ValueResult(key, None, reason="needs numpy (different dtypes or a strided view)")
    try:
        xa = numpy_view(la, np)
        xb = numpy_view(lb, np)
    except UsageError as exc:
        return ValueResult(key, None, reason=exc.message)
    return compare_arrays(key, xa, xb, np)
