"""OpenVINO IR: a `.xml` graph whose `Const` layers point into the `.bin` beside it.

Every weight is a `<layer type="Const">` whose `<data>` gives `element_type`, `shape`, `offset` and `size` in the
`.bin`; the `.bin` itself is never opened, so reading costs the XML alone. The tensor is named by its output
port's `names` (the framework's name, `l.weight`), else by the layer's name. Constants that `save_model`
de-duplicated share one offset: they become tied storage, counted once.

The XML is untrusted: it is parsed with expat in pieces (bounded memory), any DOCTYPE or entity declaration is
refused before it can expand (billion laughs, external entities), and its size is capped. For a local IR the
`.bin` is stat'ed (never read): the constants must fit in it, and its size counts toward the model's files.
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path
from typing import Any
from xml.parsers import expat

from ..dtypes import OPENVINO_TYPES, lookup
from ..errors import LimitExceededError, MalformedFileError
from ..inventory import TensorRecord
from .base import FileScan
from .source import ByteSource

MAX_XML = 1 << 30  # an IR of a 70B model is ~30 MB of XML
CHUNK = 1 << 20
MAX_LAYERS = 5_000_000
MAX_NUMEL = 1 << 62


class _Refused(Exception):
    """Raised from an expat handler to stop the parse."""


class _Parse:
    def __init__(self) -> None:
        self.net: dict[str, str] = {}
        self.depth = 0
        self.layer: dict[str, str] | None = None
        self.data: dict[str, str] | None = None
        self.in_output = False
        self.port_names: str | None = None
        self.consts: list[tuple[dict[str, str], dict[str, str], str | None]] = []
        self.ops: dict[str, int] = {}
        self.layers = 0

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        self.depth += 1
        if tag == "net" and self.depth == 1:
            self.net = attrs
        elif tag == "layer" and self.depth == 3:
            self.layers += 1
            if self.layers > MAX_LAYERS:
                raise _Refused(f"more than {MAX_LAYERS:,} layers")
            self.layer, self.data, self.port_names = attrs, None, None
            kind = attrs.get("type", "?")
            self.ops[kind] = self.ops.get(kind, 0) + 1
        elif self.layer is not None and self.depth == 4:
            if tag == "data":
                self.data = attrs
            self.in_output = tag == "output"
        elif self.layer is not None and self.in_output and tag == "port" and self.port_names is None:
            self.port_names = attrs.get("names")

    def end(self, tag: str) -> None:
        if tag == "layer" and self.depth == 3 and self.layer is not None:
            if self.layer.get("type", "").lower() == "const":
                self.consts.append((self.layer, self.data or {}, self.port_names))
            self.layer = None
        elif self.depth == 4:
            self.in_output = False
        self.depth -= 1


def _refuse(what: str) -> Any:
    def handler(*_args: object) -> None:
        raise _Refused(what)

    return handler


def parse_ir(src: ByteSource) -> _Parse:
    """Parse the IR XML with expat: no DTD, no entities, in `CHUNK` pieces."""
    where = src.name
    if src.size > MAX_XML:
        raise LimitExceededError(
            f"{src.size:,} bytes of XML is beyond the {MAX_XML:,}-byte limit", path=where, rule="xml"
        )
    state = _Parse()
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse("a DOCTYPE declaration (entities could expand without bound)")
    parser.EntityDeclHandler = _refuse("an entity declaration")
    parser.ExternalEntityRefHandler = _refuse("an external entity reference")
    parser.StartElementHandler = state.start
    parser.EndElementHandler = state.end
    pos = 0
    try:
        while pos < src.size:
            chunk = src.read_at(pos, CHUNK)
            if not chunk:
                break
            pos += len(chunk)
            parser.Parse(chunk, pos >= src.size)
        if pos < src.size:
            parser.Parse(b"", True)
    except _Refused as exc:
        raise MalformedFileError(f"XML with {exc}: refused", path=where, rule="xml-hardened") from None
    except expat.ExpatError as exc:
        raise MalformedFileError(f"not well-formed XML ({exc})", path=where, rule="xml") from None
    if not state.net:
        raise MalformedFileError("XML without a <net> root: not an OpenVINO IR", path=where, rule="openvino-ir")
    return state


def bin_size(src: ByteSource, bin_name: str) -> int | None:
    """The size of the `.bin` beside a local IR (one `stat`, never read), or None when the IR is not a local
    file or the `.bin` is missing; a `.bin` that is no regular file is refused."""
    p = Path(src.name)
    try:
        if not (p.is_file() and p.stat().st_size == src.size):
            return None
        st = os.stat(p.parent / posixpath.basename(bin_name))
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise MalformedFileError(f"{bin_name} is not a regular file", path=src.name, rule="openvino-bin")
    return st.st_size


def _int(value: str | None, what: str, where: str) -> int:
    try:
        n = int(value or "")
    except ValueError:
        raise MalformedFileError(f"{what} {value!r} is not an integer", path=where, rule="openvino-const") from None
    if n < 0:
        raise MalformedFileError(f"{what} {n} is negative", path=where, rule="openvino-const")
    return n


def _shape(text: str, what: str, where: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    return tuple(_int(p, what, where) for p in parts)


class OpenVinoLoader:
    """Reads OpenVINO IR `.xml` files: the Const layers' element types, shapes and places in the `.bin`."""

    name: str = "openvino"
    extensions: tuple[str, ...] = (".xml",)

    def sniff(self, head: bytes, size: int) -> bool:
        return b"<net " in head or b"<net>" in head

    def read(self, src: ByteSource, rel: str) -> FileScan:
        where = src.name
        ir = parse_ir(src)
        bin_name = posixpath.splitext(rel)[0] + ".bin"
        records: list[TensorRecord] = []
        seen: dict[str, int] = {}
        spans: set[tuple[int, int]] = set()
        for layer, data, port_names in ir.consts:
            label = f"Const {layer.get('name', layer.get('id', '?'))!r}"
            et = data.get("element_type", "")
            canonical = OPENVINO_TYPES.get(et)
            if canonical is None:
                raise MalformedFileError(f"{label} has element type {et!r}, not one this tool knows", path=where,
                                         rule="dtype-known")  # fmt: skip
            dt = lookup(canonical)
            shape = _shape(data.get("shape", ""), f"{label} shape", where)
            offset = _int(data.get("offset"), f"{label} offset", where)
            size = _int(data.get("size"), f"{label} size", where)
            numel = 1
            for d in shape:
                numel *= d
                if numel > MAX_NUMEL:
                    raise MalformedFileError(
                        f"{label} shape {list(shape)} overflows", path=where, rule="shape-overflow"
                    )
            nbytes = (numel * dt.bits + 7) // 8
            if nbytes != size:
                raise MalformedFileError(
                    f"{label}: {list(shape)} of {et} is {nbytes:,} bytes but its size says {size:,}",
                    path=where,
                    rule="openvino-const",
                )
            first = (port_names or "").split(",")[0].strip()
            name = first or layer.get("name") or f"const_{layer.get('id', len(records))}"
            if name in seen:  # two constants named alike (rare): keep both, told apart by layer id
                name = f"{name}#{layer.get('id', len(records))}"
            seen[name] = 1
            spans.add((offset, size))
            records.append(
                TensorRecord(
                    name=name,
                    shape=shape,
                    dtype=dt.name,
                    numel=numel,
                    nbytes=nbytes,
                    storage=f"{bin_name}@{offset}",
                    offset=0,
                    file=bin_name,
                )
            )
        size_on_disk = bin_size(src, bin_name)
        end = max((offset + size for offset, size in spans), default=0)
        if size_on_disk is not None and end > size_on_disk:
            raise MalformedFileError(
                f"constants reach byte {end:,} of {bin_name}, which holds {size_on_disk:,} (cut short?)",
                path=where,
                rule="truncated",
            )
        shown = "missing or not local" if size_on_disk is None else f"{size_on_disk:,} bytes"
        details: dict[str, Any] = {
            "ir version": ir.net.get("version", "?"),
            "layers": f"{ir.layers:,} ({len(ir.consts):,} Const)",
            "weights file": f"{bin_name} ({shown}, not opened)",
        }
        if ir.net.get("name"):
            details["graph"] = ir.net["name"]
        return FileScan(
            format="openvino",
            records=records,
            storage_bytes=sum(size for _offset, size in spans),
            details=details,
            header_bytes=src.size,
            extra_files=[(bin_name, size_on_disk)] if size_on_disk is not None else [],
        )
