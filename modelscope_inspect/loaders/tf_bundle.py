"""TensorFlow checkpoints and SavedModel variables: the tensor-bundle index (`variables/variables.index`,
`model.ckpt-N.index`), read without TensorFlow.

The index is a LevelDB-format table (tensorflow/core/lib/io/table_format.txt): data blocks of prefix-compressed
key/value entries, an index block pointing at them and a 48-byte footer ending in the magic 0xdb4775248b80fb57.
Blocks are stored plain or Snappy-compressed (the trailer's type byte; decompressed here by a bounded decoder).
Key "" holds the `BundleHeaderProto` (shard count, endianness); every other key is a tensor name whose value
is a `BundleEntryProto` (tensorflow/core/protobuf/tensor_bundle.proto): dtype, shape, shard, offset and size
in `variables.data-NNNNN-of-MMMMM`. The data shards are never opened. Tensors of strings and resources (the
object graph TF2 stores as `_CHECKPOINTABLE_OBJECT_GRAPH`) are metadata, not weights: listed in details.

TF2 names carry the object path and a suffix (`layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE`); the
suffix is dropped, and optimizer slots (`…/.OPTIMIZER_SLOT/…`) and the `optimizer/` subtree go to their own
section.
"""

from __future__ import annotations

from typing import Any

from ..dtypes import TF_TYPES, lookup
from ..errors import LimitExceededError, MalformedFileError
from ..inventory import TensorRecord
from .base import FileScan
from .source import ByteSource

MAGIC = 0xDB4775248B80FB57
FOOTER = 48
MAX_BLOCK = 64 << 20  # one table block (TF writes 4 KiB … 1 MiB)
MAX_INDEX = 1 << 30
MAX_ENTRIES = 10_000_000
MAX_NUMEL = 1 << 62
META_TYPES = {7: "string", 20: "resource", 21: "variant"}
SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


class _Bad(Exception):
    """A structural problem, turned into a `MalformedFileError` naming the file."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _Bad("varint runs past its block")
        b = data[pos]
        pos += 1
        out |= (b & 0x7F) << shift
        if b < 0x80:
            return out, pos
        shift += 7


def snappy_decompress(data: bytes, cap: int) -> bytes:
    """Snappy's block format (github.com/google/snappy format_description.txt), refusing output past `cap`."""
    length, pos = _varint(data, 0)
    if length > cap:
        raise _Bad(f"a block declares {length:,} bytes uncompressed, beyond the {cap:,}-byte limit")
    out = bytearray()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            n = tag >> 2
            if n >= 60:
                extra = n - 59
                n = int.from_bytes(data[pos : pos + extra], "little")
                pos += extra
            n += 1
            if pos + n > len(data):
                raise _Bad("snappy literal runs past its block")
            out += data[pos : pos + n]
            pos += n
        else:
            if kind == 1:
                n = ((tag >> 2) & 7) + 4
                off = ((tag >> 5) << 8) | data[pos] if pos < len(data) else -1
                pos += 1
            else:
                width = 2 if kind == 2 else 4
                n = (tag >> 2) + 1
                off = int.from_bytes(data[pos : pos + width], "little")
                pos += width
            if off <= 0 or off > len(out):
                raise _Bad("snappy copy reaches before the start of its output")
            for _ in range(n):  # byte by byte: copies may overlap their own output
                out.append(out[-off])
        if len(out) > length:
            raise _Bad("snappy output is longer than it declares")
    if len(out) != length:
        raise _Bad(f"snappy output is {len(out):,} bytes, not the {length:,} it declares")
    return bytes(out)


def _block(src: ByteSource, offset: int, size: int) -> bytes:
    if size > MAX_BLOCK:
        raise _Bad(f"a block of {size:,} bytes is beyond the {MAX_BLOCK:,}-byte limit")
    if offset < 0 or offset + size + 5 > src.size:
        raise _Bad(f"block at {offset:,} (+{size:,}) runs past the end of the file")
    raw = src.read_exact(offset, size + 5, "table block")
    body, kind = raw[:size], raw[size]
    if kind == 0:
        return body
    if kind == 1:
        return snappy_decompress(body, MAX_BLOCK)
    raise _Bad(f"block compression type {kind} is not one TensorFlow writes")


def _entries(block: bytes) -> list[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise _Bad("block too short for its restart count")
    restarts = int.from_bytes(block[-4:], "little")
    end = len(block) - 4 - 4 * restarts
    if restarts > len(block) // 4 or end < 0:
        raise _Bad(f"block declares {restarts:,} restart points, more than fit")
    out: list[tuple[bytes, bytes]] = []
    key = b""
    pos = 0
    while pos < end:
        shared, pos = _varint(block, pos)
        non_shared, pos = _varint(block, pos)
        vlen, pos = _varint(block, pos)
        if shared > len(key) or pos + non_shared + vlen > end:
            raise _Bad("table entry runs past its block")
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        out.append((key, block[pos : pos + vlen]))
        pos += vlen
        if len(out) > MAX_ENTRIES:
            raise _Bad(f"more than {MAX_ENTRIES:,} entries")
    return out


def _fields(msg: bytes) -> list[tuple[int, int, Any]]:
    """A protobuf message's fields: (number, wire type, int or bytes)."""
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(msg):
        tag, pos = _varint(msg, pos)
        number, wire = tag >> 3, tag & 7
        value: Any
        if wire == 0:
            value, pos = _varint(msg, pos)
        elif wire == 2:
            n, pos = _varint(msg, pos)
            if pos + n > len(msg):
                raise _Bad("protobuf field runs past its entry")
            value, pos = msg[pos : pos + n], pos + n
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if pos + width > len(msg):
                raise _Bad("protobuf field runs past its entry")
            value, pos = int.from_bytes(msg[pos : pos + width], "little"), pos + width
        else:
            raise _Bad(f"protobuf wire type {wire} is not used by BundleEntryProto")
        out.append((number, wire, value))
    return out


def _shape(msg: bytes) -> tuple[int, ...]:
    dims = []
    for number, wire, value in _fields(msg):
        if number == 2 and wire == 2:  # Dim { int64 size = 1; string name = 2; }
            size = next((v for n, w, v in _fields(value) if n == 1 and w == 0), 0)
            if size >= 1 << 63:
                raise _Bad("a dimension is negative (unknown size in a checkpoint)")
            dims.append(size)
        elif number == 3 and value:
            raise _Bad("shape of unknown rank")
    return tuple(dims)


def read_table(src: ByteSource) -> list[tuple[bytes, bytes]]:
    """Every key/value of a LevelDB-format table, in key order."""
    if src.size < FOOTER:
        raise _Bad(f"{src.size} bytes is too short for the 48-byte table footer")
    if src.size > MAX_INDEX:
        raise _Bad(f"{src.size:,} bytes is beyond the {MAX_INDEX:,}-byte limit for an index")
    footer = src.read_exact(src.size - FOOTER, FOOTER, "table footer")
    if int.from_bytes(footer[-8:], "little") != MAGIC:
        raise _Bad("no table magic at the end: not a TensorFlow checkpoint index")
    _meta_off, pos = _varint(footer, 0)
    _meta_size, pos = _varint(footer, pos)
    index_off, pos = _varint(footer, pos)
    index_size, pos = _varint(footer, pos)
    out: list[tuple[bytes, bytes]] = []
    for _key, handle in _entries(_block(src, index_off, index_size)):
        off, at = _varint(handle, 0)
        size, _ = _varint(handle, at)
        out.extend(_entries(_block(src, off, size)))
        if len(out) > MAX_ENTRIES:
            raise _Bad(f"more than {MAX_ENTRIES:,} entries")
    return out


def _section(name: str) -> tuple[str, str]:
    """(shown name, section) of a checkpoint key."""
    shown = name.removesuffix(SUFFIX)
    if "/.OPTIMIZER_SLOT/" in name or shown.startswith("optimizer/"):
        return shown, "optimizer"
    if shown in ("global_step", "save_counter") or shown.endswith("/save_counter"):
        return shown, "counters"
    return shown, "model"


class TfBundleLoader:
    """Reads TensorFlow tensor-bundle indexes (`variables.index`, `*.ckpt*.index`), never the data shards."""

    name: str = "tf-bundle"
    extensions: tuple[str, ...] = (".index",)

    def sniff(self, head: bytes, size: int) -> bool:
        return False  # the magic is in the footer: chosen by extension

    def read(self, src: ByteSource, rel: str) -> FileScan:
        where = src.name
        try:
            return self._read(src, rel)
        except _Bad as exc:
            raise MalformedFileError(str(exc), path=where, rule="tf-bundle") from None
        except RecursionError:
            raise LimitExceededError("nested too deeply", path=where, rule="tf-bundle") from None

    def _read(self, src: ByteSource, rel: str) -> FileScan:
        entries = read_table(src)
        data_prefix = rel[: -len(".index")] if rel.endswith(".index") else rel
        shards = 1
        records: list[TensorRecord] = []
        meta: list[str] = []
        total = 0
        for key, value in entries:
            if key == b"":
                shards = next((v for n, w, v in _fields(value) if n == 1 and w == 0), 1)
                continue
            name = key.decode("utf-8", "replace")
            f = {n: v for n, _w, v in _fields(value)}
            if 7 in f:
                raise _Bad(f"tensor {name!r} is saved as slices (partitioned variables are not read)")
            code = int(f.get(1, 0))
            if code % 100 in META_TYPES:
                meta.append(name)
                continue
            canonical = TF_TYPES.get(code % 100)
            if canonical is None:
                raise _Bad(f"tensor {name!r} has TensorFlow dtype code {code}, not one this tool knows")
            shape = _shape(f.get(2, b""))
            numel = 1
            for d in shape:
                numel *= d
                if numel > MAX_NUMEL:
                    raise _Bad(f"tensor {name!r} shape {list(shape)} overflows")
            nbytes = numel * lookup(canonical).bits // 8
            size = int(f.get(5, 0))
            if size != nbytes:
                raise _Bad(
                    f"tensor {name!r}: {list(shape)} of {canonical} is {nbytes:,} bytes but its entry says {size:,}"
                )
            shard = int(f.get(3, 0))
            offset = int(f.get(4, 0))
            data_file = f"{data_prefix}.data-{shard:05d}-of-{shards:05d}"
            shown, section = _section(name)
            total += nbytes
            records.append(
                TensorRecord(
                    name=shown,
                    shape=shape,
                    dtype=canonical,
                    numel=numel,
                    nbytes=nbytes,
                    storage=f"{data_file}@{offset}",
                    offset=0,
                    file=data_file,
                    section=section,
                )
            )
        details: dict[str, Any] = {"data shards": f"{shards} (not opened)"}
        if meta:
            details["metadata tensors"] = f"{len(meta)} ({', '.join(meta[:2])}{', …' if len(meta) > 2 else ''})"
        return FileScan(
            format="tf-bundle", records=records, storage_bytes=total, details=details, header_bytes=src.size
        )
