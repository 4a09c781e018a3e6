"""diffusers pipelines: a folder with `model_index.json` and one subfolder per component, read as one model.

`model_index.json` (what `DiffusionPipeline.save_pretrained` writes) maps each component to `[library, class]`;
every component with weights (`unet/`, `transformer/`, `vae/`, `text_encoder/` …) is read through the same
folder rules as a model folder (its `*.index.json` first, then the single file), and its tensors are named
`COMPONENT.NAME`, so the module tree's first level is the pipeline's components. Components without weights
(scheduler, tokenizer, feature extractor) are listed as such.

Variants: diffusers saves `NAME.VARIANT.safetensors` (`variant="fp16"`); when such files exist they are chosen
(or the `variant` asked for), and the inventory says so. Component names come from the file's author: plain
names of subfolders inside the pipeline folder only, never `../`.

Single-file diffusion checkpoints keep the original Stable Diffusion layout (`model.diffusion_model.*` for the
UNet, `first_stage_model.*` for the VAE, `cond_stage_model.*` / `conditioner.embedders.N.*` for the text
encoders); `single_file_components` names the same components by those prefixes, so `mi diff` can compare a
pipeline with its single-file checkpoint component by component.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MalformedFileError, NotFoundError
from ..inventory import FileRecord, TensorInventory, TensorRecord, UnreadFile
from .source import OpenSource

if TYPE_CHECKING:
    from .base import FileScan, Progress
    from .folder import ModelDir, Scanned

MODEL_INDEX = "model_index.json"
MAX_COMPONENTS = 64
# The weight files diffusers (`diffusion_pytorch_model`) and transformers (`model`, `pytorch_model`) components
# are saved as, in the order their loaders prefer them.
WEIGHT_BASES = ("diffusion_pytorch_model", "model", "pytorch_model")
WEIGHT_EXTS = (".safetensors", ".bin")
# Original Stable Diffusion key prefixes → the diffusers component they hold (SD 1/2, SDXL).
SINGLE_FILE_PREFIXES = (
    ("model.diffusion_model.", "unet"),
    ("first_stage_model.", "vae"),
    ("cond_stage_model.transformer.", "text_encoder"),
    ("cond_stage_model.model.", "text_encoder"),
    ("cond_stage_model.", "text_encoder"),
    ("conditioner.embedders.0.transformer.", "text_encoder"),
    ("conditioner.embedders.0.", "text_encoder"),
    ("conditioner.embedders.1.model.", "text_encoder_2"),
    ("conditioner.embedders.1.", "text_encoder_2"),
)


class SubDir:
    """A subfolder of a `ModelDir` (a pipeline component): names are checked and opened through the parent,
    so a local component that is a symlink out of the pipeline folder is refused like any other way out."""

    def __init__(self, parent: ModelDir, name: str) -> None:
        self.parent, self.name = parent, name
        self.display = f"{parent.display.rstrip('/')}/{name}"

    @property
    def workers(self) -> int:
        return self.parent.workers

    def listing(self) -> list[str] | None:
        folder = getattr(self.parent, "folder", None)
        if isinstance(folder, Path):  # LocalDir
            return sorted(p.name for p in (folder / self.name).iterdir() if p.is_file())
        walk = getattr(self.parent, "walk", None)
        names = walk() if callable(walk) else None
        if not isinstance(names, list):
            return None
        lead = f"{self.name}/"
        return sorted(n[len(lead) :] for n in names if n.startswith(lead) and "/" not in n[len(lead) :])

    def exists(self, name: str) -> bool:
        return self.parent.exists(f"{self.name}/{name}")

    def open(self, name: str) -> OpenSource:
        return self.parent.open(f"{self.name}/{name}")

    def check(self, name: str, where: str, *, label: str, rule: str, missing: str) -> None:
        from .names import not_plain

        err = not_plain(name, where, label=label, rule=rule)
        if err is not None:
            raise err
        self.parent.check(f"{self.name}/{name}", where, label=label, rule=rule, missing=missing)

    def bytes_read(self) -> int:
        return self.parent.bytes_read()


def components(doc: Any, where: str) -> list[tuple[str, str]]:
    """`(component, "library.Class")` from a `model_index.json`, in file order; `[null, null]` entries (an
    optional component left out) are skipped; a name that is not a plain folder name is malformed."""
    from .names import not_plain

    if not isinstance(doc, dict):
        raise MalformedFileError("model_index.json is not a JSON object", path=where, rule="model-index")
    out: list[tuple[str, str]] = []
    for key, value in doc.items():
        if key.startswith("_") or not isinstance(value, list) or len(value) != 2:
            continue
        lib, cls = value
        if lib is None and cls is None:
            continue
        err = not_plain(key, where, label="component", rule="model-index")
        if err is not None or "/" in key:
            raise err or MalformedFileError(
                f"component name {key!r} is not a plain folder name", path=where, rule="model-index"
            )
        out.append((key, f"{lib}.{cls}" if isinstance(lib, str) and isinstance(cls, str) else str(cls)))
    if len(out) > MAX_COMPONENTS:
        raise MalformedFileError(f"{len(out):,} components is not a real pipeline", path=where, rule="model-index")
    return out


def _weights(names: list[str], variant: str | None) -> tuple[str, str | None] | None:
    """The weight file (or index) of a component and the variant it is, or None when it has none. diffusers
    names a variant's index `BASE.safetensors.index.VARIANT.json` and its shards `BASE.VARIANT-0000N-of-…`."""
    # The variant asked for, then the default weights, then whatever variant is there (a component saved only in
    # fp16 is still read when another variant is asked for; the warning says so).
    for var in ([variant] if variant else []) + [None] + sorted(_variants(names) - {variant}):
        for ext in WEIGHT_EXTS:
            for base in WEIGHT_BASES:
                cands: tuple[str, ...]
                if var:
                    cands = (f"{base}{ext}.index.{var}.json", f"{base}.{var}{ext}.index.json", f"{base}.{var}{ext}")
                else:
                    cands = (f"{base}{ext}.index.json", f"{base}{ext}")
                for name in cands:
                    if name in names:
                        return name, var
    return None


_VARIANT = re.compile(
    r"(?:" + "|".join(WEIGHT_BASES) + r")"
    r"(?:\.(?P<a>[A-Za-z0-9_]+)(?:-\d+-of-\d+)?\.(?:safetensors|bin)(?:\.index\.json)?"
    r"|\.(?:safetensors|bin)\.index\.(?P<b>[A-Za-z0-9_]+)\.json)"
)


def _variants(names: list[str]) -> set[str]:
    """Variants present among a component's weight files (`model.fp16.safetensors` → `fp16`)."""
    found = set()
    for n in names:
        m = _VARIANT.fullmatch(n)
        if m and (m["a"] or m["b"]):
            found.add(m["a"] or m["b"])
    return found


def _prefixed(scan: FileScan, comp: str) -> FileScan:
    recs = [
        replace(r, name=f"{comp}.{r.name}", storage=f"{comp}/{r.storage}", file=f"{comp}/{r.file}")
        for r in scan.records
    ]
    return replace(scan, records=recs, details={})


def load_pipeline(
    d: ModelDir,
    progress: Progress | None,
    *,
    load_file: Callable[..., TensorInventory],
    combine: Callable[..., TensorInventory],
    unread_files: Callable[..., tuple[UnreadFile, ...]] | None = None,
    variant: str | None = None,
) -> TensorInventory:
    """The pipeline in folder `d` (which has a `model_index.json`) as one inventory. `load_file` and `combine`
    are the folder plan's (passed in: the plan imports this module, not the other way round)."""
    from .names import read_json_source

    with d.open(MODEL_INDEX) as src:
        doc = read_json_source(src, "model-index")
        where, index_size = src.name, src.size
    comps = components(doc, where)
    pipeline_class = doc.get("_class_name") if isinstance(doc.get("_class_name"), str) else None
    scans: list[Scanned] = []
    files: list[FileRecord] = [FileRecord(MODEL_INDEX, index_size)]
    warnings: list[str] = []
    chosen: dict[str, str] = {}
    without: list[str] = []
    unread: list[UnreadFile] = []
    all_variants: set[str] = set()
    for comp, _cls in comps:
        sub = _component_dir(d, comp, where)
        names = sub.listing() if sub is not None else None
        if sub is None or names is None:
            without.append(comp)
            continue
        all_variants |= _variants(names)
        pick = _weights(names, variant or ("fp16" if "fp16" in _variants(names) else None))
        if pick is None:
            without.append(comp)
            continue
        name, var = pick
        if variant and var != variant:
            warnings.append(f"{comp} has no {variant} variant: read {name}")
        chosen[comp] = var or "default"
        inv = _component(sub, name, progress, load_file)
        for f in inv.files:
            files.append(FileRecord(f"{comp}/{f.path}", f.nbytes))
        scan = _as_scan(inv)
        scans.append((f"{comp}/{name}", _prefixed(scan, comp), 0))
        warnings.extend(f"{comp}: {w}" for w in inv.warnings)
        if unread_files is not None:  # the other variant's files: `mi check --max-size` counts them too
            unread.extend(replace(u, path=f"{comp}/{u.path}") for u in unread_files(sub, inv, names))
    if not scans:
        raise NotFoundError("model_index.json names no component with weights here", path=d.display)
    out = combine(scans[0][1].format, d.display, scans, None, None, warnings)
    variants = sorted(set(chosen.values()))
    details: dict[str, Any] = {}
    if pipeline_class:
        details["pipeline"] = pipeline_class
    details["components"] = {c: cls for c, cls in comps if c in chosen}
    if without:
        details["no weights"] = ", ".join(without)
    if variants == ["default"]:
        details["variant"] = "default weights" + (
            f" (also here: {', '.join(sorted(all_variants))})" if all_variants else ""
        )
    else:
        details["variant"] = ", ".join(f"{c}={v}" for c, v in chosen.items())
    details["_component_prefixes"] = {c: f"{c}." for c in chosen}
    if unread:
        shown = ", ".join(u.path for u in unread[:3]) + (f" and {len(unread) - 3:,} more" if len(unread) > 3 else "")
        out = replace(out, warnings=(*out.warnings, f"also here, not read: {shown} (another variant)"))
    return replace(out, files=tuple(files), details=details, unread_files=tuple(unread))


def _component_dir(d: ModelDir, comp: str, where: str) -> SubDir | None:
    """The component's subfolder, or None when it is not there (a scheduler saved as a folder of JSON is)."""
    folder = getattr(d, "folder", None)
    if isinstance(folder, Path):
        target = folder / comp
        try:
            resolved = target.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not resolved.is_relative_to(folder.resolve()):
            raise MalformedFileError(f"component {comp!r} leads outside the pipeline folder", path=where,
                                     rule="model-index")  # fmt: skip
        if not resolved.is_dir():
            return None
    return SubDir(d, comp)


def _component(
    sub: SubDir, name: str, progress: Progress | None, load_file: Callable[..., TensorInventory]
) -> TensorInventory:
    from .names import read_json_source

    config: Mapping[str, Any] | None = None
    if sub.exists("config.json"):
        with sub.open("config.json") as src:
            doc = read_json_source(src, "config-json")
        config = doc if isinstance(doc, dict) else None
    sub.check(name, sub.display, label="weights", rule="model-index", missing="component file {name!r} is missing")
    return load_file(sub, name, sub.display, progress, config=config)


def _as_scan(inv: TensorInventory) -> FileScan:
    from .base import FileScan

    recs = [replace(t, counted_numel=0, shared_with=None) for t in inv.tensors]
    return FileScan(format=inv.format, records=recs, storage_bytes=inv.storage_bytes, warnings=[])


def single_file_components(records: list[TensorRecord]) -> dict[str, str] | None:
    """`{component: key prefix}` for a single-file diffusion checkpoint (None when it is not one: the UNet's
    `model.diffusion_model.` prefix must be there, beside at least one other component)."""
    found: dict[str, str] = {}
    for rec in records:
        for prefix, comp in SINGLE_FILE_PREFIXES:
            if rec.name.startswith(prefix):
                found.setdefault(comp, prefix)
                break
    if "unet" not in found or len(found) < 2:
        return None
    return found


def single_file_details(records: list[TensorRecord]) -> dict[str, Any]:
    """Details for a single-file diffusion checkpoint: its components and their parameter counts."""
    comps = single_file_components(records)
    if comps is None:
        return {}
    counts: dict[str, int] = {}
    for rec in records:
        for prefix, comp in SINGLE_FILE_PREFIXES:
            if rec.name.startswith(prefix):
                counts[comp] = counts.get(comp, 0) + rec.numel
                break
    return {
        "diffusion checkpoint": ", ".join(f"{c}={counts[c]:,}" for c in counts),
        "_component_prefixes": comps,
    }


def component_of(name: str, prefixes: Mapping[str, str]) -> str | None:
    """The component a tensor name belongs to under `prefixes` (longest prefix wins)."""
    best = None
    for comp, prefix in prefixes.items():
        if name.startswith(prefix) and (best is None or len(prefix) > len(prefixes[best])):
            best = comp
    return best


__all__ = [
    "MODEL_INDEX",
    "SINGLE_FILE_PREFIXES",
    "SubDir",
    "components",
    "load_pipeline",
    "single_file_components",
    "single_file_details",
]
