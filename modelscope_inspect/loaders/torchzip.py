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

from ..errors import LimitExceededError, MalformedFileError, UnsupportedFormatError
from ..inventory import TensorRecord
from .base import FileScan
from .pickle_walk import walk
from .source import ByteSource, SourceIO
from .torch_pickle import collect, describe, spec_record, storage_nbytes, vet_pickle

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
    zlib allocates each call's output up front, so one call with max_length = cap would reserve it all."""
    where = src.name
    inflater = zlib.decompressobj(-15)
    parts: list[bytes] = []
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
            parts.append(out)
    except zlib.error as exc:
        raise MalformedFileError(f"{info.filename} does not inflate: {exc}", path=where, rule="zip-structure") from None
    return b"".join(parts)


def open_zip(src: ByteSource) -> list[zipfile.ZipInfo]:
    """The central directory, or a `MalformedFileError` (rule `zip-structure`)."""
    try:
        with zipfile.ZipFile(SourceIO(src)) as zf:
            return zf.infolist()
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        ValueError,
        EOFError,
        struct.error,
        NotImplementedError,  # "zip file version 12.6": a corrupted version field
        OverflowError,  # offsets beyond what a seek accepts
    ) as exc:
        raise MalformedFileError(f"not a readable zip archive ({exc})", path=src.name, rule="zip-structure") from None


class TorchZipLoader:
    """Reads `torch.save` zip archives (.pth .pt .bin .ckpt) through the restricted pickle walk."""

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
            raise MalformedFileError(
                f"zip archive has no {prefix}data.pkl: not a torch.save checkpoint", path=where, rule="zip-data-pkl"
            )
        data = read_member(src, pkl_info)
        result = walk(data, where=f"{where}:{pkl_info.filename}")
        stubs = vet_pickle(result, where)
        col = collect(result.value, where)

        records: list[TensorRecord] = []
        storages: dict[str, int] = {}
        for spec in col.specs:
            st = spec.storage
            storage_bytes = storage_nbytes(st)
            member = members.get(f"{prefix}data/{st.key}".lower())
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
            storages[st.key] = storage_bytes
            records.append(spec_record(spec, rel, where, storage_bytes, "storage-bounds"))
        torch, details, warnings = describe(
            col, stubs, archive_folder=folder, pickle_bytes=len(data), pickle_protocol=result.protocol
        )
        # torch.load ignores these; say so, because they are where payloads hide (`mi scan` reads them all).
        if result.end < len(data):
            warnings.append(f"{pkl_info.filename} has {len(data) - result.end:,} bytes after its pickle ends")
        other_pickles = [i.filename for i in infos if i.filename.lower().endswith(".pkl") and i is not pkl_info]
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
