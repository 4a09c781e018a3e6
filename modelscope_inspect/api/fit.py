"""`fit_report`: `mi fit` for a model path, URL, config or hyperparameters on one accelerator (or all)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..analysis.accelerators import Accelerator
    from ..analysis.fit import FitOptions, FitReport, NeedReport
    from ..analysis.hparams import HParams


def fit_report(
    path: str | None = None,
    *,
    config: str | None = None,
    hparams: HParams | None = None,
    arch: str | None = None,
    accelerator: Accelerator | None,
    options: FitOptions,
    endpoint: str | None = None,
    token: str | None = None,
) -> FitReport | NeedReport:
    """The fit on `accelerator` under `options`, or without one the smallest count of each catalogued
    accelerator that holds the model ("what do I need").

    Example:
        >>> from modelscope_inspect.analysis.accelerators import find_accelerator  # doctest: +SKIP
        >>> h100 = find_accelerator("H100")  # doctest: +SKIP
        >>> fit_report(config="llama-3-8b.json", accelerator=h100, options=opts).fits  # doctest: +SKIP
    """
    from ..analysis.fit import fit, what_do_i_need
    from .memory import memory_spec

    options.validate()  # before reading anything
    spec = memory_spec(path, config=config, hparams=hparams, arch=arch, endpoint=endpoint, token=token)
    if spec.stored is not None and not options.use_stored_bytes:
        spec = replace(spec, stored=None)
    if accelerator is None:
        return what_do_i_need(spec, options)
    return fit(spec, accelerator, options)
