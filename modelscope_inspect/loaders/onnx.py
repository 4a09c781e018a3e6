"""ONNX reader: tensor metadata from the `ModelProto` protobuf, never the tensor bytes.

Field numbers are those of onnx/onnx.proto (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto):

    ModelProto   1 ir_version · 2 producer_name · 3 producer_version · 7 graph · 8 opset_import · 14 metadata_props
                 25 functions
    GraphProto   1 node · 2 name · 5 initializer · 11 input · 12 output · 15 sparse_initializer
    NodeProto    1 input · 2 output · 3 name · 4 op_type · 5 attribute · 7 domain
    Attribute    1 name · 2 f · 3 i · 4 s · 5 t · 6 g · 7 floats · 8 ints · 9 strings · 11 graphs · 22 sparse_tensor
    TensorProto  1 dims · 2 data_type · 4 float_data · 5 int32_data · 6 string_data · 7 int64_data · 8 name
                 9 raw_data · 10 double_data · 11 uint64_data · 13 external_data · 14 data_location
    SparseTensor 1 values · 2 indices · 3 dims
    ValueInfo    1 name · 2 type → TypeProto 1 tensor_type → 1 elem_type · 2 shape → 1 dim → 1 dim_value · 2 dim_param

The file is walked with `protobuf.WireReader`, which seeks past `raw_data` instead of reading it, so time
and memory follow the number of tensors and nodes, not the file size. Initializers (also those of If/Loop/Scan
subgraphs) are the parameters; `Constant` node tensors go in section "constants"; an `Identity` whose input is
an initializer is reported as an alias. External data is metadata only: locations are checked to stay in the
model's folder (onnx CVE-2022-25882, CVE-2024-27318) and the data files are only stat'ed.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..dtypes import ONNX_DTYPES, lookup
from ..errors import LimitExceededError, MalformedFileError
from ..inventory import TensorRecord
from .base import FileScan
from .protobuf import I32, LEN, VARINT, Field, WireReader, signed64
from .source import ByteSource

MAX_NAME = 64 << 10  # names, op types, domains, metadata values longer than this are not real
MAX_RANK = 64  # numpy's NPY_MAXDIMS
MAX_TENSORS = 1_000_000  # initializers + constants; memory for records stays bounded on hostile files
MAX_SUBGRAPH_NESTING = 32
MAX_OP_TYPES = 10_000
MAX_LISTED_IO = 64
MAX_NUMEL = 1 << 62
EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL


@dataclass(slots=True)
class _Tensor:
    """What one TensorProto says about itself (no data)."""

    name: str = ""
    dims: list[int] = field(default_factory=list)
    data_type: int = 0
    raw: Field | None = None
    float_count: int = 0
    double_count: int = 0
    int32_fields: list[Field] = field(default_factory=list)
    int32_scalars: int = 0
    int64_fields: list[Field] = field(default_factory=list)
    int64_scalars: int = 0
    uint64_count: int = 0
    string_count: int = 0
    string_bytes: int = 0
    external: dict[str, str] = field(default_factory=dict)
    location: int = 0
    start: int = 0
    typed_bytes: int = 0  # bytes of the float_data/int*_data/… payloads


def _shape_str(dtype: str, dims: list[str]) -> str:
    # Parentheses, not brackets: "[batch]" would read as console markup in the rendered header.
    return f"{dtype} ({', '.join(dims)})" if dims else f"{dtype} scalar"


class _Walk:
    """One pass over a ModelProto, collecting records and the facts for `details`."""

    def __init__(self, src: ByteSource, rel: str) -> None:
        self.r = WireReader(src, "ONNX")
        self.src = src
        self.rel = rel
        self.records: list[TensorRecord] = []
        self.by_name: dict[str, TensorRecord] = {}
        self.storage: dict[str, int] = {}
        self.ops: Counter[str] = Counter()
        self.identity: list[tuple[Field, Field]] = []
        self.inputs: dict[str, str] = {}
        self.outputs: dict[str, str] = {}
        self.n_inputs = 0
        self.n_outputs = 0
        self.subgraphs = 0
        self.sparse = 0
        self.warnings: list[str] = []
        self.external: dict[str, dict[str, int]] = {}
        self.external_regions: list[tuple[str, int, int, str]] = []
        self.folder = self._model_folder()
        self._file_sizes: dict[str, int | None] = {}
        self.packed: dict[str, tuple[int, str, list[str]]] = {}  # MatMulNBits B input → (K·N, rule, aux inputs)

    def bad(self, msg: str, rule: str) -> MalformedFileError:
        return MalformedFileError(msg, path=self.src.name, rule=rule)

    def _model_folder(self) -> Path | None:
        # External data is resolved next to the model file, when the source is a local file we can see.
        p = Path(self.src.name)
        try:
            if p.is_file() and p.stat().st_size == self.src.size:
                return p.parent
        except OSError:
            pass
        return None

    # -- model ----------------------------------------------------------------------------------------
    def model(self) -> dict[str, Any]:
        r = self.r
        if self.src.size == 0:
            raise self.bad("file is empty: an ONNX model needs a graph", "onnx-graph")
        details: dict[str, Any] = {}
        opsets: list[str] = []
        producer = ["", ""]
        graph: Field | None = None
        metadata: dict[str, str] = {}
        functions = 0
        for f in r.fields(0, self.src.size, 0):
            if f.number == 1 and f.wire == VARINT:
                details["ir_version"] = signed64(f.value)
            elif f.number in (2, 3) and f.wire == LEN:
                producer[f.number - 2] = r.read_str(f, MAX_NAME, "producer")
            elif f.number == 7 and f.wire == LEN:
                if graph is not None:
                    raise self.bad("model has more than one graph field", "onnx-graph")
                graph = f
            elif f.number == 8 and f.wire == LEN:
                if len(opsets) < 64:
                    opsets.append(self._opset(f))
            elif f.number == 14 and f.wire == LEN:
                key, value = self._string_entry(f, 1)
                if len(metadata) < 1024:
                    metadata[key] = value
            elif f.number == 25 and f.wire == LEN:
                functions += 1
        if graph is None:
            raise self.bad("no graph in the file: not an ONNX model (or an empty ModelProto)", "onnx-graph")
        self.graph(graph, depth=1, nesting=0, top=True)
        self._apply_packed()
        if producer[0] or producer[1]:
            details["producer"] = " ".join(p for p in producer if p)
        if opsets:
            details["opset"] = ", ".join(opsets)
        if functions:
            details["functions"] = functions
        if self.inputs:
            details["inputs"] = self._listed(self.inputs, self.n_inputs)
        if self.outputs:
            details["outputs"] = self._listed(self.outputs, self.n_outputs)
        details["nodes"] = sum(self.ops.values())
        if self.ops:
            details["ops"] = dict(sorted(self.ops.items(), key=lambda kv: (-kv[1], kv[0])))
        details["initializers"] = sum(1 for t in self.records if t.section == "model")
        n_const = sum(1 for t in self.records if t.section == "constants")
        if n_const:
            details["constants"] = n_const
        packed = Counter(r.packing.split(":")[0] for r in self.records if r.packing)
        if packed:
            details["packed weights"] = ", ".join(f"{k} ×{v}" for k, v in packed.most_common())
        self._resolve_aliases(details)
        if self.sparse:
            details["sparse initializers"] = self.sparse
        if self.subgraphs:
            details["subgraphs"] = self.subgraphs
        if self.external:
            details["external data"] = {
                loc: (f"{info['file_bytes']:,} bytes" if "file_bytes" in info else "not found")
                + f", {info['tensors']} tensors, {info['bytes']:,} tensor bytes"
                for loc, info in sorted(self.external.items())
            }
        self._check_external_overlap()
        self.metadata = metadata
        return details

    @staticmethod
    def _listed(items: dict[str, str], total: int) -> dict[str, str]:
        out = dict(items)
        if total > len(items):
            out["…"] = f"{total - len(items)} more"
        return out

    def _opset(self, f: Field) -> str:
        domain, version = "", 0
        for g in self.r.fields(f.value, f.value + f.length, 1):
            if g.number == 1 and g.wire == LEN:
                domain = self.r.read_str(g, MAX_NAME, "opset domain")
            elif g.number == 2 and g.wire == VARINT:
                version = signed64(g.value)
        return f"{domain or 'ai.onnx'} {version}"

    def _string_entry(self, f: Field, depth: int) -> tuple[str, str]:
        key = value = ""
        for g in self.r.fields(f.value, f.value + f.length, depth + 1):
            if g.number == 1 and g.wire == LEN:
                key = self.r.read_str(g, MAX_NAME, "metadata key")
            elif g.number == 2 and g.wire == LEN:
                value = self.r.read_str(g, MAX_NAME, "metadata value")
        return key, value

    # -- graph ----------------------------------------------------------------------------------------
    def graph(self, f: Field, depth: int, nesting: int, top: bool = False) -> None:
        if nesting > MAX_SUBGRAPH_NESTING:
            raise LimitExceededError(
                f"subgraphs nest deeper than {MAX_SUBGRAPH_NESTING} levels", path=self.src.name, rule="onnx-depth"
            )
        io: list[tuple[int, Field]] = []
        for g in self.r.fields(f.value, f.value + f.length, depth):
            if g.wire != LEN:
                continue
            if g.number == 1:
                self.node(g, depth + 1, nesting)
            elif g.number == 5:
                t = self.tensor(g, depth + 1)
                self.add(t, section="model", kind="param")
            elif g.number == 15:
                self.sparse_tensor(g, depth + 1, section="model")
            elif top and g.number in (11, 12):
                io.append((g.number, g))
        if top:
            initializers = set(self.by_name)
            for number, g in io:
                name, desc = self.value_info(g, depth + 1)
                if number == 11:
                    if name in initializers:  # IR < 4 lists initializers among the inputs
                        continue
                    self.n_inputs += 1
                    if len(self.inputs) < MAX_LISTED_IO:
                        self.inputs[name] = desc
                else:
                    self.n_outputs += 1
                    if len(self.outputs) < MAX_LISTED_IO:
                        self.outputs[name] = desc

    def value_info(self, f: Field, depth: int) -> tuple[str, str]:
        r = self.r
        name, desc = "", "?"
        for g in r.fields(f.value, f.value + f.length, depth):
            if g.number == 1 and g.wire == LEN:
                name = r.read_str(g, MAX_NAME, "value name")
            elif g.number == 2 and g.wire == LEN:
                for h in r.fields(g.value, g.value + g.length, depth + 1):
                    if h.number == 1 and h.wire == LEN:  # TypeProto.tensor_type
                        desc = self._tensor_type(h, depth + 2)
                    elif h.wire == LEN and h.number in (4, 5, 8, 9):
                        desc = {4: "sequence", 5: "map", 8: "sparse tensor", 9: "optional"}[h.number]
        return name, desc

    def _tensor_type(self, f: Field, depth: int) -> str:
        r = self.r
        elem, has_shape = 0, False
        dims: list[str] = []
        for g in r.fields(f.value, f.value + f.length, depth):
            if g.number == 1 and g.wire == VARINT:
                elem = g.value
            elif g.number == 2 and g.wire == LEN:
                has_shape = True
                for d in r.fields(g.value, g.value + g.length, depth + 1):
                    if d.number != 1 or d.wire != LEN:
                        continue
                    if len(dims) >= MAX_RANK:
                        raise LimitExceededError(
                            f"a graph input or output has more than {MAX_RANK} dimensions",
                            path=self.src.name,
                            rule="onnx-rank",
                        )
                    text = "?"
                    for v in r.fields(d.value, d.value + d.length, depth + 2):
                        if v.number == 1 and v.wire == VARINT:
                            text = str(signed64(v.value))
                        elif v.number == 2 and v.wire == LEN:
                            text = r.read_str(v, 256, "dimension name")
                    dims.append(text)
        dtype = ONNX_DTYPES.get(elem, f"type{elem}")
        return _shape_str(dtype, dims) if has_shape else f"{dtype} (shape unknown)"

    # -- nodes ----------------------------------------------------------------------------------------
    def node(self, f: Field, depth: int, nesting: int) -> None:
        r = self.r
        op_type, domain = "", ""
        name_field: Field | None = None
        first_in: Field | None = None
        first_out: Field | None = None
        inputs: list[Field] = []
        attrs: list[Field] = []
        for g in r.fields(f.value, f.value + f.length, depth):
            if g.wire != LEN:
                continue
            if g.number == 1:
                if first_in is None:
                    first_in = g
                if len(inputs) < 4:
                    inputs.append(g)
            elif g.number == 2 and first_out is None:
                first_out = g
            elif g.number == 3:
                name_field = g
            elif g.number == 4:
                op_type = r.read_str(g, MAX_NAME, "op_type")
            elif g.number == 7:
                domain = r.read_str(g, MAX_NAME, "node domain")
            elif g.number == 5:
                attrs.append(g)
        key = f"{domain}.{op_type}" if domain and domain != "ai.onnx" else op_type
        if key in self.ops or len(self.ops) < MAX_OP_TYPES:
            self.ops[key] += 1
        else:
            self.ops["(other op types)"] += 1
        is_constant = op_type == "Constant" and domain in ("", "ai.onnx")
        # Names are only decoded when needed (a Constant's label); most nodes cost their op_type alone.
        out_name = r.read_str(first_out, MAX_NAME, "node output") if is_constant and first_out is not None else ""
        name = r.read_str(name_field, MAX_NAME, "node name") if is_constant and name_field is not None else ""
        if op_type == "Identity" and domain in ("", "ai.onnx") and first_in is not None and first_out is not None:
            if len(self.identity) >= MAX_TENSORS:
                raise LimitExceededError(
                    f"more than {MAX_TENSORS:,} Identity nodes", path=self.src.name, rule="onnx-limit"
                )
            self.identity.append((first_in, first_out))
        ints: dict[str, int] = {}
        for a in attrs:
            attr_name, value = self.attribute(
                a, depth + 1, nesting, constant_output=out_name if is_constant else None, node=name
            )
            if value is not None:
                ints[attr_name] = value
        if op_type == "MatMulNBits" and domain == "com.microsoft" and len(inputs) >= 2:
            # onnxruntime contrib op: B is uint8 [N, K / block_size, block_size · bits / 8]; the logical
            # weight is K × N (onnxruntime docs/ContribOperators.md#com.microsoft.MatMulNBits).
            k, n, bits = ints.get("K"), ints.get("N"), ints.get("bits", 4)
            if k is not None and n is not None and len(self.packed) < MAX_TENSORS:
                names = [r.read_str(g, MAX_NAME, "node input") for g in inputs]
                self.packed[names[1]] = (k * n, f"MatMulNBits {bits}-bit: K×N = {k}×{n}", names[2:])

    def attribute(
        self, f: Field, depth: int, nesting: int, constant_output: str | None, node: str
    ) -> tuple[str, int | None]:
        """Walk one attribute (subgraphs included); record a Constant's value; return (name, its int `i`)."""
        r = self.r
        attr_name = ""
        int_value: int | None = None
        tensor: Field | None = None
        sparse: Field | None = None
        scalar: tuple[str, int] | None = None  # (dtype, count) for value_float(s) / value_int(s) / value_string(s)
        floats = ints = strings = 0
        for g in r.fields(f.value, f.value + f.length, depth):
            n, w = g.number, g.wire
            if n == 1 and w == LEN:
                attr_name = r.read_str(g, MAX_NAME, "attribute name")
            elif n == 5 and w == LEN:
                tensor = g
            elif n == 22 and w == LEN:
                sparse = g
            elif n in (6, 11) and w == LEN:  # g (one subgraph) or graphs (a list of them)
                self.subgraphs += 1
                self.graph(g, depth + 1, nesting + 1)
            elif n == 3 and w == VARINT:
                int_value = signed64(g.value)
                if constant_output is not None:
                    scalar = ("i64", 0)
            elif constant_output is not None:
                if n == 2 and w == I32:
                    scalar = ("f32", 0)
                elif n == 4 and w == LEN:
                    scalar = ("string", 0)
                elif n == 7:
                    floats += g.length // 4 if w == LEN else 1
                elif n == 8:
                    ints += r.count_varints(g.value, g.length) if w == LEN else 1
                elif n == 9 and w == LEN:
                    strings += 1
        if constant_output is None:
            return attr_name, int_value
        label = constant_output or node or f"constant@{f.value}"
        if attr_name == "value" and tensor is not None:
            t = self.tensor(tensor, depth + 1)
            t.name = label
            self.add(t, section="constants", kind="constant")
        elif attr_name == "sparse_value" and sparse is not None:
            self.sparse_tensor(sparse, depth + 1, section="constants", name=label)
        elif attr_name in ("value_float", "value_int", "value_string") and scalar is not None:
            self.add_plain(label, scalar[0], [], f.value)
        elif attr_name == "value_floats":
            self.add_plain(label, "f32", [floats], f.value)
        elif attr_name == "value_ints":
            self.add_plain(label, "i64", [ints], f.value)
        elif attr_name == "value_strings":
            self.add_plain(label, "string", [strings], f.value)
        return attr_name, int_value

    def add_plain(self, name: str, dtype: str, dims: list[int], offset: int) -> None:
        numel = dims[0] if dims else 1
        nbytes = 0 if dtype == "string" else numel * lookup(dtype).bits // 8
        self._append(
            TensorRecord(
                name=name,
                shape=tuple(dims),
                dtype=dtype,
                numel=numel,
                nbytes=nbytes,
                storage=f"{self.rel}@{offset}",
                offset=0,
                file=self.rel,
                section="constants",
                kind="constant",
            )
        )
        self.storage[f"{self.rel}@{offset}"] = nbytes

    # -- tensors --------------------------------------------------------------------------------------
    def tensor(self, f: Field, depth: int) -> _Tensor:
        r = self.r
        t = _Tensor(start=f.value)
        for g in r.fields(f.value, f.value + f.length, depth):
            n, w = g.number, g.wire
            if n == 1:
                if w == VARINT:
                    t.dims.append(signed64(g.value))
                elif w == LEN:
                    t.dims.extend(signed64(v) for v in r.packed_ints(g, MAX_RANK, "tensor dims"))
                if len(t.dims) > MAX_RANK:
                    raise LimitExceededError(
                        f"tensor at offset {f.value:,} has more than {MAX_RANK} dimensions",
                        path=self.src.name,
                        rule="onnx-rank",
                    )
            elif n == 2 and w == VARINT:
                t.data_type = g.value
            elif n == 8 and w == LEN:
                t.name = r.read_str(g, MAX_NAME, "tensor name")
            elif n == 9 and w == LEN:
                t.raw = g
            elif n == 4:
                t.float_count += g.length // 4 if w == LEN else 1
                t.typed_bytes += g.length if w == LEN else 4
            elif n == 10:
                t.double_count += g.length // 8 if w == LEN else 1
                t.typed_bytes += g.length if w == LEN else 8
            elif n == 5:
                if w == LEN:
                    t.int32_fields.append(g)
                    t.typed_bytes += g.length
                else:
                    t.int32_scalars += 1
            elif n == 7:
                if w == LEN:
                    t.int64_fields.append(g)
                    t.typed_bytes += g.length
                else:
                    t.int64_scalars += 1
            elif n == 11:
                t.uint64_count += r.count_varints(g.value, g.length) if w == LEN else 1
                t.typed_bytes += g.length if w == LEN else 8
            elif n == 6 and w == LEN:
                t.string_count += 1
                t.string_bytes += g.length
            elif n == 13 and w == LEN:
                key, value = self._string_entry(g, depth)
                if len(t.external) < 16:
                    t.external[key] = value
            elif n == 14 and w == VARINT:
                t.location = g.value
        return t

    def sparse_tensor(self, f: Field, depth: int, section: str, name: str | None = None) -> None:
        r = self.r
        values = indices = None
        dense: list[int] = []
        for g in r.fields(f.value, f.value + f.length, depth):
            if g.number == 1 and g.wire == LEN:
                values = self.tensor(g, depth + 1)
            elif g.number == 2 and g.wire == LEN:
                indices = self.tensor(g, depth + 1)
            elif g.number == 3:
                if g.wire == VARINT:
                    dense.append(signed64(g.value))
                elif g.wire == LEN:
                    dense.extend(signed64(v) for v in r.packed_ints(g, MAX_RANK, "sparse dims"))
        if values is None:
            raise self.bad(f"sparse tensor at offset {f.value:,} has no values", "onnx-tensor")
        self.sparse += 1
        label = name or values.name
        values.name = label
        self.add(values, section=section, kind="sparse values")
        if indices is not None:
            indices.name = f"{label}.indices"
            self.add(indices, section="sparse indices", kind="index")
        if dense:
            self.warnings.append(
                f"sparse tensor {label!r}: dense shape {dense}, {values.dims[0] if values.dims else 0:,} stored values"
            )

    def add(self, t: _Tensor, section: str, kind: str) -> None:
        where = f"tensor {t.name!r}"
        dtype = ONNX_DTYPES.get(t.data_type)
        if dtype is None:
            raise self.bad(f"{where} has unknown or undefined data_type {t.data_type}", "onnx-dtype")
        numel = 1
        for d in t.dims:
            if d < 0:
                raise self.bad(f"{where} has negative dimension {d}", "onnx-shape")
            numel *= d
            if numel > MAX_NUMEL:
                raise self.bad(f"{where} shape {t.dims} overflows", "shape-overflow")
        if dtype == "string":
            nbytes = t.string_bytes
        else:
            nbytes = (numel * lookup(dtype).bits + 7) // 8  # sub-byte types are padded to whole bytes
        self._check_data(t, where, dtype, numel, nbytes)
        if t.location == EXTERNAL:
            storage, offset = self._external(t, where, nbytes)
        elif t.raw is not None:
            storage, offset = f"{self.rel}@{t.raw.value}", 0
        else:
            storage, offset = f"{self.rel}@{t.start}", 0
        self.storage[storage] = max(self.storage.get(storage, 0), nbytes)
        rec = TensorRecord(
            name=t.name,
            shape=tuple(t.dims),
            dtype=dtype,
            numel=numel,
            nbytes=nbytes,
            storage=storage,
            offset=offset,
            file=t.external.get("location", self.rel) if t.location == EXTERNAL else self.rel,
            section=section,
            kind=kind,
        )
        self._append(rec)

    def _append(self, rec: TensorRecord) -> None:
        prev = self.by_name.get(rec.name)
        if prev is not None:
            if (prev.shape, prev.dtype) != (rec.shape, rec.dtype):
                raise self.bad(
                    f"two tensors are named {rec.name!r} with different shapes or types (ONNX names are unique)",
                    "onnx-duplicate",
                )
            self.warnings.append(f"tensor {rec.name!r} is defined twice; counted once")
            return
        if len(self.records) >= MAX_TENSORS:
            raise LimitExceededError(f"more than {MAX_TENSORS:,} tensors", path=self.src.name, rule="onnx-limit")
        self.by_name[rec.name] = rec
        self.records.append(rec)

    def _check_data(self, t: _Tensor, where: str, dtype: str, numel: int, nbytes: int) -> None:
        """The stored data must match dims × data_type (onnx checker: 'data size does not match')."""
        if t.location == EXTERNAL:
            return
        if t.raw is not None:
            if t.raw.length != nbytes:
                raise self.bad(
                    f"{where}: raw_data holds {t.raw.length:,} bytes but {dtype} × {t.dims} needs {nbytes:,}",
                    "onnx-tensor-size",
                )
            return
        per = 2 if dtype in ("c64", "c128") else 1
        checks: list[tuple[int, str]] = []
        if t.float_count:
            checks.append((t.float_count, "float_data"))
        if t.double_count:
            checks.append((t.double_count, "double_data"))
        if dtype == "i64" and (t.int64_fields or t.int64_scalars):
            n = t.int64_scalars + sum(self.r.count_varints(g.value, g.length) for g in t.int64_fields)
            checks.append((n, "int64_data"))
        if dtype == "i32" and (t.int32_fields or t.int32_scalars):
            n = t.int32_scalars + sum(self.r.count_varints(g.value, g.length) for g in t.int32_fields)
            checks.append((n, "int32_data"))
        if dtype == "string" and t.string_count:
            checks.append((t.string_count, "string_data"))
            per = 1
        for count, what in checks:
            if count != numel * per:
                raise self.bad(
                    f"{where}: {what} holds {count:,} values but its dims need {numel * per:,}", "onnx-tensor-size"
                )
        has_data = bool(
            checks or t.int32_fields or t.int32_scalars or t.int64_fields or t.int64_scalars or t.uint64_count
        )
        if numel and not has_data:
            self.warnings.append(f"{where} declares {numel:,} elements but stores no data")

    # -- external data --------------------------------------------------------------------------------
    def _external(self, t: _Tensor, where: str, nbytes: int) -> tuple[str, int]:
        ext = t.external
        location = ext.get("location")
        if not location:
            raise self.bad(f"{where} is stored externally but names no location", "onnx-external")
        if (
            os.path.isabs(location)
            or location.startswith(("/", "\\"))
            or "\\" in location
            or (len(location) > 1 and location[1] == ":")
            or ".." in Path(location).parts
            or "\0" in location
        ):
            raise self.bad(
                f"{where}: external data location {location!r} is not a plain path inside the model's folder "
                "(refused, see onnx CVE-2022-25882)",
                "onnx-external-path",
            )

        def number(key: str) -> int | None:
            text = ext.get(key)
            if text is None:
                return None
            if not text.isdigit() or len(text) > 19:
                raise self.bad(f"{where}: external data {key} {text!r} is not a byte count", "onnx-external")
            return int(text)

        offset = number("offset") or 0
        length = number("length")
        if length is not None and length != nbytes:
            raise self.bad(
                f"{where}: external data length {length:,} does not match the {nbytes:,} bytes its dims and type need",
                "onnx-external-length",
            )
        size = self._external_file_size(location, where)
        if size is not None and offset + nbytes > size:
            raise self.bad(
                f"{where}: external data needs bytes {offset:,}–{offset + nbytes:,} of {location!r}, "
                f"which holds {size:,}",
                "onnx-external-bounds",
            )
        info = self.external.setdefault(location, {"tensors": 0, "bytes": 0})
        info["tensors"] += 1
        info["bytes"] += nbytes
        if size is not None:
            info["file_bytes"] = size
        self.external_regions.append((location, offset, offset + nbytes, t.name))
        return f"{location}@{offset}", 0

    def _external_file_size(self, location: str, where: str) -> int | None:
        if location in self._file_sizes:
            return self._file_sizes[location]
        size: int | None = None
        if self.folder is None:
            if not self._file_sizes:
                self.warnings.append("external data files were not checked: the model is not a local file")
        else:
            target = self.folder / location
            folder = self.folder.resolve()
            try:
                resolved = target.resolve(strict=False)
            except (OSError, RuntimeError) as exc:
                raise self.bad(f"external data {location!r} cannot be resolved ({exc})", "onnx-external-path") from None
            if not resolved.is_relative_to(folder):
                raise self.bad(
                    f"{where}: external data {location!r} leads outside the model's folder (symlink?); refused "
                    "(see onnx CVE-2024-27318)",
                    "onnx-external-path",
                )
            try:
                st = os.stat(resolved)
            except FileNotFoundError:
                self.warnings.append(f"external data file {location!r} is missing; sizes come from the tensor metadata")
            except OSError as exc:
                raise self.bad(f"external data {location!r} cannot be read ({exc})", "onnx-external") from None
            else:
                import stat as _stat

                if not _stat.S_ISREG(st.st_mode):
                    raise self.bad(f"external data {location!r} is not a regular file", "onnx-external-path")
                size = st.st_size
        self._file_sizes[location] = size
        return size

    def _check_external_overlap(self) -> None:
        regions = sorted(self.external_regions)
        for (loc_a, _a0, a1, name_a), (loc_b, b0, b1, name_b) in itertools.pairwise(regions):
            if loc_a == loc_b and b0 < a1 and not (b1 == a1 and b0 == _a0):
                self.warnings.append(f"external tensors {name_a!r} and {name_b!r} overlap in {loc_a!r}")
                return

    def _apply_packed(self) -> None:
        """MatMulNBits weights: logical numel K×N beside the stored uint8 bytes; scales/zero points are aux."""
        if not self.packed:
            return
        aux = {name for _n, _rule, extra in self.packed.values() for name in extra}
        for i, rec in enumerate(self.records):
            hit = self.packed.get(rec.name)
            if hit is not None and rec.section == "model" and hit[0] >= rec.numel:
                self.records[i] = replace(rec, numel=hit[0], packing=hit[1])
            elif rec.name in aux and rec.section == "model":
                self.records[i] = replace(rec, kind="quant_aux")
        self.by_name = {r.name: r for r in self.records}

    # -- aliases --------------------------------------------------------------------------------------
    def _resolve_aliases(self, details: dict[str, Any]) -> None:
        if not self.identity:
            return
        edges: dict[str, str] = {}
        for fin, fout in self.identity:
            edges[self.r.read_str(fout, MAX_NAME, "node output")] = self.r.read_str(fin, MAX_NAME, "node input")
        aliases: dict[str, str] = {}
        for out in edges:
            src, hops = edges[out], 0
            while src in edges and hops < 64:  # Identity chains; bounded against cycles
                src, hops = edges[src], hops + 1
            if src in self.by_name and self.by_name[src].section == "model":
                aliases[out] = src
        if aliases:
            shown = dict(sorted(aliases.items())[:32])
            if len(aliases) > 32:
                shown["…"] = f"{len(aliases) - 32} more"
            details["aliases"] = shown


class OnnxLoader:
    """Reads `.onnx` ModelProto files: initializers, constants, graph inputs/outputs, ops; no tensor bytes."""

    name: str = "onnx"
    extensions: tuple[str, ...] = (".onnx",)

    def sniff(self, head: bytes, size: int) -> bool:
        # onnx writes ir_version (field 1, varint: tag 0x08) first, a small number, then another known field.
        if len(head) < 4 or head[0] != 0x08 or not 1 <= head[1] <= 0x7F:
            return False
        return head[2] in (0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72)

    def read(self, src: ByteSource, rel: str) -> FileScan:
        w = _Walk(src, rel)
        details = w.model()
        return FileScan(
            format="onnx",
            records=w.records,
            storage_bytes=sum(w.storage.values()),
            metadata=w.metadata,
            warnings=w.warnings,
            details=details,
            header_bytes=w.r.bytes_read,
            extra_files=[(loc, info["file_bytes"]) for loc, info in sorted(w.external.items()) if "file_bytes" in info],
        )
