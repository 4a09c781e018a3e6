"""Analytic parameter accounting: a model's parameter count from its hyperparameters, term by term.

Each preset reproduces one reference implementation exactly (tests compare against the real torch /
transformers modules built on the meta device): `torch-decoder` and `torch-encoder-decoder`
(`torch.nn.Transformer*` layers), `gpt2`, `bert`, `roberta`, `t5`, `llama`, `mistral`, `qwen2`, `gemma`,
`opt`, `phi`, `falcon`, `chatglm` (THUDM's modeling_chatglm.py) and the MoE families `mixtral` and
`qwen2_moe` (total and active-per-token counts). Without a preset (`seed`) the hand formula of the project's
seed notes is applied and what it leaves out is listed with its size.

Pure arithmetic on Python ints: nothing here imports torch, transformers or numpy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from .families import PRESETS as PRESETS  # re-exported: the presets --arch accepts
from .families import family
from .families.base import Build, LinearSpec, ParamTerm, apply_head
from .hparams import HParams

if TYPE_CHECKING:
    from ..inventory import TensorInventory


@dataclass(frozen=True, slots=True)
class LoraReport:
    """Trainable LoRA adapter parameters: r·(in+out) per targeted matrix (A: in→r, B: r→out)."""

    r: int
    targets: tuple[str, ...]
    params: int
    matrices: int
    share: float  # of the base model's total


@dataclass(frozen=True, slots=True)
class ParamReport:
    """The result of `count_params`: terms, total, bytes at the dtype, assumptions, LoRA."""

    arch: str
    hparams: HParams
    terms: tuple[ParamTerm, ...]
    assumptions: tuple[str, ...]
    left_out: tuple[tuple[str, int], ...] = ()  # seed formula only: what it omits, with the size
    linears: tuple[LinearSpec, ...] = ()
    lora: LoraReport | None = None
    is_moe: bool = False
    method: str = "analytic"  # or "transformers-meta": the model class built on the meta device and counted

    @property
    def total_params(self) -> int:
        return sum(t.params for t in self.terms)

    @property
    def active_params(self) -> int:
        """Parameters used for one token (= total unless MoE)."""
        return sum(t.active for t in self.terms)

    @property
    def dtype(self) -> str:
        return self.hparams.dtype_name

    @property
    def nbytes(self) -> int:
        """Bytes of the parameters at `dtype`, from bits (a sub-byte dtype rounds up to whole bytes)."""
        from ..dtypes import lookup

        return (self.total_params * lookup(self.dtype).bits + 7) // 8


def count_params(hp: HParams, *, lora_r: int | None = None, lora_targets: Sequence[str] | None = None) -> ParamReport:
    """Every parameter of `hp.arch`'s reference implementation, term by term (and LoRA adapters if asked)."""
    b = Build()
    fam = family(hp.arch)
    fam.build(hp, b)
    apply_head(hp, b, fam)
    for key in hp.defaults_used:
        b.assumptions.append(f"{key} not in config.json: transformers' default used")
    if hp.torch_dtype is None:
        b.assumptions.append("dtype f32 (not given; --dtype or the config's torch_dtype sets it)")
    report = ParamReport(
        arch=hp.arch,
        hparams=hp,
        terms=tuple(b.terms),
        assumptions=tuple(b.assumptions),
        left_out=tuple(b.left_out),
        linears=tuple(b.linears),
        is_moe=b.is_moe,
    )
    if lora_r is not None or lora_targets:
        report = _with_lora(report, lora_r, lora_targets)
    return report


def _with_lora(report: ParamReport, r: int | None, targets: Sequence[str] | None) -> ParamReport:
    from dataclasses import replace

    if r is None or r <= 0:
        raise UsageError("--lora-r must be a positive integer when LoRA targets are given", rule="lora")
    names = sorted({lin.name for lin in report.linears})
    if not names:  # the seed's hand formula counts weights, not modules: there is nothing to name
        raise UsageError(
            f"the {report.arch} formula has no named linear modules for LoRA to target; give --arch PRESET "
            "(torch-decoder, llama, …) or --config, with --lora-targets",
            rule="lora",
        )
    wanted = tuple(t.strip() for t in (targets or ()) if t.strip())
    if not wanted:
        raise UsageError(
            f"--lora-r needs --lora-targets: the linear modules of {report.arch} are {', '.join(names)}", rule="lora"
        )
    unknown = [t for t in wanted if t not in names]
    if unknown:
        raise UsageError(
            f"no module named {', '.join(unknown)} in {report.arch}; LoRA can target: {', '.join(names)}", rule="lora"
        )
    chosen = [lin for lin in report.linears if lin.name in wanted]
    params = sum(r * (lin.d_in + lin.d_out) * lin.count for lin in chosen)
    total = report.total_params or 1
    lora = LoraReport(r, wanted, params, sum(lin.count for lin in chosen), params / total)
    return replace(report, lora=lora)


# ---- JSON ---------------------------------------------------------------------------------------------------


# ---- cross-check against a file -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CrossCheck:
    """Analytic total (from config.json) vs the count in the file, explained term by term."""

    arch: str
    analytic: int
    file: int
    terms: tuple[tuple[str, int, int], ...]  # (term, analytic, in file)
    unmatched: tuple[tuple[str, int], ...]  # file tensors no term accounts for
    notes: tuple[str, ...]

    @property
    def difference(self) -> int:
        return self.file - self.analytic

    @property
    def matches(self) -> bool:
        return self.difference == 0


def cross_check(
    inv: TensorInventory, config: Mapping[str, Any] | None = None, *, path: str | None = None
) -> CrossCheck:
    """Compare `inv.total_params` with the analytic total from `config` (default: the folder's config.json).

    Each model tensor is assigned to the first term whose name pattern matches; the per-term sums show where
    a difference comes from (a tied head saved twice, a missing buffer, an extra task head).
    """
    cfg = config if config is not None else inv.config
    if cfg is None:
        raise UsageError("no config.json to cross-check against (give --config)", rule="cross-check")
    hp = HParams.from_config(cfg, path=path)
    report = count_params(hp)
    compiled = [(t, [re.compile(p) for p in t.patterns]) for t in report.terms]
    per_term: dict[str, int] = {t.name: 0 for t in report.terms}
    unmatched: list[tuple[str, int]] = []
    for rec in inv.tensors:
        if rec.section != "model":
            continue
        for term, pats in compiled:
            if any(p.search(rec.name) for p in pats):
                per_term[term.name] += rec.counted_numel
                break
        else:
            if rec.counted_numel:
                unmatched.append((rec.name, rec.counted_numel))
    rows = tuple((t.name, t.params, per_term[t.name]) for t in report.terms)
    notes: list[str] = []
    file_total = int(inv.total_params)
    diff = file_total - report.total_params
    if diff == 0:
        notes.append(f"the file holds exactly the {report.total_params:,} parameters the {hp.arch} config implies")
    else:
        for name, want, got in rows:
            if want != got:
                notes.append(f"{name}: config implies {want:,}, file has {got:,} ({got - want:+,})")
        if unmatched:
            extra = sum(n for _, n in unmatched)
            notes.append(f"{len(unmatched)} tensor(s) outside the {hp.arch} layout: {extra:+,}")
    return CrossCheck(hp.arch, report.total_params, file_total, rows, tuple(unmatched), tuple(notes))
