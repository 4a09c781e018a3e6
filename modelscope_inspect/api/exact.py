"""`mi params --exact`: any model transformers knows, built on the meta device and counted.

The escape hatch for a family the registry does not hold yet: `transformers` builds the model class named by
the config (its `architectures`, else the causal-LM or base auto class) under `torch.device("meta")`, which
allocates nothing, and `parameters()` is counted (tied weights once, as torch counts them). No file is
executed: the config is JSON, and the modeling code is the installed transformers', never a repository's
remote code (`trust_remote_code` is never set).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import MissingDependencyError, UsageError

if TYPE_CHECKING:
    from ..analysis.params import ParamReport

EXTRA = "pip install 'modelscope-inspect[exact]'"


def available() -> bool:
    """True when torch and transformers can be imported (without importing them)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


def exact_report(config: Mapping[str, Any], *, path: str | None = None, dtype: str | None = None) -> ParamReport:
    """The parameter count of the model `config` describes, counted by torch on transformers' own model class."""
    from ..analysis.families.base import ParamTerm
    from ..analysis.hparams import HParams
    from ..analysis.params import ParamReport

    if not available():
        raise MissingDependencyError(
            f"--exact builds the model with transformers on the meta device: {EXTRA}", path=path, rule="missing-extra"
        )
    import torch
    import transformers

    model_type = config.get("model_type")
    if not isinstance(model_type, str):
        raise UsageError("--exact needs the config's model_type", path=path, rule="model-type")
    kwargs = {k: v for k, v in config.items() if k not in ("model_type", "transformers_version")}
    try:
        cfg = transformers.AutoConfig.for_model(model_type, **kwargs)
    except (ValueError, KeyError) as exc:
        raise UsageError(
            f"transformers {transformers.__version__} does not know model_type {model_type!r} ({exc}); a model "
            "that needs its repository's own code is never run by mi",
            path=path,
            rule="model-type",
        ) from None
    archs = [a for a in config.get("architectures") or () if isinstance(a, str)]
    cls = getattr(transformers, archs[0], None) if archs else None
    chosen = archs[0] if cls is not None else None
    try:
        with torch.device("meta"):
            if cls is not None:
                model = cls(cfg)
            else:
                try:
                    model = transformers.AutoModelForCausalLM.from_config(cfg)  # type: ignore[no-untyped-call]
                    chosen = type(model).__name__
                except ValueError:
                    model = transformers.AutoModel.from_config(cfg)  # type: ignore[no-untyped-call]
                    chosen = type(model).__name__
    except Exception as exc:  # the config's sizes do not build: the user's to fix
        raise UsageError(
            f"transformers cannot build {model_type!r} from this config: {type(exc).__name__}: {exc}",
            path=path,
            rule="exact-build",
        ) from None
    terms = tuple(ParamTerm(name, each, count, "counted by torch") for name, each, count in _terms(model))
    vocab = int(getattr(cfg.get_text_config(), "vocab_size", 0) or 0)
    hidden = int(getattr(cfg.get_text_config(), "hidden_size", 0) or 0)
    layers = int(getattr(cfg.get_text_config(), "num_hidden_layers", 0) or 0)
    hp = HParams(arch=model_type, vocab=vocab, d_model=hidden, layers=layers, model_type=model_type,
                 architectures=tuple(archs), path=path)  # fmt: skip
    if dtype is not None:
        hp = hp.with_dtype(dtype)
    elif isinstance(config.get("torch_dtype") or config.get("dtype"), str):
        hp = hp.with_dtype(str(config.get("torch_dtype") or config.get("dtype")))
    notes = (
        f"counted by torch: transformers {transformers.__version__} {chosen} built on the meta device",
        "tied weights counted once (model.parameters())",
    )
    return ParamReport(arch=model_type, hparams=hp, terms=terms, assumptions=notes, method="transformers-meta")


def _terms(model: Any) -> list[tuple[str, int, int]]:
    """Unique parameters per top-level module (the base model's children spelled out), repeated layers folded."""
    seen: set[int] = set()

    def count(module: Any) -> int:
        n = 0
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                n += p.numel()
        return n

    base = getattr(model, "base_model", model)
    parts: list[tuple[str, Any]] = []
    for name, child in model.named_children():
        if child is base and base is not model:
            parts += list(child.named_children())  # the base model's own parts, unprefixed
        else:
            parts.append((name, child))
    if base is model:
        parts = list(model.named_children())
    out: list[tuple[str, int, int]] = []
    for name, child in parts:
        items = list(child) if type(child).__name__ == "ModuleList" else None
        if items:
            sizes = [count(m) for m in items]
            if len(set(sizes)) == 1:
                out.append((f"{name} (×{len(items)})", sizes[0], len(items)))
                continue
            out.append((name, sum(sizes), 1))
            continue
        n = count(child)
        if n:
            out.append((name, n, 1))
    rest = count(model)  # parameters held directly by the top module (e.g. a logit scale)
    if rest:
        out.append(("(top level)", rest, 1))
    return out
