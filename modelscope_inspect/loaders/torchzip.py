"""torch zip checkpoints (`torch.save` since 1.6): `<folder>/data.pkl` plus one member per storage.

We follow torch's own view of the container (caffe2/serialize/inline_container.cc), because attackers use
the differences: the archive folder is taken from the first central-directory entry, member names are
matched case-insensitively, and CRCs are not checked. Only `data.pkl` is read, straight from its local
header (stored or deflated, with a cap on the inflated size); storage members are only measured.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import LimitExceededError, MalformedFileError, UnsupportedFormatError
from ..inventory import TensorRecord
from .base import FileScan
from .identify import cut_inside, truncated
from .pickle_walk import walk
from .source import ByteSource, SourceIO
from .torch_pickle import collect, describe, persistent_storages, spec_record, storage_nbytes, vet_pickle
from .torchscript import MAX_CODE_FILE, MAX_CODE_TOTAL, ScriptClass, code_members, is_torchscript, parse_classes
from .torchscript import NOTE as TORCHSCRIPT_NOTE

if TYPE_CHECKING:
    from .keras import KerasLoader
    from .torch_export import TorchExportLoader

MAX_PICKLE = 256 << 20  # data.pkl of a 70B state_dict is ~200 KB; whole-module pickles a few MB
INFLATE_STEP = 1 << 20  # output produced per zlib call, so memory grows by small steps up to the cap
MAX_RATIO = 20  # a deflated member may inflate to 20× its compressed size (pickles compress 3-10×) …
MIN_INFLATE_CAP = 64 << 20  # … or to 64 MiB, whichever is larger; more is a zip bomb
ZIP_MAGIC = b"PK\x03\x04"
LOCAL_HEADER = struct.Struct("<4s5H3I2H")  # signature, version, flags, method, time, date, crc, csize, usize, n, m


def member_start(src: ByteSource, info: zipfile.ZipInfo) -> int:
    """Where a zip member's (stored or compressed) bytes begin, from its local header, checked to fit the file."""
    where = src.name
    if not 0 <= info.header_offset <= src.size - LOCAL_HEADER.size:
        raise MalformedFileError(
            f"member {info.filename} has its local header at byte {info.header_offset:,}, outside the file",
            path=where,
            rule="zip-structure",
        )
    hdr = src.read_exact(info.header_offset, LOCAL_HEADER.size, f"local header of {info.filename}")
    sig, _ver, _flags, _method, _t, _d, _crc, _cs, _us, n_name, n_extra = LOCAL_HEADER.unpack(hdr)
    if sig != ZIP_MAGIC:
        raise MalformedFileError(f"member {info.filename} has no local header", path=where, rule="zip-structure")
    start: int = info.header_offset + LOCAL_HEADER.size + n_name + n_extra
    if info.compress_size > src.size - start:
        raise MalformedFileError(
            f"member {info.filename} claims {info.compress_size:,} bytes past the end of the file",
            path=where,
            rule="zip-structure",
        )
    return start


def read_member(src: ByteSource, info: zipfile.ZipInfo, cap: int | None = None) -> bytes:
    """The bytes of one zip member, read from its local header; refuses members inflating past `cap`."""
    cap = MAX_PICKLE if cap is None else cap
    where = src.name
    start = member_start(src, info)
    if info.compress_type == zipfile.ZIP_STORED:
        if info.compress_size > cap:
            raise LimitExceededError(f"{info.filename} is {info.compress_size:,} bytes", path=where, rule="zip-limit")
        return src.read_exact(start, info.compress_size, info.filename)
    if info.compress_type == zipfile.ZIP_DEFLATED:
        return _inflate(src, info, start, min(cap, max(MIN_INFLATE_CAP, MAX_RATIO * info.compress_size)))
    raise MalformedFileError(
        f"member {info.filename} uses unsupported compression method {info.compress_type}",
        path=where,
        rule="zip-structure",
    )


def _inflate(src: ByteSource, info: zipfile.ZipInfo, start: int, cap: int) -> bytes:
    """A deflated member, inflated in `INFLATE_STEP` pieces so a zip bomb stops at `cap` with little memory:
    zlib allocates each call's output up front, so one call with max_length = cap would reserve it all.

    Inflated twice: first only counted (each piece dropped), then kept once it is known to fit, so a bomb is
    refused holding one piece (1 MiB), not `cap` bytes of it."""
    _inflate_pass(src, info, start, cap, None)
    parts: list[bytes] = []
    _inflate_pass(src, info, start, cap, parts)
    return b"".join(parts)


def _inflate_pass(src: ByteSource, info: zipfile.ZipInfo, start: int, cap: int, keep: list[bytes] | None) -> None:
    where = src.name
    inflater = zlib.decompressobj(-15)
    total = 0
    pos, end = start, start + info.compress_size
    pending = b""
    try:
        while not inflater.eof:
            if not pending:
                if pos >= end:
                    break
                pending = src.read_at(pos, min(INFLATE_STEP, end - pos))
                pos += len(pending)
                if not pending:
                    break
            out = inflater.decompress(pending, INFLATE_STEP)
            pending = inflater.unconsumed_tail
            total += len(out)
            if total > cap:
                raise LimitExceededError(
                    f"{info.filename} inflates past {cap:,} bytes from {info.compress_size:,} (zip bomb?)",
                    path=where,
                    rule="zip-limit",
                )
            if keep is not None:
                keep.append(out)
    except zlib.error as exc:
        raise MalformedFileError(f"{info.filename} does not inflate: {exc}", path=where, rule="zip-structure") from None


ZIP64_EXTRA = 0x0001
MAX_WALK = 1_000_000  # local headers walked to measure a cut archive


def cut_archive(src: ByteSource) -> MalformedFileError | None:
    """For a zip whose central directory cannot be found: the `truncated` error when its first bytes are intact
    (a download cut short), else None.

    The central directory and its end record sit at the end of a zip, so any cut loses them (torch then says
    "failed finding central directory"). torch writes `data.pkl` first and sizes every member after its data
    (a data descriptor), so local headers cannot be walked; the pickle's persistent ids give each storage's
    bytes instead, a lower bound on the archive's size. Other zips are measured by walking their local headers.
    """
    size = src.size
    hdr = src.read_at(0, LOCAL_HEADER.size)
    if len(hdr) < LOCAL_HEADER.size:
        return cut_inside(src.name, "the first zip header", size)
    _sig, _ver, flags, method, _t, _d, _crc, csize, _usize, n_name, n_extra = LOCAL_HEADER.unpack(hdr)
    name = src.read_at(LOCAL_HEADER.size, n_name).decode("utf-8", "replace")
    start = LOCAL_HEADER.size + n_name + n_extra
    if name.lower().endswith("data.pkl") and method == zipfile.ZIP_STORED:
        data = src.read_at(start, min(max(size - start, 0), MAX_PICKLE))
        try:
            result = walk(data, where=f"{src.name}:{name}")
        except MalformedFileError:
            return cut_inside(src.name, name, size)
        if result.error:
            return cut_inside(src.name, name, size)
        declared = start + result.end + sum(persistent_storages(result.value, src.name).values())
        if declared > size:
            return truncated(src.name, declared, size, f"its pickle {name}", at_least=True)
        return cut_inside(src.name, "the zip central directory", size)
    pos, n = 0, 0
    while n < MAX_WALK:
        if pos >= size:
            return cut_inside(src.name, "the zip central directory", size) if n else None
        hdr = src.read_at(pos, LOCAL_HEADER.size)
        if len(hdr) < LOCAL_HEADER.size:
            return cut_inside(src.name, "a zip header", size) if ZIP_MAGIC.startswith(hdr[:4]) else None
        sig, _ver, flags, _method, _t, _d, _crc, csize, _usize, n_name, n_extra = LOCAL_HEADER.unpack(hdr)
        if sig != ZIP_MAGIC:
            cut = sig == b"PK\x01\x02" and n  # the central directory begins but its end record is missing
            return cut_inside(src.name, "the zip central directory", size) if cut else None
        if flags & 0x08:
            return None  # sizes follow the data: this archive cannot be measured
        if csize == 0xFFFFFFFF:  # zip64: the real size is in the extra field
            extra = src.read_at(pos + LOCAL_HEADER.size + n_name, n_extra)
            at = 0
            while at + 4 <= len(extra):
                tag, length = struct.unpack_from("<HH", extra, at)
                if tag == ZIP64_EXTRA and length >= 16:
                    csize = struct.unpack_from("<Q", extra, at + 12)[0]
                    break
                at += 4 + length
        end = pos + LOCAL_HEADER.size + n_name + n_extra + csize
        n += 1
        if end > size:
            member = src.read_at(pos + LOCAL_HEADER.size, n_name).decode("utf-8", "replace")
            return truncated(src.name, end, size, f"the zip header of {member}", at_least=True)
        pos = end
    return None


def open_zip(src: ByteSource) -> list[zipfile.ZipInfo]:
    """The central directory, or a `MalformedFileError` (rule `zip-structure`; `truncated` for a cut archive)."""
    try:
        with zipfile.ZipFile(SourceIO(src)) as zf:
            return zf.infolist()
    except zipfile.BadZipFile as exc:
        cut = cut_archive(src) if src.read_at(0, 4) == ZIP_MAGIC else None
        if cut is not None:
            raise cut from None
        raise MalformedFileError(f"not a readable zip archive ({exc})", path=src.name, rule="zip-structure") from None
    except (
        zipfile.LargeZipFile,
        OSError,
        ValueError,
        EOFError,
        struct.error,
        NotImplementedError,  # "zip file version 12.6": a corrupted version field
        OverflowError,  # offsets beyond what a seek accepts
    ) as exc:
        raise MalformedFileError(f"not a readable zip archive ({exc})", path=src.name, rule="zip-structure") from None


def _other_zip(infos: list[zipfile.ZipInfo]) -> TorchExportLoader | KerasLoader | None:
    """The reader for a zip that is not a torch.save archive but another registered zip format."""
    from .keras import KERAS_MEMBERS, KerasLoader
    from .torch_export import TorchExportLoader, is_pt2

    names = [i.filename for i in infos]
    if is_pt2(names):
        return TorchExportLoader()
    if set(KERAS_MEMBERS[1:]) <= set(names):
        return KerasLoader()
    return None


class TorchZipLoader:
    """Reads `torch.save` zip archives (.pth .pt .bin .ckpt) and `torch.jit.save` TorchScript archives through
    the restricted pickle walk."""

    @staticmethod
    def _script_classes(src: ByteSource, infos: list[zipfile.ZipInfo], prefix: str) -> dict[str, ScriptClass]:
        """The module classes a TorchScript archive's code declares, read as text (see `torchscript.py`)."""
        classes: dict[str, ScriptClass] = {}
        total = 0
        for info, module in code_members(infos, prefix):
            if info.file_size > MAX_CODE_FILE or total + info.file_size > MAX_CODE_TOTAL:
                raise LimitExceededError(
                    f"TorchScript code {info.filename} is beyond the {MAX_CODE_TOTAL:,}-byte limit",
                    path=src.name,
                    rule="zip-limit",
                )
            total += info.file_size
            text = read_member(src, info, MAX_CODE_FILE).decode("utf-8", "replace")
            classes.update(parse_classes(module, text))
        return classes

    name: str = "torch-zip"
    extensions: tuple[str, ...] = (".pth", ".pt", ".bin", ".ckpt", ".pkl", ".tar")

    def sniff(self, head: bytes, size: int) -> bool:
        return head[:4] == ZIP_MAGIC

    def read(self, src: ByteSource, rel: str) -> FileScan:
        where = src.name
        head = src.read_at(0, 4)
        if head != ZIP_MAGIC:
            # Chosen by extension only (.pkl/.pt/.bin …): say what the file really is.
            if head[:1] == b"\x80":
                raise UnsupportedFormatError(
                    "a raw pickle, not a torch.save checkpoint (no zip container, no legacy torch magic number); "
                    "`mi scan` shows what it would import and call",
                    path=where,
                )
            raise UnsupportedFormatError(
                "not a model file this tool reads (no zip, safetensors, legacy torch, GGUF or ONNX signature)",
                path=where,
            )
        infos = open_zip(src)
        if not infos:
            raise MalformedFileError("zip archive is empty", path=where, rule="zip-structure")
        folder = infos[0].filename.split("/", 1)[0] if "/" in infos[0].filename else ""
        prefix = f"{folder}/".lower() if folder else ""
        members = {i.filename.lower(): i for i in infos}
        pkl_info = members.get(f"{prefix}data.pkl")
        if pkl_info is None:
            other = _other_zip(infos)
            if other is not None:  # a .keras or .pt2 archive whose first member did not say so
                return other.read(src, rel)
            raise MalformedFileError(
                f"zip archive has no {prefix}data.pkl: not a torch.save checkpoint", path=where, rule="zip-data-pkl"
            )
        data = read_member(src, pkl_info)
        result = walk(data, where=f"{where}:{pkl_info.filename}")
        script = is_torchscript(set(members), prefix)
        classes = self._script_classes(src, infos, prefix) if script else None
        stubs = vet_pickle(result, where, torchscript=script)
        col = collect(result.value, where, script=classes)
        specs = [(spec, "data") for spec in col.specs]
        constants_info = members.get(f"{prefix}constants.pkl") if script else None
        if constants_info is not None:
            # The tensors the code names CONSTANTS.c0, c1, …: a tuple pickled like data.pkl, storages in constants/.
            walked = walk(read_member(src, constants_info), where=f"{where}:{constants_info.filename}")
            vet_pickle(walked, where, torchscript=True)
            found = collect(walked.value, where, script=classes).specs
            specs += [
                (replace(c, name=f"CONSTANTS.c{c.name}", section="constants", kind="tensor"), "constants")
                for c in found
            ]

        records: list[TensorRecord] = []
        storages: dict[str, int] = {}
        for spec, folder_name in specs:
            st = spec.storage
            storage_bytes = storage_nbytes(st)
            member = members.get(f"{prefix}{folder_name}/{st.key}".lower())
            if folder_name != "data":  # its own storage keys: constants/0 is not data/0
                spec = replace(spec, storage=replace(st, key=f"{folder_name}/{st.key}"))
            if member is None:
                raise MalformedFileError(
                    f"tensor {spec.name!r} uses storage {st.key!r}, which is not in the archive",
                    path=where,
                    rule="zip-storage",
                )
            if member.file_size < storage_bytes:
                raise MalformedFileError(
                    f"storage {st.key!r} holds {member.file_size:,} bytes but its header claims {storage_bytes:,}",
                    path=where,
                    rule="zip-storage",
                )
            storages[spec.storage.key] = storage_bytes
            records.append(spec_record(spec, rel, where, storage_bytes, "storage-bounds"))
        torch, details, warnings = describe(
            col, [] if script else stubs, archive_folder=folder, pickle_bytes=len(data), pickle_protocol=result.protocol
        )
        if script:
            # Not the whole-object warning: `__torch__` classes are compiled from code/, not imported from Python.
            warnings.insert(0, TORCHSCRIPT_NOTE)
            details["torchscript"] = (
                f"{len(classes or {})} module classes in {len(code_members(infos, prefix))} code files"
            )
            constants = sum(1 for _spec, where_from in specs if where_from == "constants")
            if constants:
                details["constants"] = constants
        # torch.load ignores these; say so, because they are where payloads hide (`mi scan` reads them all).
        if result.end < len(data):
            warnings.append(f"{pkl_info.filename} has {len(data) - result.end:,} bytes after its pickle ends")
        other_pickles = [
            i.filename
            for i in infos
            if i.filename.lower().endswith(".pkl") and i is not pkl_info and i is not constants_info
        ]
        if other_pickles:
            warnings.append(f"archive holds other pickles that were not read: {', '.join(other_pickles[:3])}")
        return FileScan(
            format="torch-zip",
            records=records,
            storage_bytes=sum(storages.values()),
            warnings=warnings,
            details=details,
            torch=torch,
        )
