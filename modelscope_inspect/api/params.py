"""`cross_check_for`: what `mi inspect` prints under the file's count, the analytic count from its config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import InspectError, UsageError
from .config import open_config

if TYPE_CHECKING:
    from ..analysis.adapter import AdapterReport
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
    exact: bool = False,
    endpoint: str | None = None,
    token: str | None = None,
    **sizes: Any,
) -> ParamReport:
    """`mi params`: the exact parameter count of a config or of size flags, term by term (LoRA on request).

    `exact` counts through transformers on the meta device (torch and transformers needed); a config whose
    model type no family record knows is counted that way automatically when they are installed.

    Example:
        >>> params_report(config="hf://meta-llama/Llama-2-7b-hf").total_params  # doctest: +SKIP
        6738415616
    """
    from ..analysis.hparams import hparams_from_cli, refuse_sizes_with_config
    from ..analysis.params import count_params

    if config is None:
        if exact:
            raise UsageError("--exact counts the model a config describes: give --config", rule="options")
        return count_params(hparams_from_cli(config=None, arch=arch, dtype=dtype, **sizes), lora_r=lora_r,
                            lora_targets=lora_targets)  # fmt: skip
    refuse_sizes_with_config(sizes)
    doc = open_config(config, endpoint=endpoint, token=token)
    if exact or (arch is None and not _known(doc, config)):
        return _exact(doc, config, dtype, automatic=not exact, lora=lora_r is not None or bool(lora_targets))
    hp = hparams_from_cli(config=doc, config_path=config, arch=arch, dtype=dtype, **sizes)
    return count_params(hp, lora_r=lora_r, lora_targets=lora_targets)


def _known(doc: Mapping[str, Any], path: str) -> bool:
    """True when a family record reads this config; otherwise the error says what would (an extra for --exact)."""
    from ..analysis.families import family_for_config
    from .exact import EXTRA, available

    try:
        family_for_config(doc, path=path)
    except UsageError as exc:
        if not isinstance(doc.get("model_type"), str):
            raise  # nothing can say what model this is, transformers neither
        if not available():
            raise UsageError(f"{exc.message}; {EXTRA} enables --exact", path=path, rule=exc.rule) from None
        return False
    return True


def _exact(doc: Mapping[str, Any], path: str, dtype: str | None, *, automatic: bool, lora: bool) -> ParamReport:
    from dataclasses import replace

    from .exact import exact_report

    if lora:
        raise UsageError("--lora-r counts adapters on the analytic presets, not through transformers", rule="options")
    report = exact_report(doc, path=path, dtype=dtype)
    if automatic:  # a model type no family record knows
        note = f"model_type {doc.get('model_type')!r} has no family record: counted through transformers"
        report = replace(report, assumptions=(note, *report.assumptions))
    return report


def cross_check_for(
    inv: TensorInventory, config_path: str | None, *, endpoint: str | None = None, token: str | None = None
) -> CrossCheck | None:
    """With `config_path` a cross-check whose errors are the user's to see; otherwise, when the folder holds
    a config.json of a known model type, the same check, silently skipped when it does not apply."""
    from ..analysis.params import cross_check

    if config_path is not None:
        return cross_check(inv, open_config(config_path, endpoint=endpoint, token=token), path=config_path)
    if inv.config is None:
        return None
    try:
        return cross_check(inv)
    except InspectError:
        return None  # an unknown model type or odd config must not stop `mi inspect`


def adapter_report_for(
    inv: TensorInventory, base: str | None, *, endpoint: str | None = None, token: str | None = None
) -> AdapterReport | None:
    """For a PEFT adapter, its report against the base model's config: `base` (a config.json, a folder or a
    URL) when given, else the base the adapter names when that is a local folder with a config.json (silently
    none when it is not, or its config is of no known family). None for anything that is not an adapter."""
    from pathlib import Path

    from ..analysis.adapter import adapter_report
    from ..analysis.hparams import hparams_from_cli

    if "_adapter" not in inv.details:
        if base is not None:
            raise UsageError("--base is for PEFT adapters (a folder with adapter_config.json)", rule="options")
        return None
    if base is not None:
        doc = open_config(base, endpoint=endpoint, token=token)
        return adapter_report(inv, hparams_from_cli(config=doc, config_path=base, arch=None, dtype=None), base)
    named = inv.details["_adapter"].get("base")
    if isinstance(named, str) and "://" not in named and (Path(named) / "config.json").is_file():
        try:
            doc = open_config(named)
            return adapter_report(inv, hparams_from_cli(config=doc, config_path=named, arch=None, dtype=None), named)
        except InspectError:
            pass  # the named base is not one we can count: the adapter is still reported
    return adapter_report(inv)
