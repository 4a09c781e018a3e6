"""A small, bounded reader of the protobuf wire format, streaming over a `ByteSource`.

Protobuf encoding (https://protobuf.dev/programming-guides/encoding/): a message is a sequence of
fields, each a varint *tag* `(field_number << 3) | wire_type` followed by its value:

    wire type 0 VARINT  up to 10 bytes, 7 bits each, little-endian groups
    wire type 1 I64     8 bytes
    wire type 2 LEN     a varint length, then that many bytes (strings, bytes, sub-messages, packed arrays)
    wire type 5 I32     4 bytes
    wire types 3/4 (groups) are deprecated and not used by ONNX; they are refused.

The reader never copies a LEN field's bytes unless the caller asks for them (`read_bytes`, with a cap):
`fields()` yields the offset and length of each LEN field and moves past it, so a 400 MB `raw_data`
field costs one tag and one length. Every length is checked against the bytes left in the enclosing
message before anything is read, varints longer than 10 bytes are refused, and callers bound recursion
with the `depth` they pass down.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

from ..errors import LimitExceededError, MalformedFileError
from .identify import truncated
from .source import ByteSource

VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5
WINDOW = 32 << 10  # bytes fetched per buffer refill: small, because the next read usually follows a big skip
MAX_DEPTH = 100  # the C++ protobuf parser's default recursion limit
MAX_MESSAGE = 2 << 30  # protobuf refuses messages of 2 GiB or more: a longer field is a lie, not a cut file
_HIGH_BYTES = bytes(range(128, 256))


class Field(NamedTuple):
    """One field: for VARINT/I32/I64 `value` is the integer, for LEN it is the payload's offset."""

    number: int
    wire: int
    value: int
    length: int  # payload length for LEN, else 0


_new = tuple.__new__  # builds a Field without NamedTuple's Python-level __new__ (hot path)


class WireReader:
    """Reads protobuf fields from a byte source through a small sliding buffer.

    Example:
        >>> r = WireReader(src)  # doctest: +SKIP
        >>> for f in r.fields(0, src.size, depth=0): ...  # doctest: +SKIP
    """

    def __init__(self, src: ByteSource, what: str = "protobuf") -> None:
        self.src = src
        self.what = what
        self._buf = b""
        self._base = 0  # file offset of _buf[0]
        self.bytes_read = 0  # how much was actually fetched from the source (for tests and benchmarks)

    def bad(self, msg: str, rule: str = "protobuf") -> MalformedFileError:
        return MalformedFileError(msg, path=self.src.name, rule=rule)

    def overflow(self, number: int, pos: int, length: int, end: int, left: int) -> MalformedFileError:
        """A LEN field longer than its message: a cut download when the message runs to the end of the file."""
        if end >= self.src.size and pos + length <= MAX_MESSAGE:
            what = f"{self.what} field {number} at offset {pos:,}"
            return truncated(self.src.name, pos + length, self.src.size, what, at_least=True)
        return self.bad(
            f"field {number} at offset {pos:,} declares {length:,} bytes but only {left:,} are left in its message",
            "protobuf-length",
        )

    def _window(self, pos: int, n: int, end: int) -> tuple[bytes, int]:
        """The buffer and the index of `pos` in it, holding at least min(n, end - pos) bytes from `pos`."""
        i = pos - self._base
        need = min(n, end - pos)
        if i >= 0 and i + need <= len(self._buf):
            return self._buf, i
        data = self.src.read_at(pos, max(need, WINDOW))
        self.bytes_read += len(data)
        if len(data) < need:
            raise truncated(self.src.name, pos + need, self.src.size, f"the {self.what} model", at_least=True)
        self._buf, self._base = data, pos
        return data, 0

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        """Decode one varint at `pos` that must end by `end`; return (value, next position)."""
        buf, i = self._window(pos, 10, end)
        result = shift = 0
        limit = min(len(buf), i + 10, i + (end - pos))
        j = i
        while j < limit:
            b = buf[j]
            result |= (b & 0x7F) << shift
            j += 1
            if b < 0x80:
                return result, pos + (j - i)
            shift += 7
        if j - i >= 10:
            raise self.bad(f"varint at offset {pos:,} is longer than 10 bytes")
        if end >= self.src.size:
            raise truncated(self.src.name, end + 1, self.src.size, f"a varint at offset {pos:,}", at_least=True)
        raise self.bad(f"varint at offset {pos:,} runs past the end of its message (offset {end:,})")

    def fields(self, start: int, end: int, depth: int) -> Iterable[Field]:
        """Every field of the message occupying [start, end), in file order, without reading LEN payloads.

        A message that fits in one buffer is decoded at once into a list (nodes, small tensors: most of a
        graph); a bigger one (the graph, an initializer with its raw_data) is streamed field by field.
        """
        if depth > MAX_DEPTH:
            raise LimitExceededError(
                f"{self.what} nests messages deeper than {MAX_DEPTH} levels", path=self.src.name, rule="protobuf-depth"
            )
        if end > self.src.size:
            raise truncated(self.src.name, end, self.src.size, f"a {self.what} message", at_least=True)
        if end - start <= WINDOW:
            return self._small(start, end)
        return self._stream(start, end)

    def _stream(self, start: int, end: int) -> Iterator[Field]:
        pos = start
        while pos < end:
            i = pos - self._base
            if 0 <= i < len(self._buf) and self._buf[i] < 0x80:  # one-byte tag already buffered
                tag, pos = self._buf[i], pos + 1
            else:
                tag, pos = self.varint(pos, end)
            number, wire = tag >> 3, tag & 7
            if number == 0 or number > 0x1FFFFFFF:
                raise self.bad(f"invalid field number {number} at offset {pos:,}")
            if wire == VARINT:
                value, pos = self.varint(pos, end)
                yield Field(number, wire, value, 0)
            elif wire == LEN:
                i = pos - self._base
                if pos < end and 0 <= i < len(self._buf) and self._buf[i] < 0x80:
                    length, pos = self._buf[i], pos + 1
                else:
                    length, pos = self.varint(pos, end)
                if length > end - pos:
                    raise self.overflow(number, pos, length, end, end - pos)
                yield Field(number, wire, pos, length)
                pos += length
            elif wire in (I32, I64):
                width = 4 if wire == I32 else 8
                if width > end - pos:
                    raise self.bad(f"fixed-width field {number} at offset {pos:,} runs past its message")
                buf, i = self._window(pos, width, end)
                yield Field(number, wire, int.from_bytes(buf[i : i + width], "little"), 0)
                pos += width
            else:
                raise self.bad(f"unsupported wire type {wire} (field {number}) at offset {pos:,}")

    def _small(self, start: int, end: int) -> list[Field]:
        """`fields()` for a message that fits in one buffer: decoded from a local bytes object, 1-byte
        varints inline (nodes and small tensors are most of a graph's fields)."""
        buf, i = self._window(start, end - start, end)
        base = start - i  # file offset of buf[0]
        pos, stop = i, i + (end - start)
        out: list[Field] = []
        add = out.append
        while pos < stop:
            tag = buf[pos]
            if tag < 0x80:
                pos += 1
            else:
                tag, off = self.varint(base + pos, end)
                pos = off - base
            number, wire = tag >> 3, tag & 7
            if number == 0 or number > 0x1FFFFFFF:
                raise self.bad(f"invalid field number {number} at offset {base + pos:,}")
            if wire == VARINT:
                if pos >= stop:
                    raise self.bad(f"varint at offset {base + pos:,} runs past the end of its message")
                value = buf[pos]
                if value < 0x80:
                    pos += 1
                else:
                    value, off = self.varint(base + pos, end)
                    pos = off - base
                add(_new(Field, (number, VARINT, value, 0)))
            elif wire == LEN:
                if pos >= stop:
                    raise self.bad(f"length at offset {base + pos:,} runs past the end of its message")
                length = buf[pos]
                if length < 0x80:
                    pos += 1
                else:
                    length, off = self.varint(base + pos, end)
                    pos = off - base
                if length > stop - pos:
                    raise self.overflow(number, base + pos, length, end, stop - pos)
                add(_new(Field, (number, LEN, base + pos, length)))
                pos += length
            elif wire in (I32, I64):
                width = 4 if wire == I32 else 8
                if width > stop - pos:
                    raise self.bad(f"fixed-width field {number} at offset {base + pos:,} runs past its message")
                add(_new(Field, (number, wire, int.from_bytes(buf[pos : pos + width], "little"), 0)))
                pos += width
            else:
                raise self.bad(f"unsupported wire type {wire} (field {number}) at offset {base + pos:,}")
        return out

    def read_bytes(self, f: Field, cap: int, what: str) -> bytes:
        """The payload of a LEN field, refusing payloads longer than `cap` bytes."""
        if f.wire != LEN:
            raise self.bad(f"{what} is wire type {f.wire}, expected a length-delimited field")
        if f.length > cap:
            raise LimitExceededError(
                f"{what} is {f.length:,} bytes (limit {cap:,})", path=self.src.name, rule="protobuf-limit"
            )
        buf, i = self._window(f.value, f.length, f.value + f.length)
        return buf[i : i + f.length]

    def read_str(self, f: Field, cap: int, what: str) -> str:
        """A LEN field decoded as UTF-8 (invalid bytes replaced, never an error: names are only shown)."""
        return self.read_bytes(f, cap, what).decode("utf-8", "replace")

    def count_varints(self, offset: int, length: int) -> int:
        """How many varints a packed field holds (bytes without the continuation bit), read in chunks."""
        count, pos, end = 0, offset, offset + length
        while pos < end:
            n = min(1 << 20, end - pos)
            chunk = self.src.read_at(pos, n)
            self.bytes_read += len(chunk)
            if len(chunk) != n:
                raise self.bad(f"packed field at offset {offset:,} runs past the end of the file", "truncated")
            count += len(chunk.translate(None, _HIGH_BYTES))
            pos += n
        if length and self.src.read_at(end - 1, 1)[0] & 0x80:
            raise self.bad(f"packed varints at offset {offset:,} end inside a varint")
        return count

    def packed_ints(self, f: Field, cap: int, what: str) -> list[int]:
        """A repeated varint field written packed, at most `cap` values (each value takes ≥ 1 byte)."""
        if f.length > cap * 10:
            raise LimitExceededError(
                f"{what} holds more than {cap:,} values", path=self.src.name, rule="protobuf-limit"
            )
        out: list[int] = []
        pos, end = f.value, f.value + f.length
        while pos < end:
            v, pos = self.varint(pos, end)
            out.append(v)
            if len(out) > cap:
                raise LimitExceededError(
                    f"{what} holds more than {cap:,} values", path=self.src.name, rule="protobuf-limit"
                )
        return out


def signed64(v: int) -> int:
    """A varint-decoded int64 as its signed value (negative int64s are written as 10-byte two's complement)."""
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v
