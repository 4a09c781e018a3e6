"""Legacy torch checkpoints (`torch.save(..., _use_new_zipfile_serialization=False)`, torch < 1.6 default).

Layout (torch/serialization.py `_legacy_save`): five pickles in a row — the magic number
0x1950a86a20f9469cfc6c, the protocol version (1001), a sys-info dict (byte order, type sizes), the object
itself (tensors refer to storages through persistent ids `('storage', storage_type, key, location, numel,
view_metadata)`; whole modules also through `('module', cls, source_file, source)`), and the sorted list of
storage keys — then, for each key in that order, an 8-byte little-endian element count and the storage's
bytes. We walk the pickles, then hop over the storage table with the counts (8 bytes read per storage, no
data), checking each count against the persistent id and against the bytes left in the file.

The tar-wrapped variant of torch < 0.4 (members `sys_info`, `pickle`, `tensors`, `storages`) is recognised
and refused with a clear message.
"""

from __future__ import annotations

import struct

from ..errors import LimitExceededError, MalformedFileError, UnsupportedFormatError
from ..inventory import TensorRecord
from .base import FileScan
from .identify import cut_inside, truncated
from .pickle_walk import WalkResult, walk
from .safety import is_safe_global
from .source import ByteSource
from .torch_pickle import (
    collect,
    describe,
    persistent_storages,
    spec_record,
    storage_item_bits,
    storage_nbytes,
    vet_pickle,
)

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
# How the magic number looks as a binary pickle argument (LONG1, 10 bytes) and as protocol 0/1 text.
MAGIC_LONG1 = b"\x8a\x0a" + MAGIC_NUMBER.to_bytes(10, "little")
MAGIC_TEXT = str(MAGIC_NUMBER).encode()
FIRST_READ = 1 << 20
MAX_PICKLE = 1 << 30  # the five pickles together; real files hold a few MB at most (module sources)
COUNT = struct.Struct("<Q")
TAR_MEMBERS = (b"sys_info", b"pickle", b"tensors", b"storages")
_RAN_OUT = ("pickle-length", "pickle-text")  # the walk stopped at the end of the bytes read so far


def is_legacy(head: bytes) -> bool:
    """True when `head` starts with the pickled legacy magic number (any pickle protocol)."""
    return MAGIC_LONG1 in head[:24] or (MAGIC_TEXT in head[:40] and head[:1] in (b"L", b"I", b"\x80"))


def is_legacy_tar(head: bytes) -> bool:
    """A tar archive whose first member is one of the legacy torch members (name field, NUL padded)."""
    parts = head[:100].split(b"\0", 1)
    return len(parts) == 2 and parts[0] in TAR_MEMBERS


def _ran_out(message: str) -> bool:
    """True for the walk's errors that mean the bytes ended (not that they are wrong)."""
    return "remain" in message or "no end of line" in message


class _Pickles:
    """Walks consecutive pickles from the start of a source, reading more of the file only when needed."""

    def __init__(self, src: ByteSource, first_read: int = FIRST_READ) -> None:
        self.src = src
        self.data = src.read_at(0, min(src.size, first_read))

    def cut(self, what: str) -> MalformedFileError:
        """The file ends inside one of its five pickles: a download or copy cut short."""
        return cut_inside(self.src.name, f"its {what} pickle", self.src.size)

    def walk(self, start: int, what: str, persistent: bool) -> WalkResult:
        where = f"{self.src.name}:{what}"
        while True:
            complete = len(self.data) >= self.src.size
            try:
                result = walk(self.data, start=start, where=where, persistent=persistent)
            except MalformedFileError as exc:
                if complete and exc.rule in _RAN_OUT and _ran_out(exc.message):
                    raise self.cut(what) from None
                if complete or exc.rule not in _RAN_OUT:
                    raise
                result = None
            # A cut inside the pickle; a global outside the allowlist before the cut is still refused by the reader.
            if result is not None and complete and result.error and _ran_out(result.error):
                events = result.events
                if not any(ev.kind == "global" and not is_safe_global(ev.target) for ev in events):
                    raise self.cut(what)
            if result is not None and (complete or not any(f"[{r}]" in (result.error or "") for r in _RAN_OUT)):
                return result
            # Ran off the end of what was read: read twice as much (bounded) and walk again.
            if len(self.data) >= MAX_PICKLE:
                raise LimitExceededError(
                    f"{what} pickle is larger than {MAX_PICKLE:,} bytes", path=self.src.name, rule="legacy-limit"
                )
            size = min(self.src.size, MAX_PICKLE, 2 * len(self.data))
            self.data = self.src.read_at(0, size)


class TorchLegacyLoader:
    """Reads legacy (non-zip) `torch.save` files through the restricted pickle walk."""

    name: str = "torch-legacy"
    extensions: tuple[str, ...] = ()

    def sniff(self, head: bytes, size: int) -> bool:
        return is_legacy(head) or is_legacy_tar(head)

    def read(self, src: ByteSource, rel: str) -> FileScan:
        where = src.name
        head = src.read_at(0, 512)
        if not is_legacy(head) and is_legacy_tar(head) and head[257:262] == b"ustar":
            raise UnsupportedFormatError(
                "tar-wrapped legacy torch checkpoint (torch < 0.4) is not supported, and torch itself reads it "
                "only by running its pickles; ask its publisher for a safetensors or zip-format copy",
                path=where,
            )
        p = _Pickles(src)
        magic = p.walk(0, "magic number", persistent=False)
        if magic.events or magic.value != MAGIC_NUMBER:
            raise MalformedFileError("first pickle is not the torch magic number", path=where, rule="legacy-header")
        proto = p.walk(magic.end, "protocol version", persistent=False)
        if proto.events or proto.value != PROTOCOL_VERSION:
            raise MalformedFileError(
                f"protocol version {proto.value!r} is not {PROTOCOL_VERSION}", path=where, rule="legacy-header"
            )
        sysinfo = p.walk(proto.end, "sys info", persistent=False)
        info = sysinfo.value
        if sysinfo.events or not isinstance(info, dict):
            raise MalformedFileError("third pickle is not the sys-info dict", path=where, rule="legacy-header")
        if info.get("little_endian") is False:
            raise UnsupportedFormatError("big-endian legacy checkpoints are not supported", path=where)
        obj = p.walk(sysinfo.end, "object", persistent=True)
        stubs = vet_pickle(obj, where)
        keys_result = p.walk(obj.end, "storage keys", persistent=False)
        keys = keys_result.value
        if keys_result.events or not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise MalformedFileError("fifth pickle is not the list of storage keys", path=where, rule="legacy-header")
        if len(set(keys)) != len(keys):
            raise MalformedFileError("storage key list has duplicates", path=where, rule="legacy-storage")
        col = collect(obj.value, where)

        # Element width of each storage, from the persistent ids that name it.
        declared: dict[str, tuple[int, int]] = {}  # key → (numel, bits per element)
        for spec in col.specs:
            st = spec.storage
            bits = 8 if st.untyped else storage_item_bits(st.dtype)
            prev = declared.get(st.key)
            if prev is not None and prev != (st.numel, bits):
                raise MalformedFileError(
                    f"storage {st.key!r} is declared twice with different sizes or types",
                    path=where,
                    rule="legacy-storage",
                )
            declared[st.key] = (st.numel, bits)
        missing = [k for k in declared if k not in set(keys)]
        if missing:
            raise MalformedFileError(
                f"tensor storage {missing[0]!r} is not in the file's storage table", path=where, rule="legacy-storage"
            )
        unknown = [k for k in keys if k not in declared]
        if unknown:
            raise MalformedFileError(
                f"storage table lists {unknown[0]!r}, which no tensor uses (raw storages are not supported)",
                path=where,
                rule="legacy-storage",
            )

        # The storage table: an 8-byte element count, then the data; we only read the counts.
        pos = keys_result.end
        declared_end = pos + sum(COUNT.size + numel * bits // 8 for numel, bits in declared.values())
        if declared_end > src.size:  # the pickles are whole, the data stops early: a cut download
            raise truncated(where, declared_end, src.size, "the storage table")
        sizes: dict[str, int] = {}
        offsets: dict[str, int] = {}
        for key in keys:
            raw = src.read_exact(pos, COUNT.size, f"element count of storage {key!r}")
            (count,) = COUNT.unpack(raw)
            numel, bits = declared[key]
            left = src.size - pos - COUNT.size
            if count * bits > left * 8:
                raise MalformedFileError(
                    f"storage {key!r} declares {count:,} elements ({count * bits // 8:,} bytes) but only {left:,} "
                    "bytes are left in the file",
                    path=where,
                    rule="legacy-storage",
                )
            if count != numel:
                raise MalformedFileError(
                    f"storage {key!r} holds {count:,} elements but its tensor header says {numel:,}",
                    path=where,
                    rule="legacy-storage",
                )
            nbytes = count * bits // 8
            offsets[key] = pos + COUNT.size
            sizes[key] = nbytes
            pos += COUNT.size + nbytes
        warnings: list[str] = []
        if pos != src.size:
            warnings.append(f"{src.size - pos:,} bytes after the last storage are not part of the checkpoint")

        records: list[TensorRecord] = []
        for spec in col.specs:
            st = spec.storage
            records.append(spec_record(spec, rel, where, min(sizes[st.key], storage_nbytes(st)), "storage-bounds"))
        torch, details, more = describe(
            col, stubs, pickle_bytes=keys_result.end, pickle_protocol=obj.protocol, storage_offsets=offsets
        )
        warnings += more
        return FileScan(
            format="torch-legacy",
            records=records,
            storage_bytes=sum(sizes.values()),
            warnings=warnings,
            details=details,
            torch=torch,
        )


def cut_storage_table(src: ByteSource, first_read: int = 64 << 10) -> MalformedFileError | None:
    """For a legacy file whose five pickles `mi scan` found clean: the `truncated` error when the storage table
    they declare (each storage's 8-byte count and bytes, from the persistent ids) runs past the end of the file.
    Reads only the pickles (from a small first read, as the scanner does), never a count or the data."""
    p = _Pickles(src, first_read)
    end = 0
    for what, persistent in (("magic number", False), ("protocol version", False), ("sys info", False)):
        end = p.walk(end, what, persistent).end
    obj = p.walk(end, "object", True)
    keys = p.walk(obj.end, "storage keys", False)
    storages = persistent_storages(obj.value, src.name)
    declared = keys.end + sum(COUNT.size + n for n in storages.values())
    return truncated(src.name, declared, src.size, "the storage table") if declared > src.size else None
