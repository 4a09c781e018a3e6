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
    from ..analysis.fit import FileTensors, fit, what_do_i_need
    from .memory import memory_spec

    options.validate()  # before reading anything
    tensors: FileTensors | None = None
    if path is not None:
        # As memory_spec does, keeping the inventory: its tensors' own bytes place the weights (GGUF quants).
        from ..analysis.memory import spec_from_inventory
        from .config import gguf_config, open_config
        from .model import open_model

        inv = open_model(path, endpoint=endpoint, token=token, config_beside=True)
        if config is not None:
            inv = replace(inv, config=open_config(config, endpoint=endpoint, token=token))
        elif inv.format == "gguf":
            inv = replace(inv, config=gguf_config(inv))
        spec = spec_from_inventory(inv, path, arch=arch)
        tensors = tuple((t.name, t.nbytes) for t in inv.tensors if t.section == "model" and t.shared_with is None)
    else:
        spec = memory_spec(config=config, hparams=hparams, arch=arch, endpoint=endpoint, token=token)
    if spec.stored is not None and not options.use_stored_bytes:
        spec = replace(spec, stored=None)
        tensors = None
    if accelerator is None:
        return what_do_i_need(spec, options, tensors=tensors)
    return fit(spec, accelerator, options, tensors)
