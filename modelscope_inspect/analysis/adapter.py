"""A PEFT adapter's parameters, target by target, against the analytic LoRA count of its base model.

The file says what the adapter holds (`…q_proj.lora_A.weight`, `…q_proj.lora_B.weight` per adapted module);
`mi params --lora-r R --lora-targets T` says what rank R on target T of the base model should hold. Each target
is counted both ways, through the same `count_params` the params command uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import UsageError

if TYPE_CHECKING:
    from ..inventory import TensorInventory
    from .hparams import HParams


@dataclass(frozen=True, slots=True)
class AdapterTerm:
    """One target module name: what the file holds and what the formula says (None: the base has no such
    linear module, or no base config was given)."""

    target: str
    modules: int  # adapted modules of that name in the file
    params: int
    formula: int | None

    @property
    def agrees(self) -> bool | None:
        return None if self.formula is None else self.formula == self.params


@dataclass(frozen=True, slots=True)
class AdapterReport:
    """An adapter: its config's facts, its parameters per target and, with a base config, the share."""

    method: str
    r: int | None
    alpha: float | None
    targets: tuple[str, ...] | str
    base: str | None
    params: int
    terms: tuple[AdapterTerm, ...]
    base_params: int | None = None
    base_source: str | None = None  # the config the base count came from

    @property
    def share(self) -> float | None:
        return self.params / self.base_params if self.base_params else None

    @property
    def formula_params(self) -> int | None:
        if not self.terms or any(t.formula is None for t in self.terms):
            return None
        return sum(t.formula or 0 for t in self.terms)


def _target_of(name: str) -> tuple[str, str]:
    """(target module name, adapted module path) of an adapter tensor: the name part before `lora_*`."""
    parts = name.split(".")
    for i, p in enumerate(parts):
        if p.startswith("lora_") and i > 0:
            return parts[i - 1], ".".join(parts[:i])
    return "(other)", name


def adapter_report(inv: TensorInventory, base: HParams | None = None, base_source: str | None = None) -> AdapterReport:
    """The adapter in `inv` (read from a folder with `adapter_config.json`), cross-checked against `base`."""
    from .params import count_params

    facts = inv.details.get("_adapter")
    if not isinstance(facts, Mapping):
        raise UsageError("not a PEFT adapter (no adapter_config.json was read)", path=inv.path, rule="adapter")
    per: dict[str, list[Any]] = {}
    for t in inv.tensors:
        if t.section != "model":
            continue
        target, module = _target_of(t.name)
        slot = per.setdefault(target, [set(), 0])
        slot[0].add(module)
        slot[1] += t.counted_params
    r = facts.get("r")
    base_params = None
    terms = []
    if base is not None:
        base_params = count_params(base).total_params
    for target, (modules, params) in per.items():
        formula = None
        if base is not None and isinstance(r, int) and target != "(other)":
            try:
                lora = count_params(base, lora_r=r, lora_targets=[target]).lora
            except UsageError:
                lora = None  # the base's formula has no linear module of that name
            formula = lora.params if lora is not None else None
        terms.append(AdapterTerm(target, len(modules), params, formula))
    targets = facts.get("targets")
    return AdapterReport(
        method=str(facts.get("method")),
        r=r if isinstance(r, int) else None,
        alpha=facts.get("alpha"),
        targets=tuple(targets) if isinstance(targets, list) else str(targets),
        base=facts.get("base"),
        params=inv.total_params,
        terms=tuple(sorted(terms, key=lambda t: t.target)),
        base_params=base_params,
        base_source=base_source,
    )


__all__ = ["AdapterReport", "AdapterTerm", "adapter_report"]
