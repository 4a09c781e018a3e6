"""From a path (file, sharded index, or HF model folder) to one `TensorInventory`.

HF folders are read in the order transformers prefers: `model.safetensors.index.json`, `model.safetensors`,
`pytorch_model.bin.index.json`, `pytorch_model.bin`; otherwise the folder's single model file, or every
`*.safetensors` file when there is no index. Shard names in an index must be plain names inside the
folder: absolute paths, `..` and symlinks leading out of it are refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import MalformedFileError, NotFoundError, UnsupportedFormatError
from ..inventory import FileRecord, TensorInventory, TensorRecord, build_inventory
from .base import HEAD_BYTES, FileScan, Loader, detect, loaders
from .gguf_split import expand_split, one_split_set
from .packing import apply_packing
from .source import ByteSource, LocalFile, path_kind

MAX_JSON = 64 << 20  # index.json / config.json larger than this are not real
PREFERRED = ("model.safetensors", "pytorch_model.bin")


def read_json(path: Path, display: str, rule: str) -> Any:
    """Parse a small JSON file with a size cap; NaN, deep nesting and bad UTF-8 are malformed input."""
    with LocalFile(path, display) as src:
        return read_json_source(src, rule)


def read_json_source(src: ByteSource, rule: str) -> Any:
    """`read_json` over any byte source (remote files too)."""
    display = src.name
    if src.size > MAX_JSON:
        raise MalformedFileError(f"{src.size:,} bytes is too large for a JSON file", path=display, rule=rule)
    raw = src.read_exact(0, src.size, "JSON file")
    try:

        def no_constants(name: str) -> None:
            raise ValueError(f"non-standard number {name}")

        return json.loads(raw.decode("utf-8"), parse_constant=no_constants)
    except RecursionError:
        raise MalformedFileError("JSON nested too deeply", path=display, rule=rule) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedFileError(f"not valid JSON ({exc})", path=display, rule=rule) from None


def scan_file(path: Path, display: str, rel: str) -> tuple[FileScan, int]:
    """Detect and read one file; return its scan and its size."""
    with LocalFile(path, display) as src:
        return scan_source(src, path.name, rel), src.size


def scan_source(src: ByteSource, filename: str, rel: str) -> FileScan:
    """Detect and read one file from any byte source (`filename` serves the extension fallback)."""
    display = src.name
    head = src.read_at(0, HEAD_BYTES)
    loader = detect(head, src.size, filename)
    if loader is None:
        if src.size == 0:
            raise UnsupportedFormatError("file is empty", path=display)
        known = ", ".join(sorted({e for ld in loaders() for e in ld.extensions}))
        raise UnsupportedFormatError(
            f"not a model file this tool reads (no known magic bytes; extensions known: {known})", path=display
        )
    return loader.read(src, rel)


def _inside(
    folder: Path,
    name: str,
    display: str,
    *,
    label: str = "shard",
    rule: str = "index-shard",
    missing: str = "index names shard {name!r}, which does not exist",
) -> Path:
    """`folder / name` for a file another file names (an index's shard, a split GGUF's part): a plain name,
    existing, and not leading out of the folder through a symlink."""
    if not isinstance(name, str) or not name or os.path.isabs(name) or ".." in Path(name).parts or "\\" in name:
        raise MalformedFileError(
            f"{label} name {name!r} is not a plain file name in the folder", path=display, rule=rule
        )
    target = folder / name
    try:
        resolved = target.resolve(strict=True)
    except FileNotFoundError:
        raise MalformedFileError(missing.format(name=name), path=display, rule=rule) from None
    except (OSError, RuntimeError) as exc:
        raise MalformedFileError(f"{label} {name!r} cannot be resolved ({exc})", path=display, rule=rule) from None
    if not resolved.is_relative_to(folder.resolve()):
        raise MalformedFileError(f"{label} {name!r} leads outside the model folder", path=display, rule=rule)
    return target


def _load_index(index: Path, display: str) -> tuple[list[tuple[str, FileScan, int]], list[str], int]:
    folder = index.parent
    doc = read_json(index, display, "index-json")
    shards, total_size = index_shards(doc, display)
    scans: list[tuple[str, FileScan, int]] = []
    warnings: list[str] = []
    for shard, names in shards.items():
        path = _inside(folder, shard, display)
        scan, size = scan_file(path, str(path), shard)
        check_shard(shard, names, scan, display, warnings)
        scans.append((shard, scan, size))
    return scans, warnings, total_size


def index_shards(doc: Any, display: str) -> tuple[dict[str, list[str]], int]:
    """An index's shards (in first-mention order) with the tensors it puts in each, and its `total_size` (-1)."""
    weight_map = doc.get("weight_map") if isinstance(doc, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise MalformedFileError("index has no weight_map object", path=display, rule="index-json")
    shards: dict[str, list[str]] = {}
    for tensor, shard in weight_map.items():
        if not isinstance(shard, str):
            raise MalformedFileError(f"weight_map[{tensor!r}] is not a file name", path=display, rule="index-json")
        shards.setdefault(shard, []).append(tensor)
    assert isinstance(doc, dict)
    declared = doc.get("metadata", {}).get("total_size") if isinstance(doc.get("metadata"), dict) else None
    return shards, declared if isinstance(declared, int) else -1


def check_shard(shard: str, names: list[str], scan: FileScan, display: str, warnings: list[str]) -> None:
    """A shard must hold every tensor the index puts in it; tensors the index does not list are a warning."""
    present = {r.name for r in scan.records}
    missing = [n for n in names if n not in present]
    if missing:
        raise MalformedFileError(
            f"index says {missing[0]!r} is in {shard} but it is not there"
            + (f" ({len(missing) - 1} more missing)" if len(missing) > 1 else ""),
            path=display,
            rule="index-mismatch",
        )
    extra = present.difference(names)
    if extra:
        warnings.append(f"{shard} holds {len(extra)} tensor(s) the index does not list, e.g. {min(extra)!r}")


def _combine(
    fmt_hint: str,
    display: str,
    scans: list[tuple[str, FileScan, int]],
    index_file: FileRecord | None,
    config: Mapping[str, Any] | None,
    warnings: list[str],
) -> TensorInventory:
    records: list[TensorRecord] = []
    seen: dict[str, str] = {}
    metadata: dict[str, str] = {}
    extra: dict[str, Any] = {}
    storage = 0
    for rel, scan, _size in scans:
        for rec in scan.records:
            if rec.name in seen:
                raise MalformedFileError(
                    f"tensor {rec.name!r} is in both {seen[rec.name]} and {rel}", path=display, rule="index-mismatch"
                )
            seen[rec.name] = rel
            records.append(rec)
        storage += scan.storage_bytes
        metadata.update(scan.metadata)
        warnings.extend(scan.warnings)
        for k, v in scan.extra.items():
            extra.setdefault(k, v)
    formats = sorted({s.format for _, s, _ in scans})
    files = [FileRecord(rel, size) for rel, _, size in scans]
    listed = {f.path for f in files}
    for _rel, scan, _size in scans:
        for extra_rel, extra_size in scan.extra_files:
            if extra_rel not in listed:  # external data counts toward file_bytes, once
                listed.add(extra_rel)
                files.append(FileRecord(extra_rel, extra_size))
    if index_file:
        files.insert(0, index_file)
    if config is not None:
        extra["has_config"] = True
    records = apply_packing(records, config, extra)  # packed low-bit weights → logical counts (analysis/packing.py)
    return build_inventory(
        format=formats[0] if len(formats) == 1 else "+".join(formats) or fmt_hint,
        path=display,
        files=files,
        records=records,
        storage_bytes=storage,
        metadata=metadata,
        config=config,
        warnings=warnings,
        extra=extra,
    )


def _model_candidates(folder: Path) -> list[Path]:
    known = tuple({e for ld in loaders() for e in ld.extensions if e not in (".pkl", ".tar")})
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(known))


def load(path: str | os.PathLike[str], *, endpoint: str | None = None, token: str | None = None) -> TensorInventory:
    """Read a model file, a sharded `*.index.json`, or a model folder into a `TensorInventory`.

    `path` may also be a URL (`hf://ORG/NAME[@REV]`, `https://…`, fsspec URLs): only headers are fetched
    (see `modelscope_inspect.remote`); `endpoint` / `token` apply to those.

    Reads headers only; never imports or runs anything from the file.

    Example:
        >>> inv = load("gpt2/")  # doctest: +SKIP
        >>> print(inv.format, inv.total_params)  # doctest: +SKIP
        safetensors 124439808
    """
    if isinstance(path, str):
        from ..remote import is_url  # light: the remote package loads on demand

        if is_url(path):
            from ..remote import load_url

            return load_url(path, endpoint=endpoint, token=token)
    p = Path(path)
    display = str(path)
    is_dir = path_kind(p, display)
    if not is_dir:
        if p.name.endswith(".index.json"):
            scans, warnings, declared = _load_index(p, display)
            return _with_total_check(
                _combine("index", display, scans, FileRecord(p.name, p.stat().st_size), None, warnings), declared
            )
        return _load_single(p, display, None, display)

    config: Mapping[str, Any] | None = None
    cfg = p / "config.json"
    if cfg.is_file():
        doc = read_json(cfg, str(cfg), "config-json")
        if isinstance(doc, dict):
            config = doc
    for base in PREFERRED:
        index = p / f"{base}.index.json"
        if index.is_file():
            scans, warnings, declared = _load_index(index, str(index))
            inv = _combine("index", display, scans, FileRecord(index.name, index.stat().st_size), config, warnings)
            return _with_total_check(inv, declared)
        single = p / base
        if single.is_file():
            scan, size = scan_file(single, str(single), base)
            return _combine(scan.format, display, [(base, scan, size)], None, config, [])
    candidates = _model_candidates(p)
    safetensors = [c for c in candidates if c.name.endswith(".safetensors")]
    chosen = safetensors if safetensors else candidates
    if not chosen:
        raise NotFoundError("folder holds no model file (.safetensors, .bin, .pth, .pt, .ckpt …)", path=display)
    warnings = []
    if len(chosen) > 1 and not safetensors:
        first = one_split_set([c.name for c in chosen])
        if first is not None:  # a split GGUF: its parts make one model
            return _load_single(p / first, display, config, str(p / first))
        raise UnsupportedFormatError(
            f"folder holds {len(chosen)} model files and no index; name one of: "
            + ", ".join(c.name for c in chosen[:6]),
            path=display,
        )
    if len(chosen) == 1:
        return _load_single(chosen[0], display, config, str(chosen[0]))
    warnings.append(f"no index file: read all {len(chosen)} .safetensors files as shards of one model")
    scans = []
    for c in chosen:
        scan, size = scan_file(c, str(c), c.name)
        scans.append((c.name, scan, size))
    return _combine(scans[0][1].format, display, scans, None, config, warnings)


def _load_single(p: Path, display: str, config: Mapping[str, Any] | None, file_display: str) -> TensorInventory:
    """One model file, or every part of the split GGUF it belongs to."""
    scan, size = scan_file(p, file_display, p.name)
    scans = expand_split(p.name, scan, size, lambda names: _scan_parts(p.parent, names, display), display)
    return _combine(scan.format, display, scans, None, config, [])


def _scan_parts(folder: Path, names: list[str], display: str) -> dict[str, tuple[FileScan, int]]:
    """The other parts of a split GGUF, each a plain file in the same folder."""
    out = {}
    for name in names:
        part = _inside(
            folder,
            name,
            display,
            label="split GGUF part",
            rule="gguf-split",
            missing="split GGUF part {name} is missing",
        )
        out[name] = scan_file(part, str(part), name)
    return out


def _with_total_check(inv: TensorInventory, declared: int) -> TensorInventory:
    # total_size in an HF index is the sum of tensor bytes (what save_pretrained writes).
    if declared >= 0 and declared != inv.storage_bytes:
        from dataclasses import replace

        note = f"index metadata says total_size {declared:,} bytes; the shards hold {inv.storage_bytes:,}"
        return replace(inv, warnings=(*inv.warnings, note))
    return inv


__all__ = ["Loader", "check_shard", "index_shards", "load", "read_json", "read_json_source", "scan_file", "scan_source"]
