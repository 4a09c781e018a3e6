"""`torch.export` archives (`.pt2`, `torch.export.save`): a zip of JSON descriptions and raw weight members.

Layout (torch/export/pt2_archive): `<archive>/archive_format` holds `pt2`; `<archive>/models/<model>.json` is the
serialized graph; `<archive>/data/weights/model_weights_config.json` maps each parameter and buffer name to
its member (`path_name`), whether it is a parameter, and its `tensor_meta` (ScalarType code, sizes, strides,
storage offset); `data/constants/model_constants_config.json` does the same for lifted constants. Weight members
are the tensor's raw bytes; they are only measured against what the metadata declares.

Nothing is executed: no graph is deserialized, no pickle loaded. A weight saved with `use_pickle` (tensor
subclasses) is a `torch.save` pickle that `torch.export.load` would unpickle: its size still comes from the
JSON, and a warning says so (`mi scan` walks the archive's pickles). `sample_inputs/*.pt` members are pickles
too and are named in a warning, never read.
"""

from __future__ import annotations

import json
import zipfile
from typing import Any

from ..dtypes import TORCH_EXPORT_TYPES, lookup
from ..errors import LimitExceededError, MalformedFileError
from ..inventory import TensorRecord
from .base import FileScan
from .source import ByteSource

MAX_JSON = 256 << 20
MAX_NUMEL = 1 << 62
WEIGHTS_CONFIG = "data/weights/model_weights_config.json"
CONSTANTS_CONFIG = "data/constants/model_constants_config.json"


def is_pt2(names: list[str]) -> bool:
    """True for the member names of a `torch.export.save` archive."""
    return any(n.endswith("/archive_format") or n == "archive_format" for n in names) and any(
        WEIGHTS_CONFIG in n or "/models/" in n for n in names
    )


def _json(src: ByteSource, info: zipfile.ZipInfo) -> Any:
    from .torchzip import read_member

    if info.file_size > MAX_JSON:
        raise LimitExceededError(f"{info.filename} is {info.file_size:,} bytes", path=src.name, rule="pt2-json")
    raw = read_member(src, info, MAX_JSON)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedFileError(f"{info.filename} is not valid JSON", path=src.name, rule="pt2-json") from None


def _ints(value: Any, what: str, where: str) -> tuple[int, ...]:
    """`[{"as_int": 16}, …]` → (16, …); symbolic sizes (`as_expr`) are not weights a file can hold."""
    if not isinstance(value, list):
        raise MalformedFileError(f"{what} is not a list", path=where, rule="pt2-meta")
    out = []
    for v in value:
        n = v.get("as_int") if isinstance(v, dict) else None
        if type(n) is not int or n < 0:
            raise MalformedFileError(f"{what} holds {v!r}, not a non-negative int", path=where, rule="pt2-meta")
        out.append(n)
    return tuple(out)


def pickle_members(src: ByteSource) -> list[zipfile.ZipInfo]:
    """The members of a `.pt2` that `torch.export.load` unpickles: weights and constants saved with
    `use_pickle`, and sample inputs (each a `torch.save` archive or a raw pickle). What a scan must walk besides
    `*.pkl` members; the caller reads them with `torchzip.read_member`."""
    from .torchzip import open_zip

    infos = open_zip(src)
    by_name = {i.filename: i for i in infos}
    fmt_member = next((i.filename for i in infos if i.filename.endswith("archive_format")), None)
    if fmt_member is None:
        return []
    prefix = fmt_member[: -len("archive_format")]
    out = [i for i in infos if "/sample_inputs/" in f"/{i.filename}"]
    for config_name, folder in ((WEIGHTS_CONFIG, "data/weights/"), (CONSTANTS_CONFIG, "data/constants/")):
        info = by_name.get(prefix + config_name)
        doc = _json(src, info) if info is not None else None
        table = doc.get("config") if isinstance(doc, dict) else None
        for entry in table.values() if isinstance(table, dict) else []:
            if isinstance(entry, dict) and entry.get("use_pickle") and isinstance(entry.get("path_name"), str):
                member = by_name.get(prefix + folder + entry["path_name"])
                if member is not None:
                    out.append(member)
    return out


class TorchExportLoader:
    """Reads `.pt2` archives written by `torch.export.save` through their JSON, never the graph or a pickle."""

    name: str = "torch-export"
    extensions: tuple[str, ...] = (".pt2",)

    def sniff(self, head: bytes, size: int) -> bool:
        if head[:4] != b"PK\x03\x04" or len(head) < 30:
            return False
        n = int.from_bytes(head[26:28], "little")
        first = head[30 : 30 + n]
        return any(part in first for part in (b"/data/weights/", b"/archive_format", b"/data/constants/"))

    def read(self, src: ByteSource, rel: str) -> FileScan:
        from .torchzip import open_zip

        where = src.name
        infos = open_zip(src)
        names = [i.filename for i in infos]
        if not is_pt2(names):
            raise MalformedFileError("zip archive without archive_format and models/: not a .pt2", path=where,
                                     rule="pt2-archive")  # fmt: skip
        by_name = {i.filename: i for i in infos}
        fmt_member = next(n for n in names if n.endswith("archive_format"))
        prefix = fmt_member[: -len("archive_format")]
        records: list[TensorRecord] = []
        warnings: list[str] = []
        pickled: list[str] = []
        storage_bytes = 0
        for config_name, folder, section in (
            (WEIGHTS_CONFIG, "data/weights/", "model"),
            (CONSTANTS_CONFIG, "data/constants/", "constants"),
        ):
            info = by_name.get(prefix + config_name)
            if info is None:
                continue
            doc = _json(src, info)
            table = doc.get("config") if isinstance(doc, dict) else None
            if not isinstance(table, dict):
                raise MalformedFileError(f"{info.filename} has no config object", path=where, rule="pt2-meta")
            for name, entry in table.items():
                rec, nbytes = self._record(src, by_name, prefix + folder, str(name), entry, rel, section)
                if entry.get("use_pickle"):
                    pickled.append(str(name))
                records.append(rec)
                storage_bytes += nbytes
        if pickled:
            warnings.append(
                f"{len(pickled)} weight(s) are stored as pickles that torch.export.load would unpickle "
                f"(e.g. {pickled[0]!r}); not read: sizes come from the JSON. `mi scan` shows what they import"
            )
        samples = [n for n in names if "/sample_inputs/" in n or n.startswith("sample_inputs/")]
        models = [n for n in names if n.startswith(prefix + "models/") and n.endswith(".json")]
        details: dict[str, Any] = {"archive": prefix.rstrip("/") or "(root)", "programs": len(models)}
        if samples:  # torch.save pickles that torch.export.load reads with the archive
            details["sample inputs"] = f"{len(samples)} pickle(s), not read"
        return FileScan(
            format="torch-export",
            records=records,
            storage_bytes=storage_bytes,
            warnings=warnings,
            details=details,
        )

    @staticmethod
    def _record(
        src: ByteSource,
        by_name: dict[str, zipfile.ZipInfo],
        folder: str,
        name: str,
        entry: Any,
        rel: str,
        section: str,
    ) -> tuple[TensorRecord, int]:
        where = src.name
        if not isinstance(entry, dict) or not isinstance(entry.get("tensor_meta"), dict):
            raise MalformedFileError(f"weight {name!r} has no tensor_meta", path=where, rule="pt2-meta")
        meta = entry["tensor_meta"]
        code = meta.get("dtype")
        dtype = TORCH_EXPORT_TYPES.get(code) if type(code) is int else None
        if dtype is None:
            raise MalformedFileError(f"weight {name!r} has unknown dtype code {code!r}", path=where, rule="dtype-known")
        shape = _ints(meta.get("sizes"), f"weight {name!r} sizes", where)
        strides = _ints(meta.get("strides", []), f"weight {name!r} strides", where)
        offset_v = meta.get("storage_offset", {"as_int": 0})
        (offset,) = _ints([offset_v], f"weight {name!r} storage_offset", where)
        numel = 1
        for d in shape:
            numel *= d
            if numel > MAX_NUMEL:
                raise MalformedFileError(f"weight {name!r} shape {list(shape)} overflows", path=where,
                                         rule="shape-overflow")  # fmt: skip
        bits = lookup(dtype).bits
        nbytes = numel * bits // 8
        path_name = entry.get("path_name")
        if not isinstance(path_name, str) or not path_name or "/" in path_name or ".." in path_name:
            raise MalformedFileError(f"weight {name!r} path_name {path_name!r} is not a member name", path=where,
                                     rule="pt2-meta")  # fmt: skip
        member = by_name.get(folder + path_name)
        if member is None:
            raise MalformedFileError(f"weight {name!r} names {folder}{path_name}, which is not in the archive",
                                     path=where, rule="pt2-storage")  # fmt: skip
        if not entry.get("use_pickle"):
            # The member is the storage's raw bytes: the view (offset + strides) must fit in it.
            span = 0 if numel == 0 else (offset + sum((d - 1) * s for d, s in zip(shape, strides, strict=False)) + 1)
            need = span * bits // 8
            if need > member.file_size:
                raise MalformedFileError(
                    f"weight {name!r} needs {need:,} bytes but {member.filename} holds {member.file_size:,}",
                    path=where,
                    rule="pt2-storage",
                )
        kind = "param" if entry.get("is_param") else ("buffer" if section == "model" else "tensor")
        record = TensorRecord(
            name=name,
            shape=shape,
            dtype=dtype,
            numel=numel,
            nbytes=nbytes,
            storage=f"{rel}:{member.filename}",
            offset=offset * bits // 8,
            file=rel,
            stride=strides if len(strides) == len(shape) else None,
            section="buffers" if kind == "buffer" else section,
            kind=kind,
        )
        return record, member.file_size
