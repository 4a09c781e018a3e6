"""One folder plan: from a model folder (local or remote), a sharded `*.index.json` or one file, to one inventory.

Folders are read in the order transformers prefers: `model.safetensors.index.json`, `model.safetensors`,
`pytorch_model.bin.index.json`, `pytorch_model.bin`; otherwise the folder's single model file, every part of
a split GGUF, or every `*.safetensors` file when there is no index. Names that one file gives for another (an
index's shards, a split GGUF's parts) must be plain names inside the folder.

The plan runs over a `ModelDir`: `LocalDir` here, and the hub, HTTP and fsspec folders of `remote/`. Nothing in
this module knows whether bytes come from a disk or a network.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import InspectError, MalformedFileError, NotFoundError, UnsupportedFormatError, UsageError
from ..inventory import FileRecord, TensorInventory, TensorRecord, TorchInfo, UnreadFile, build_inventory
from .adapter import ADAPTER_CONFIG, load_adapter
from .base import HEAD_BYTES, FileScan, Loader, Progress, detect, loaders
from .gguf_split import expand_split, one_split_set
from .identify import identify
from .names import not_plain, read_json_source
from .packing import apply_packing
from .pipeline import MODEL_INDEX, load_pipeline, single_file_details
from .source import ByteSource, LocalFile, OpenSource
from .tokenizer import read_tokenizer, tokenizer_line

if TYPE_CHECKING:
    from concurrent.futures import Future

PREFERRED = ("model.safetensors", "pytorch_model.bin")
VARIANT_INDEX = re.compile(
    r"\.(safetensors|bin)\.index\.[A-Za-z0-9_]+\.json$"
)  # diffusers: NAME.safetensors.index.fp16.json
Scanned = tuple[str, FileScan, int]  # (name relative to the folder, what the reader found, file size)


class ModelDir(Protocol):
    """A folder of model files, wherever it lives."""

    display: str  # the folder as shown in messages

    @property
    def workers(self) -> int:
        """How many files may be read at once."""
        ...

    def listing(self) -> list[str] | None:
        """The names of the files directly in the folder, or None when the folder cannot be listed."""
        ...

    def exists(self, name: str) -> bool:
        """True when `name` (relative to the folder) is a file there."""
        ...

    def open(self, name: str) -> OpenSource:
        """A byte source over `name`; its `name` is what messages show. Use it as a context manager."""
        ...

    def check(self, name: str, where: str, *, label: str, rule: str, missing: str) -> None:
        """Refuse a name another file (`where`) gives for a file of this folder unless it is a plain name of
        an existing file inside the folder. `missing` is the message for an absent file (`{name}` filled in)."""
        ...

    def bytes_read(self) -> int:
        """Bytes fetched so far (0 where reading costs nothing worth reporting)."""
        ...


class LocalDir:
    """A folder on this machine. `shown` overrides how some files are named in messages (the path a user
    typed for a single file)."""

    workers = 1

    def __init__(self, folder: Path, display: str | None = None, shown: Mapping[str, str] | None = None) -> None:
        self.folder = folder
        self.display = display if display is not None else str(folder)
        self._shown = dict(shown or {})

    def listing(self) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir() if p.is_file())

    def exists(self, name: str) -> bool:
        return (self.folder / name).is_file()

    def open(self, name: str) -> LocalFile:
        return LocalFile(self.folder / name, self._shown.get(name, str(self.folder / name)))

    def check(self, name: str, where: str, *, label: str, rule: str, missing: str) -> None:
        err = not_plain(name, where, label=label, rule=rule)
        if err is not None:
            raise err
        target = self.folder / name
        try:
            resolved = target.resolve(strict=True)
        except FileNotFoundError:
            raise MalformedFileError(missing.format(name=name), path=where, rule=rule) from None
        except (OSError, RuntimeError) as exc:
            raise MalformedFileError(f"{label} {name!r} cannot be resolved ({exc})", path=where, rule=rule) from None
        if not resolved.is_relative_to(self.folder.resolve()):
            raise MalformedFileError(f"{label} {name!r} leads outside the model folder", path=where, rule=rule)

    def bytes_read(self) -> int:
        return 0


def read_source(src: ByteSource, filename: str, rel: str) -> FileScan:
    """Detect and read one file from any byte source (`filename` serves the extension fallback).

    What the file really is comes first (`identify`: empty, a Git LFS pointer, an HTML or JSON page saved under
    a model's name), then magic bytes, then the extension. Every error names the file.
    """
    display = src.name
    head = src.read_at(0, HEAD_BYTES)
    not_model = identify(src, head)
    if not_model is not None:
        raise not_model
    loader = detect(head, src.size, filename)
    if loader is None:
        known = ", ".join(sorted({e for ld in loaders() for e in ld.extensions}))
        raise UnsupportedFormatError(
            f"not a model file this tool reads (no known magic bytes; extensions known: {known})", path=display
        )
    try:
        return loader.read(src, rel)
    except InspectError as exc:
        if exc.path:
            raise
        # A helper below the reader (a dtype table, a size rule) does not know the file: name it here.
        raise type(exc)(exc.message, path=display, rule=exc.rule) from None


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
    unlisted = present.difference(names)
    if unlisted:
        warnings.append(f"{shard} holds {len(unlisted)} tensor(s) the index does not list, e.g. {min(unlisted)!r}")


def combine(
    fmt_hint: str,
    display: str,
    scans: list[Scanned],
    index_file: FileRecord | None,
    config: Mapping[str, Any] | None,
    warnings: list[str],
) -> TensorInventory:
    """One inventory from the scans of a model's files (shards, split parts, or one file)."""
    records: list[TensorRecord] = []
    seen: dict[str, str] = {}
    metadata: dict[str, str] = {}
    details: dict[str, Any] = {}
    torch: TorchInfo | None = None
    header_bytes: int | None = None
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
        if scan.details and not details:  # the first file that has details speaks for the model
            details = dict(scan.details)
        torch = torch or scan.torch
        if scan.header_bytes is not None:
            header_bytes = (header_bytes or 0) + scan.header_bytes
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
    if "_component_prefixes" not in details:  # a single-file diffusion checkpoint names its components
        details.update(single_file_details(records))
    records = apply_packing(records, config, details)  # packed low-bit weights → logical counts (packing.py)
    return build_inventory(
        format=formats[0] if len(formats) == 1 else "+".join(formats) or fmt_hint,
        path=display,
        files=files,
        records=records,
        storage_bytes=storage,
        metadata=metadata,
        config=config,
        warnings=warnings,
        details=details,
        torch=torch,
        header_bytes=header_bytes,
    )


def _read(d: ModelDir, name: str) -> tuple[FileScan, int]:
    with d.open(name) as src:
        return read_source(src, posixpath.basename(name), name), src.size


def read_many(
    d: ModelDir, names: list[str], progress: Progress | None, missing: Callable[[str], InspectError] | None = None
) -> dict[str, tuple[FileScan, int]]:
    """Read several files, at most `d.workers` at a time; the first failure (in `names` order) wins.

    `missing` turns "that file is not there" (a server's 404) into the message the caller's rule wants.
    """
    task = progress.start("reading headers", len(names), "files") if progress is not None and len(names) > 1 else None
    done = 0

    def one(name: str) -> tuple[FileScan, int]:
        nonlocal done
        try:
            got = _read(d, name)
        except NotFoundError:
            if missing is None:
                raise
            raise missing(name) from None
        if task is not None:
            done += 1
            task.advance(done, d.bytes_read())
        return got

    try:
        if len(names) <= 1 or d.workers <= 1:
            return {n: one(n) for n in names}
        from concurrent.futures import ThreadPoolExecutor  # remote folders only: keeps start-up light

        with ThreadPoolExecutor(max_workers=min(d.workers, len(names)), thread_name_prefix="mi-read") as pool:
            futures: list[Future[tuple[FileScan, int]]] = [pool.submit(one, n) for n in names]
            try:
                return {n: f.result() for n, f in zip(names, futures, strict=True)}
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    finally:
        if task is not None:
            task.close()


def _missing(message: str, where: str, rule: str) -> Callable[[str], InspectError]:
    return lambda name: MalformedFileError(message.format(name=name), path=where, rule=rule)


def _load_index(
    d: ModelDir, index: str, display: str, config: Mapping[str, Any] | None, progress: Progress | None
) -> TensorInventory:
    with d.open(index) as src:
        doc = read_json_source(src, "index-json")
        index_size, where = src.size, src.name
    shards, declared = index_shards(doc, where)
    missing = "index names shard {name!r}, which does not exist"
    for shard in shards:
        d.check(shard, where, label="shard", rule="index-shard", missing=missing)
    results = read_many(d, list(shards), progress, _missing(missing, where, "index-shard"))
    warnings: list[str] = []
    scans = []
    for shard, tensor_names in shards.items():
        scan, size = results[shard]
        check_shard(shard, tensor_names, scan, where, warnings)
        scans.append((shard, scan, size))
    inv = combine("index", display, scans, FileRecord(posixpath.basename(index), index_size), config, warnings)
    # total_size in an HF index is the sum of tensor bytes (what save_pretrained writes).
    if declared >= 0 and declared != inv.storage_bytes:
        note = f"index metadata says total_size {declared:,} bytes; the shards hold {inv.storage_bytes:,}"
        return replace(inv, warnings=(*inv.warnings, note))
    return inv


def _load_single(
    d: ModelDir, name: str, display: str, config: Mapping[str, Any] | None, progress: Progress | None
) -> TensorInventory:
    """One model file, or every part of the split GGUF it belongs to."""
    scan, size = _read(d, name)
    missing = "split GGUF part {name} is missing"

    def read_parts(names: list[str]) -> dict[str, tuple[FileScan, int]]:
        for part in names:
            d.check(part, display, label="split GGUF part", rule="gguf-split", missing=missing)
        return read_many(d, names, progress, _missing(missing, display, "gguf-split"))

    return combine(scan.format, display, expand_split(name, scan, size, read_parts, display), None, config, [])


def load_file(
    d: ModelDir, name: str, display: str, progress: Progress | None = None, config: Mapping[str, Any] | None = None
) -> TensorInventory:
    """The model behind one file of `d`: a sharded `*.index.json`, a split GGUF part, or a single file.
    `config` (the config.json beside it, when the caller read one) is used as `load_dir` uses the folder's."""
    if name.endswith(".index.json") or VARIANT_INDEX.search(name):
        return _load_index(d, name, display, config, progress)
    return _load_single(d, name, display, config, progress)


def model_names(names: list[str]) -> list[str]:
    """The names among `names` that a reader claims by extension (raw `.pkl` and `.tar` files are not models)."""
    known = tuple({e for ld in loaders() for e in ld.extensions if e not in (".pkl", ".tar")})
    return sorted(n for n in names if n.lower().endswith(known))


def load_dir(d: ModelDir, progress: Progress | None = None, variant: str | None = None) -> TensorInventory:
    """The model in folder `d`, in the order described at the top of this module, with the folder's other
    model-type files (`unread_files`: size, format by magic bytes, why not read) and one warning naming them.
    `variant` picks a diffusers pipeline's weight variant (`fp16`; by default fp16 files when present)."""
    inv = _load_dir(d, progress, variant)
    names = d.listing()
    tok = read_tokenizer(d, names) if names is not None else None
    if tok is not None:  # the tokenizer beside the weights
        inv = replace(inv, details={**inv.details, "tokenizer": tokenizer_line(tok), "_tokenizer": tok})
    unread = unread_files(d, inv, names) if names is not None else ()
    if not unread:
        return inv
    return replace(inv, unread_files=unread, warnings=(*inv.warnings, unread_warning(unread)))


# Files a trainer writes beside the weights (transformers' Trainer checkpoints).
TRAINER_STATE = re.compile(r"training_args\.bin|optimizer\.pt|scheduler\.pt|scaler\.pt|rng_state(_\d+)?\.pth")
# The names hubs give one model's weights in each format (and their shards).
HUB_WEIGHTS = re.compile(r"(pytorch_model|model|tf_model|flax_model|consolidated|adapter_model)([-.][\w.-]*)?")
_TORCH = ("torch-zip", "torch-legacy", "torchscript", "pickle")


def _family(fmt: str | None, name: str) -> str:
    if fmt is None:
        ext = posixpath.splitext(name.lower())[1]
        fmt = {".safetensors": "safetensors", ".gguf": "gguf", ".onnx": "onnx"}.get(ext, "torch-zip")
    return "torch" if fmt in _TORCH else fmt


def _peek(d: ModelDir, name: str) -> tuple[int, str | None]:
    """Size and format (by magic bytes only, None when unknown or unopenable) of a file that is not read."""
    try:
        with d.open(name) as src:
            head = src.read_at(0, HEAD_BYTES)
            found = [ld.name for ld in loaders() if ld.sniff(head, src.size)]
            return src.size, found[0] if found else None
    except (InspectError, OSError):
        return 0, None


def unread_files(d: ModelDir, inv: TensorInventory, names: list[str]) -> tuple[UnreadFile, ...]:
    """The files of `names` a reader claims by extension that `inv` was not read from, and why."""
    read = {f.path for f in inv.files}
    known = tuple({e for ld in loaders() for e in ld.extensions})
    left = [n for n in names if n.lower().endswith(known) and n not in read]
    if not left:
        return ()
    if d.workers > 1 and len(left) > 1:
        from concurrent.futures import ThreadPoolExecutor  # remote folders only: keeps start-up light

        with ThreadPoolExecutor(max_workers=min(d.workers, len(left)), thread_name_prefix="mi-peek") as pool:
            peeked = list(pool.map(lambda n: _peek(d, n), left))
    else:
        peeked = [_peek(d, n) for n in left]
    weights = [f.path for f in inv.files if not f.path.endswith(".json")]
    index = next((f.path for f in inv.files if f.path.endswith(".index.json")), None)
    if index is not None or len(weights) == 1:
        chosen = f"{index or weights[0]} is preferred"
    else:
        chosen = f"the {len(weights)} {posixpath.splitext(weights[0])[1]} files are preferred"
    families = {_family(part, "") for part in inv.format.split("+")}
    out = []
    for name, (size, fmt) in zip(left, peeked, strict=True):
        if TRAINER_STATE.fullmatch(name):
            reason = "training state, not model weights"
        elif name.lower().endswith((".pkl", ".tar")):
            reason = "a raw pickle or tar archive, not read as a model"
        elif _family(fmt, name) not in families:
            same = "same model in another format" if HUB_WEIGHTS.fullmatch(name) else "another format"
            reason = f"{same}; {chosen}"
        else:
            reason = f"not part of the model read; {chosen}"
        out.append(UnreadFile(name, size, fmt, reason))
    return tuple(out)


def unread_warning(unread: tuple[UnreadFile, ...], shown: int = 3) -> str:
    """One line naming the files not read, grouped by reason: `also here, not read: a.bin (why); …`."""
    by_reason: dict[str, list[str]] = {}
    for u in unread:
        by_reason.setdefault(u.reason, []).append(u.path)
    parts = []
    for reason, names in by_reason.items():
        listed = ", ".join(names[:shown]) + (f" and {len(names) - shown:,} more" if len(names) > shown else "")
        parts.append(f"{listed} ({reason})")
    return "also here, not read: " + "; ".join(parts)


def _load_dir(d: ModelDir, progress: Progress | None = None, variant: str | None = None) -> TensorInventory:
    display = d.display
    names = d.listing()
    listed = set(names) if names is not None else None
    has: Callable[[str], bool] = (lambda n: n in listed) if listed is not None else d.exists
    if has(MODEL_INDEX):  # a diffusers pipeline: one model of several component folders
        return load_pipeline(
            d, progress, load_file=load_file, combine=combine, unread_files=unread_files, variant=variant
        )
    if variant is not None:
        raise UsageError("--variant picks the weights of a diffusers pipeline (a folder with model_index.json)",
                         path=display, rule="options")  # fmt: skip
    if has(ADAPTER_CONFIG):  # a PEFT adapter, not a model
        return load_adapter(d, progress, load_file=load_file)
    config: Mapping[str, Any] | None = None
    if has("config.json"):
        with d.open("config.json") as src:
            doc = read_json_source(src, "config-json")
        config = doc if isinstance(doc, dict) else None
    if has("saved_model.pb") and d.exists("variables/variables.index"):  # a TF SavedModel: its variables' index
        return _load_single(d, "variables/variables.index", display, config, progress)
    for base in PREFERRED:
        index = f"{base}.index.json"
        if has(index):
            return _load_index(d, index, display, config, progress)
        if has(base):
            scan, size = _read(d, base)
            return combine(scan.format, display, [(base, scan, size)], None, config, [])
    if names is None:
        raise NotFoundError(
            "no model.safetensors[.index.json] or pytorch_model.bin[.index.json] here, and a plain HTTP folder "
            "cannot be listed: name the model file in the URL",
            path=display,
        )
    candidates = model_names(names)
    # An OpenVINO IR is its .xml: the .bin beside it holds the constants' bytes, not another model.
    candidates = [c for c in candidates if not (c.endswith(".bin") and f"{c[:-4]}.xml" in candidates)]
    safetensors = [c for c in candidates if c.endswith(".safetensors")]
    chosen = safetensors if safetensors else candidates
    if not chosen:
        raise NotFoundError("folder holds no model file (.safetensors, .bin, .pth, .pt, .ckpt …)", path=display)
    if len(chosen) > 1 and not safetensors:
        first = one_split_set(chosen)
        if first is not None:  # a split GGUF: its parts make one model
            return _load_single(d, first, display, config, progress)
        raise UnsupportedFormatError(
            f"folder holds {len(chosen)} model files and no index; name one of: " + ", ".join(chosen[:6]),
            path=display,
        )
    if len(chosen) == 1:
        return _load_single(d, chosen[0], display, config, progress)
    warnings = [f"no index file: read all {len(chosen)} .safetensors files as shards of one model"]
    results = read_many(d, chosen, progress)
    scans = [(c, *results[c]) for c in chosen]
    return combine(scans[0][1].format, display, scans, None, config, warnings)


__all__ = [
    "Loader",
    "LocalDir",
    "ModelDir",
    "check_shard",
    "combine",
    "index_shards",
    "load_dir",
    "load_file",
    "not_plain",
    "read_json_source",
    "read_many",
    "read_source",
    "unread_files",
    "unread_warning",
]
