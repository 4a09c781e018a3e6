"""`memory_spec`: what `mi memory` estimates for, from a model path, a config or hyperparameters."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..analysis.hparams import HParams
    from ..analysis.memory import ModelSpec


def memory_spec(
    path: str | None = None,
    *,
    config: str | None = None,
    hparams: HParams | None = None,
    arch: str | None = None,
    endpoint: str | None = None,
    token: str | None = None,
) -> ModelSpec:
    """The model to estimate: a model file or folder (or URL: headers only), whose config.json gives the
    hyperparameters; a config.json (file, folder or URL); or hyperparameters given directly.

    Example:
        >>> from modelscope_inspect.analysis.memory import MemoryOptions, estimate_for  # doctest: +SKIP
        >>> estimate_for(memory_spec(config="llama-3-8b.json"), MemoryOptions(seq=8192)).total  # doctest: +SKIP
    """
    from ..analysis.memory import spec_from_config, spec_from_hparams, spec_from_inventory

    if path is not None:
        from .model import open_model

        return spec_from_inventory(open_model(path, endpoint=endpoint, token=token), path, arch=arch)
    if config is not None:
        from .config import open_config

        return spec_from_config(open_config(config, endpoint=endpoint, token=token), config, arch=arch)
    if hparams is None:
        raise TypeError("memory_spec needs a path, a config or hparams")
    return spec_from_hparams(hparams)
