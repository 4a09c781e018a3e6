"""safetensors reader: 8-byte little-endian header length, a JSON header, then the data buffer.

Header only; validation in the order of the reference implementation (safetensors `Metadata::validate`,
https://github.com/huggingface/safetensors): header length within the file and ≤ 100 MB, JSON object,
`__metadata__` str→str, every tensor entry with known dtype / shape / data_offsets, offsets contiguous
from 0 without overlap or gap, `end - begin == nbytes`, the last offset equal to the buffer size.
Duplicate keys (which the reference tolerates, keeping the last) are rejected here: two tensors with one
name cannot both be loaded.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from ..dtypes import lookup
from ..errors import MalformedFileError
from ..inventory import TensorRecord
from .base import FileScan
from .buffers import buffer_note, is_known_buffer
from .identify import truncated
from .source import ByteSource

MAX_HEADER = 100_000_000  # the reference implementation's limit
MAX_NUMEL = 1 << 62


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _reject_constant(name: str) -> None:
    raise ValueError(f"non-standard JSON number {name}")


class SafetensorsLoader:
    """Reads `.safetensors` headers without touching tensor data."""

    name: str = "safetensors"
    extensions: tuple[str, ...] = (".safetensors",)

    def sniff(self, head: bytes, size: int) -> bool:
        if len(head) < 9:
            return False
        (n,) = struct.unpack("<Q", head[:8])
        return 2 <= n <= size - 8 and head[8:9] == b"{"

    def read(self, src: ByteSource, rel: str) -> FileScan:
        where = src.name

        def bad(msg: str, rule: str) -> MalformedFileError:
            return MalformedFileError(msg, path=where, rule=rule)

        if src.size < 8:
            raise bad(f"file is {src.size} bytes, too short for the 8-byte header length", "header-size")
        (n,) = struct.unpack("<Q", src.read_exact(0, 8, "header length"))
        if n > MAX_HEADER:
            raise bad(f"header length {n:,} exceeds the 100 MB limit", "header-size")
        if n > src.size - 8:
            if src.read_at(8, 1) == b"{":  # a real header, cut short: the download stopped inside it
                raise truncated(where, 8 + n, src.size, "the header length")
            raise bad(f"header length {n:,} runs past the end of the {src.size:,}-byte file", "header-size")
        raw = src.read_exact(8, n, "header")
        try:
            header = json.loads(
                raw.decode("utf-8"), object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
            )
        except UnicodeDecodeError:
            raise bad("header is not UTF-8", "header-json") from None
        except RecursionError:
            raise bad("header JSON is nested too deeply", "header-json") from None
        except ValueError as exc:
            raise bad(f"header is not valid JSON ({exc})", "header-json") from None
        if not isinstance(header, dict):
            raise bad(f"header is a JSON {type(header).__name__}, not an object", "header-json")

        metadata: dict[str, str] = {}
        meta = header.pop("__metadata__", None)
        if meta is not None:
            if not isinstance(meta, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in meta.items()
            ):
                raise bad("__metadata__ must map strings to strings", "metadata")
            metadata = meta

        data_start = 8 + n
        buffer_size = src.size - data_start
        entries: list[tuple[int, int, str, str, tuple[int, ...], int, int]] = []
        for name, info in header.items():
            if not isinstance(info, dict):
                raise bad(f"entry {name!r} is not an object", "tensor-entry")
            dtype_s, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
            if not isinstance(dtype_s, str):
                raise bad(f"tensor {name!r} has no dtype", "tensor-entry")
            try:
                dt = lookup(dtype_s)
            except MalformedFileError:
                raise bad(f"tensor {name!r} has unknown dtype {dtype_s!r}", "dtype-known") from None
            if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
                raise bad(f"tensor {name!r} shape must be a list of non-negative integers", "tensor-entry")
            if (
                not isinstance(offsets, list)
                or len(offsets) != 2
                or not all(type(o) is int and o >= 0 for o in offsets)
            ):
                raise bad(f"tensor {name!r} data_offsets must be [begin, end]", "tensor-entry")
            numel = 1
            for d in shape:
                numel *= d
                if numel > MAX_NUMEL:
                    raise bad(f"tensor {name!r} shape {shape} overflows", "shape-overflow")
            if (numel * dt.bits) % 8:
                raise bad(f"tensor {name!r}: {numel} × {dt.bits} bits is not whole bytes", "dtype-size")
            entries.append((offsets[0], offsets[1], name, dt.name, tuple(shape), numel, numel * dt.bits // 8))

        # Offsets must tile the buffer exactly, in order (reference: InvalidOffset / MetadataIncompleteBuffer).
        entries.sort(key=lambda e: (e[0], e[1]))
        expected = 0
        for begin, end, name, _dt, _shape, _numel, nbytes in entries:
            if begin != expected:
                rule_msg = "overlaps the previous tensor" if begin < expected else "leaves a gap before it"
                raise bad(f"tensor {name!r} starts at {begin:,} and {rule_msg} (expected {expected:,})", "offsets")
            if end < begin:
                raise bad(f"tensor {name!r} ends before it begins", "offsets")
            if end - begin != nbytes:
                raise bad(
                    f"tensor {name!r} spans {end - begin:,} bytes but its dtype and shape need {nbytes:,}",
                    "nbytes",
                )
            expected = end
        if expected > buffer_size:
            # The offsets tile the buffer without gaps (checked above), so the data stops early: a cut download.
            raise truncated(where, data_start + expected, src.size)
        warnings: list[str] = []
        if expected < buffer_size:
            # The reference refuses this (MetadataIncompleteBuffer); we read on but say so.
            warnings.append(f"{rel}: {buffer_size - expected:,} bytes after the last tensor are not described")

        # Records in header order (the order writers use), storage = the file + the tensor's own offset.
        order = {name: i for i, name in enumerate(header)}
        entries.sort(key=lambda e: order[e[2]])
        records = [
            TensorRecord(
                name=name,
                shape=shape,
                dtype=dt_name,
                numel=numel,
                nbytes=nbytes,
                storage=f"{rel}@{data_start + begin}",
                offset=0,
                file=rel,
                section="buffers" if is_known_buffer(name, dt_name, shape) else "model",
                kind="buffer" if is_known_buffer(name, dt_name, shape) else "param",
            )
            for begin, _end, name, dt_name, shape, numel, nbytes in entries
        ]
        buffers = [r.name for r in records if r.section == "buffers"]
        return FileScan(
            format="safetensors",
            records=records,
            storage_bytes=expected,
            metadata=metadata,
            warnings=warnings,
            details={"buffers": buffer_note(buffers)} if buffers else {},
            header_bytes=n,
        )
