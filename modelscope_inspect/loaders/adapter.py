"""PEFT adapters: a folder with `adapter_config.json` and `adapter_model.safetensors` (or `.bin`) is an adapter,
not a model: its tensors are the adapter's own (`…q_proj.lora_A.weight`), read like any weight file, and its
config says the method, rank, alpha, the modules it targets and the base model it was trained on.

What the config says is kept in `details` (for people) and `details["_adapter"]` (for the commands: the
cross-check with the analytic LoRA count, the share of the base). Nothing here opens the base model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import MalformedFileError, NotFoundError
from ..inventory import TensorInventory

if TYPE_CHECKING:
    from .base import Progress
    from .folder import ModelDir

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
MAX_TARGETS = 4096


def _targets(value: Any, where: str) -> list[str] | str:
    """`target_modules`: a list of module names, or a regex string (PEFT accepts both)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) <= MAX_TARGETS and all(isinstance(v, str) for v in value):
        return sorted(value)
    if value is None:
        return []
    raise MalformedFileError(
        "target_modules is neither a list of names nor a string", path=where, rule="adapter-config"
    )


def adapter_facts(doc: Any, where: str) -> dict[str, Any]:
    """The facts of an adapter config: method, rank, alpha, targets, base model (only the ones present)."""
    if not isinstance(doc, dict):
        raise MalformedFileError("adapter_config.json is not a JSON object", path=where, rule="adapter-config")
    r = doc.get("r")
    if r is not None and (not isinstance(r, int) or isinstance(r, bool) or not 0 < r <= 1 << 20):
        raise MalformedFileError(f"rank r={r!r} is not a positive integer", path=where, rule="adapter-config")
    alpha = doc.get("lora_alpha")
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, int | float)):
        raise MalformedFileError(f"lora_alpha={alpha!r} is not a number", path=where, rule="adapter-config")
    base = doc.get("base_model_name_or_path")
    facts: dict[str, Any] = {
        "method": str(doc.get("peft_type") or "LORA"),
        "r": r,
        "alpha": alpha,
        "targets": _targets(doc.get("target_modules"), where),
        "base": base if isinstance(base, str) and base else None,
        "task_type": doc.get("task_type") if isinstance(doc.get("task_type"), str) else None,
        "rank_pattern": bool(doc.get("rank_pattern")),
    }
    return facts


def load_adapter(
    d: ModelDir, progress: Progress | None, *, load_file: Callable[..., TensorInventory]
) -> TensorInventory:
    """The adapter in folder `d` (which has an `adapter_config.json`); `load_file` is the folder plan's."""
    from dataclasses import replace

    from .names import read_json_source

    with d.open(ADAPTER_CONFIG) as src:
        facts = adapter_facts(read_json_source(src, "adapter-config"), src.name)
    weights = next((w for w in ADAPTER_WEIGHTS if d.exists(w)), None)
    if weights is None:
        raise NotFoundError(
            "adapter_config.json but no adapter_model.safetensors or adapter_model.bin here", path=d.display
        )
    inv = load_file(d, weights, d.display, progress)
    targets = facts["targets"]
    details: dict[str, Any] = {"adapter": facts["method"]}
    if facts["r"] is not None:
        details["rank"] = facts["r"] if not facts["rank_pattern"] else f"{facts['r']} (rank_pattern varies it)"
    if facts["alpha"] is not None:
        details["alpha"] = facts["alpha"]
    details["target modules"] = ", ".join(targets) if isinstance(targets, list) else f"regex {targets!r}"
    details["base model"] = facts["base"] or "(not named)"
    details.update(inv.details)
    details["_adapter"] = facts
    files = (*inv.files, *(f for f in _config_record(d) if f.path not in {g.path for g in inv.files}))
    return replace(inv, details=details, files=files)


def _config_record(d: ModelDir) -> list[Any]:
    from ..inventory import FileRecord

    with d.open(ADAPTER_CONFIG) as src:
        return [FileRecord(ADAPTER_CONFIG, src.size)]


__all__ = ["ADAPTER_CONFIG", "adapter_facts", "load_adapter"]
