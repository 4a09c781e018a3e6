"""The registry of model families: one `Family` record per family, in the modules of this package.

Everything that differs between families is read from here: the presets `--arch` accepts, the `model_type`s
and `architectures` a config.json may name (`KNOWN_MODEL_TYPES`), how each spells its sizes and what
transformers assumes when a key is absent, the parameter builder, and the memory model's facts. Adding a
family is one record (usually a few lines composing the blocks of `base.py`) in one module listed in
`_MODULES`; `tests/test_families.py` counts every record against transformers on the meta device.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import UsageError
from . import classic, composite, decoders, gpt_style, sparse
from .base import REGISTRY, Family

_MODULES = (classic, decoders, gpt_style, composite, sparse)

FAMILIES: tuple[Family, ...] = tuple(f for m in _MODULES for f in m.FAMILIES)
BY_NAME: dict[str, Family] = {f.name: f for f in FAMILIES}
REGISTRY.update(BY_NAME)
BY_MODEL_TYPE: dict[str, Family] = {t: f for f in FAMILIES for t in f.model_types}
BY_ARCHITECTURE: dict[str, Family] = {a: f for f in FAMILIES for a in f.architectures}

# The presets `--arch` accepts, in registry order.
PRESETS: tuple[str, ...] = tuple(BY_NAME)
# The `model_type`s a config.json may name (legacy capitalised spellings such as `RefinedWeb` are read too).
KNOWN_MODEL_TYPES: tuple[str, ...] = tuple(sorted(t for t in BY_MODEL_TYPE if t.islower()))

assert len(BY_NAME) == len(FAMILIES), "two families share a name"


def family(name: str) -> Family:
    """The family record of preset `name` (`UsageError` listing the known ones)."""
    found = BY_NAME.get(name)
    if found is None:
        raise UsageError(f"unknown --arch {name!r}; known: {', '.join(PRESETS)}", rule="arch")
    return found


def family_for_config(config: Mapping[str, Any], *, path: str | None = None) -> Family:
    """The family a config.json belongs to, from `model_type`, else from `architectures`; never a silent guess."""
    model_type = config.get("model_type")
    if isinstance(model_type, str) and model_type in BY_MODEL_TYPE:
        return BY_MODEL_TYPE[model_type]
    archs = config.get("architectures")
    if isinstance(archs, list):
        for a in archs:
            if isinstance(a, str) and a in BY_ARCHITECTURE:
                return BY_ARCHITECTURE[a]
    what = f"model_type {model_type!r}" if model_type is not None else "a config without model_type"
    raise UsageError(
        f"no preset for {what}; known model types: {', '.join(KNOWN_MODEL_TYPES)} "
        "(or pass --arch and the sizes as flags; `mi params --exact` counts any transformers model)",
        path=path,
        rule="model-type",
    )


def markdown_table() -> str:
    """The README's table of presets: name, the model types it reads, its reference implementation."""
    rows = ["| preset | config `model_type` | counts exactly what this builds |", "| --- | --- | --- |"]
    for f in FAMILIES:
        types = ", ".join(f"`{t}`" for t in f.model_types) if f.model_types else "(flags only)"
        rows.append(f"| `{f.name}` | {types} | {f.summary} |")
    return "\n".join(rows)


__all__ = [
    "BY_NAME",
    "FAMILIES",
    "KNOWN_MODEL_TYPES",
    "PRESETS",
    "Family",
    "family",
    "family_for_config",
    "markdown_table",
]
