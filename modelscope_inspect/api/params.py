"""`cross_check_for`: what `mi inspect` prints under the file's count, the analytic count from its config."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import InspectError

if TYPE_CHECKING:
    from ..analysis.hparams import HParams
    from ..analysis.params import CrossCheck, ParamReport
    from ..inventory import TensorInventory


def hparams_for(
    *,
    config: str | None,
    arch: str | None,
    dtype: str | None,
    endpoint: str | None = None,
    token: str | None = None,
    **sizes: Any,
) -> HParams:
    """`mi params` options → HParams: `config` (a config.json, a folder holding one, or a URL) gives the sizes,
    else the size flags do. Size flags beside a config are refused before anything is read."""
    from ..analysis.hparams import hparams_from_cli, refuse_sizes_with_config
    from .config import open_config

    if config is None:
        return hparams_from_cli(config=None, arch=arch, dtype=dtype, **sizes)
    refuse_sizes_with_config(sizes)
    doc = open_config(config, endpoint=endpoint, token=token)
    return hparams_from_cli(config=doc, config_path=config, arch=arch, dtype=dtype, **sizes)


def params_report(
    *,
    config: str | None = None,
    arch: str | None = None,
    dtype: str | None = None,
    lora_r: int | None = None,
    lora_targets: list[str] | None = None,
    endpoint: str | None = None,
    token: str | None = None,
    **sizes: Any,
) -> ParamReport:
    """`mi params`: the exact parameter count of a config or of size flags, term by term (LoRA on request).

    Example:
        >>> params_report(config="hf://meta-llama/Llama-2-7b-hf").total_params  # doctest: +SKIP
        6738415616
    """
    from ..analysis.params import count_params

    hp = hparams_for(config=config, arch=arch, dtype=dtype, endpoint=endpoint, token=token, **sizes)
    return count_params(hp, lora_r=lora_r, lora_targets=lora_targets)


def cross_check_for(
    inv: TensorInventory, config_path: str | None, *, endpoint: str | None = None, token: str | None = None
) -> CrossCheck | None:
    """With `config_path` a cross-check whose errors are the user's to see; otherwise, when the folder holds
    a config.json of a known model type, the same check, silently skipped when it does not apply."""
    from ..analysis.params import cross_check
    from .config import open_config

    if config_path is not None:
        return cross_check(inv, open_config(config_path, endpoint=endpoint, token=token), path=config_path)
    if inv.config is None:
        return None
    try:
        return cross_check(inv)
    except InspectError:
        return None  # an unknown model type or odd config must not stop `mi inspect`
