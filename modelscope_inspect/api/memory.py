"""`memory_spec`: what `mi memory` estimates for, from a model path, a config or hyperparameters."""

from __future__ import annotations

from dataclasses import replace
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
    """The model to estimate: a model file or folder (or URL: headers only); a config (file, folder or URL);
    or hyperparameters given directly.

    With `path`, parameters and bytes as stored come from the file, and the hyperparameters from, in order:
    `config` when given (it overrides the folder's); a GGUF file's own header; the folder's config.json (the
    one beside a single weights file too).

    Example:
        >>> from modelscope_inspect.analysis.memory import MemoryOptions, estimate_for  # doctest: +SKIP
        >>> estimate_for(memory_spec(config="llama-3-8b.json"), MemoryOptions(seq=8192)).total  # doctest: +SKIP
    """
    from ..analysis.memory import spec_from_config, spec_from_hparams, spec_from_inventory
    from .config import gguf_config, open_config

    if path is not None:
        from .model import open_model

        inv = open_model(path, endpoint=endpoint, token=token, config_beside=True)
        if config is not None:
            inv = replace(inv, config=open_config(config, endpoint=endpoint, token=token))
        elif inv.format == "gguf":
            inv = replace(inv, config=gguf_config(inv))
        return spec_from_inventory(inv, path, arch=arch)
    if config is not None:
        return spec_from_config(open_config(config, endpoint=endpoint, token=token), config, arch=arch)
    if hparams is None:
        raise TypeError("memory_spec needs a path, a config or hparams")
    return spec_from_hparams(hparams)
