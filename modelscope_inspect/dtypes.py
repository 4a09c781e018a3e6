"""The one dtype table: every element type `mi` knows, by its width in bits.

Sizes are computed from bits (`nbytes = numel * bits // 8`) because sub-byte types (int4, fp4) cannot be
described by a byte size; safetensors moved from byte sizes to bits for the same reason.
Canonical names are short and lower case (`f32`, `bf16`, `f8_e4m3fn`); `lookup` also accepts the
safetensors names (`F32`, `F8_E4M3`), torch names (`torch.float32`, `float`) and numpy-style names.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import MalformedFileError


@dataclass(frozen=True, slots=True)
class DType:
    """One element type. `bits` is the storage width of one element."""

    name: str
    bits: int
    kind: str  # "float", "int", "uint", "bool", "complex", "quant"
    description: str

    def nbytes(self, numel: int) -> int:
        """Bytes taken by `numel` elements; sub-byte types must fill whole bytes."""
        total_bits = numel * self.bits
        if total_bits % 8:
            raise MalformedFileError(
                f"{numel} elements of {self.name} ({self.bits} bits each) do not fill whole bytes",
                rule="dtype-size",
            )
        return total_bits // 8


_TABLE: tuple[DType, ...] = (
    DType("f64", 64, "float", "IEEE float64"),
    DType("f32", 32, "float", "IEEE float32"),
    DType("f16", 16, "float", "IEEE float16"),
    DType("bf16", 16, "float", "bfloat16"),
    DType("f8_e4m3fn", 8, "float", "float8 e4m3 (finite, no inf)"),
    DType("f8_e4m3fnuz", 8, "float", "float8 e4m3 (finite, unsigned zero)"),
    DType("f8_e5m2", 8, "float", "float8 e5m2"),
    DType("f8_e5m2fnuz", 8, "float", "float8 e5m2 (finite, unsigned zero)"),
    DType("f8_e8m0", 8, "float", "float8 e8m0 (scale exponent)"),
    DType("f6_e2m3", 6, "float", "float6 e2m3"),
    DType("f6_e3m2", 6, "float", "float6 e3m2"),
    DType("f4", 4, "float", "float4 e2m1"),
    DType("i64", 64, "int", "signed int64"),
    DType("i32", 32, "int", "signed int32"),
    DType("i16", 16, "int", "signed int16"),
    DType("i8", 8, "int", "signed int8"),
    DType("i4", 4, "int", "signed int4"),
    DType("u64", 64, "uint", "unsigned int64"),
    DType("u32", 32, "uint", "unsigned int32"),
    DType("u16", 16, "uint", "unsigned int16"),
    DType("u8", 8, "uint", "unsigned int8"),
    DType("u4", 4, "uint", "unsigned int4"),
    DType("i2", 2, "int", "signed int2 (ONNX INT2)"),
    DType("u2", 2, "uint", "unsigned int2 (ONNX UINT2)"),
    DType("u1", 1, "uint", "unsigned int1, eight per byte (OpenVINO u1)"),
    DType("nf4", 4, "quant", "NormalFloat4 (OpenVINO nf4)"),
    DType("bool", 8, "bool", "boolean (one byte each)"),
    DType("c32", 32, "complex", "complex of two float16"),
    DType("c64", 64, "complex", "complex of two float32"),
    DType("c128", 128, "complex", "complex of two float64"),
    DType("qint8", 8, "quant", "quantized int8 (torch)"),
    DType("quint8", 8, "quant", "quantized uint8 (torch)"),
    DType("qint32", 32, "quant", "quantized int32 (torch)"),
    # A tensor of these counts the packed values: 8 quint4x2 elements fill 4 bytes (its storage counts bytes).
    DType("quint4x2", 4, "quant", "quantized uint4, two per byte (torch)"),
    DType("quint2x4", 2, "quant", "quantized uint2, four per byte (torch)"),
    # torch's own element types that no other format spells. `bits` is what one element takes in a torch
    # storage (`torch.<dtype>.itemsize * 8`): a float4_e2m1fn_x2 element is a byte holding two fp4 values, and
    # the sub-byte integers int1 … uint7 ("shell" dtypes) take a whole byte each, unlike packed ONNX INT4 (i4).
    DType("f4_e2m1fn_x2", 8, "float", "two float4 e2m1 in one byte (torch.float4_e2m1fn_x2)"),
    DType("bits8", 8, "bits", "8 untyped bits (torch.bits8)"),
    DType("bits16", 16, "bits", "16 untyped bits (torch.bits16)"),
    DType("bits1x8", 8, "bits", "eight 1-bit values in one byte (torch.bits1x8)"),
    DType("bits2x4", 8, "bits", "four 2-bit values in one byte (torch.bits2x4)"),
    DType("bits4x2", 8, "bits", "two 4-bit values in one byte (torch.bits4x2)"),
    *(DType(f"torch_int{n}", 8, "int", f"torch.int{n}: a signed {n}-bit integer in one byte") for n in range(1, 8)),
    *(
        DType(f"torch_uint{n}", 8, "uint", f"torch.uint{n}: an unsigned {n}-bit integer in one byte")
        for n in range(1, 8)
    ),
)

DTYPES: dict[str, DType] = {d.name: d for d in _TABLE}

# Other spellings → canonical name. safetensors names are the upper-case ones.
_ALIASES: dict[str, str] = {
    # safetensors (https://github.com/huggingface/safetensors, Dtype enum)
    "F64": "f64",
    "F32": "f32",
    "F16": "f16",
    "BF16": "bf16",
    "F8_E4M3": "f8_e4m3fn",
    "F8_E4M3FN": "f8_e4m3fn",
    "F8_E5M2": "f8_e5m2",
    "F8_E8M0": "f8_e8m0",
    "F6_E2M3": "f6_e2m3",
    "F6_E3M2": "f6_e3m2",
    "F4": "f4",
    "I64": "i64",
    "I32": "i32",
    "I16": "i16",
    "I8": "i8",
    "I4": "i4",
    "U64": "u64",
    "U32": "u32",
    "U16": "u16",
    "U8": "u8",
    "U4": "u4",
    "BOOL": "bool",
    "C64": "c64",
    "C128": "c128",
    # torch / numpy spellings
    "float64": "f64",
    "double": "f64",
    "float32": "f32",
    "float": "f32",
    "float16": "f16",
    "half": "f16",
    "bfloat16": "bf16",
    "float8_e4m3fn": "f8_e4m3fn",
    "float8_e4m3fnuz": "f8_e4m3fnuz",
    "float8_e5m2": "f8_e5m2",
    "float8_e5m2fnuz": "f8_e5m2fnuz",
    "float8_e8m0fnu": "f8_e8m0",
    "int64": "i64",
    "long": "i64",
    "int32": "i32",
    "int": "i32",
    "int16": "i16",
    "short": "i16",
    "int8": "i8",
    "uint64": "u64",
    "uint32": "u32",
    "uint16": "u16",
    "uint8": "u8",
    "complex32": "c32",
    "complex64": "c64",
    "cfloat": "c64",
    "complex128": "c128",
    "cdouble": "c128",
    "fp64": "f64",
    "fp32": "f32",
    "fp16": "f16",
    "fp8": "f8_e4m3fn",
    "int4": "i4",
    "fp4": "f4",
    "float8": "f8_e4m3fn",
    "f8": "f8_e4m3fn",
}


# OpenVINO IR `element_type` names (openvino/core/type/element_type.hpp) → canonical name.
OPENVINO_TYPES: dict[str, str] = {
    "boolean": "bool", "bf16": "bf16", "f16": "f16", "f32": "f32", "f64": "f64",
    "i4": "i4", "i8": "i8", "i16": "i16", "i32": "i32", "i64": "i64",
    "u1": "u1", "u2": "u2", "u4": "u4", "u8": "u8", "u16": "u16", "u32": "u32", "u64": "u64",
    "nf4": "nf4", "f8e4m3": "f8_e4m3fn", "f8e5m2": "f8_e5m2", "f8e8m0": "f8_e8m0", "f4e2m1": "f4",
}  # fmt: skip

# torch.export's serialized ScalarType codes (torch/_export/serde/schema.py `ScalarType`) → canonical name.
TORCH_EXPORT_TYPES: dict[int, str] = {
    1: "u8", 2: "i8", 3: "i16", 4: "i32", 5: "i64", 6: "f16", 7: "f32", 8: "f64", 9: "c32", 10: "c64",
    11: "c128", 12: "bool", 13: "bf16", 28: "u16", 29: "f8_e4m3fn", 30: "f8_e5m2", 31: "f8_e4m3fnuz",
    32: "f8_e5m2fnuz", 33: "f8_e8m0", 34: "u32", 35: "u64",
}  # fmt: skip

# TensorFlow `DataType` codes (tensorflow/core/framework/types.proto) → canonical name; the `_REF` variants
# (code + 100) mean the same element type.
TF_TYPES: dict[int, str] = {
    1: "f32", 2: "f64", 3: "i32", 4: "u8", 5: "i16", 6: "i8", 8: "c64", 9: "i64", 10: "bool", 14: "bf16",
    17: "u16", 18: "c128", 19: "f16", 22: "u32", 23: "u64", 24: "f8_e5m2", 25: "f8_e4m3fn", 29: "i4", 30: "u4",
}  # fmt: skip


def lookup(name: str) -> DType:
    """Return the dtype for any known spelling, e.g. `lookup("BF16").bits == 16`.

    A `torch.` prefix means torch's dtype of that name (`torch.int4` is one byte per element, `int4` is packed).
    Raises `MalformedFileError` (rule `dtype-known`) for unknown names.
    """
    if name.startswith("torch."):
        found = TORCH_DTYPES.get(name[6:])
        if found is not None:
            return DTYPES[found]
    key = name.removeprefix("torch.")
    canonical = key if key in DTYPES else _ALIASES.get(key) or _ALIASES.get(key.upper())
    if canonical is None:
        canonical = key.lower() if key.lower() in DTYPES else None
    if canonical is None:
        raise MalformedFileError(f"unknown dtype {name!r}", rule="dtype-known")
    return DTYPES[canonical]


# Every `torch.dtype` attribute of the torch module (torch 2.13: `[n for n in dir(torch) if isinstance(getattr(torch,
# n), torch.dtype)]`, aliases included) → canonical name. Pickles name a dtype by its attribute (`torch.float32`).
TORCH_DTYPES: dict[str, str] = {
    "float64": "f64", "double": "f64", "float32": "f32", "float": "f32", "float16": "f16", "half": "f16",
    "bfloat16": "bf16", "float8_e4m3fn": "f8_e4m3fn", "float8_e4m3fnuz": "f8_e4m3fnuz", "float8_e5m2": "f8_e5m2",
    "float8_e5m2fnuz": "f8_e5m2fnuz", "float8_e8m0fnu": "f8_e8m0", "float4_e2m1fn_x2": "f4_e2m1fn_x2",
    "int64": "i64", "long": "i64", "int32": "i32", "int": "i32", "int16": "i16", "short": "i16", "int8": "i8",
    "uint64": "u64", "uint32": "u32", "uint16": "u16", "uint8": "u8", "bool": "bool",
    "complex32": "c32", "chalf": "c32", "complex64": "c64", "cfloat": "c64", "complex128": "c128", "cdouble": "c128",
    "qint8": "qint8", "quint8": "quint8", "qint32": "qint32", "quint4x2": "quint4x2", "quint2x4": "quint2x4",
    "bits8": "bits8", "bits16": "bits16", "bits1x8": "bits1x8", "bits2x4": "bits2x4", "bits4x2": "bits4x2",
    "bit": "torch_uint1",
    **{f"int{n}": f"torch_int{n}" for n in range(1, 8)},
    **{f"uint{n}": f"torch_uint{n}" for n in range(1, 8)},
}  # fmt: skip


def torch_dtype(name: str) -> DType | None:
    """The dtype torch names `name` (`torch.float32`, `torch.uint4`, or without the prefix), or None."""
    found = TORCH_DTYPES.get(name.removeprefix("torch."))
    return DTYPES[found] if found is not None else None


# ONNX TensorProto.DataType codes (onnx.proto, enum DataType) → canonical names. STRING has no width, so it
# is not in the table: readers report it by name.
ONNX_DTYPES: dict[int, str] = {
    1: "f32", 2: "u8", 3: "i8", 4: "u16", 5: "i16", 6: "i32", 7: "i64", 8: "string", 9: "bool", 10: "f16",
    11: "f64", 12: "u32", 13: "u64", 14: "c64", 15: "c128", 16: "bf16", 17: "f8_e4m3fn", 18: "f8_e4m3fnuz",
    19: "f8_e5m2", 20: "f8_e5m2fnuz", 21: "u4", 22: "i4", 23: "f4", 24: "f8_e8m0", 25: "u2", 26: "i2",
    27: "f6_e2m3", 28: "f6_e3m2",
}  # fmt: skip
ONNX_CODES: dict[str, int] = {name: code for code, name in ONNX_DTYPES.items()}

# numpy type strings that view a tensor's little-endian bytes element by element. bf16 has no numpy type:
# its bytes are viewed as u16 and widened to f32 by the caller (the high half of an f32).
NUMPY_VIEWS: dict[str, str] = {
    "f64": "<f8", "f32": "<f4", "f16": "<f2", "bf16": "<u2", "i64": "<i8", "i32": "<i4", "i16": "<i2", "i8": "i1",
    "u64": "<u8", "u32": "<u4", "u16": "<u2", "u8": "u1", "bool": "?",
}  # fmt: skip

# The precisions a user picks for weights, activations and KV caches (`mi memory --dtype`), as dtypes.
PRECISIONS: dict[str, str] = {
    "fp32": "f32",
    "fp16": "f16",
    "bf16": "bf16",
    "fp8": "f8_e4m3fn",
    "int8": "i8",
    "int4": "i4",
}


def precision_of(name: str) -> str | None:
    """The user precision for any dtype spelling (`half` → `fp16`, `torch.bfloat16` → `bf16`), or None."""
    try:
        canonical = lookup(name.strip().lower()).name
    except MalformedFileError:
        return None
    return next((p for p, d in PRECISIONS.items() if d == canonical), None)


# torch legacy storage classes (`torch.FloatStorage` …) as pickled by torch.save, → dtype.
TORCH_STORAGE_DTYPES: dict[str, str] = {
    "DoubleStorage": "f64",
    "FloatStorage": "f32",
    "HalfStorage": "f16",
    "BFloat16Storage": "bf16",
    "LongStorage": "i64",
    "IntStorage": "i32",
    "ShortStorage": "i16",
    "CharStorage": "i8",
    "ByteStorage": "u8",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "c64",
    "ComplexDoubleStorage": "c128",
    "QInt8Storage": "qint8",
    "QUInt8Storage": "quint8",
    "QInt32Storage": "qint32",
    "QUInt4x2Storage": "quint4x2",
    "QUInt2x4Storage": "quint2x4",
}


@dataclass(frozen=True, slots=True)
class BlockType:
    """A block-quantized type: `block_size` consecutive weights stored together in `type_size` bytes.

    GGML's quantizations (Q4_0, Q4_K, IQ2_XXS …) store scales and quants per block, so a weight has no
    whole-bit width: Q4_0 packs 32 weights into 18 bytes, 4.5 bits per weight.
    """

    name: str
    ggml_id: int
    block_size: int
    type_size: int
    description: str

    @property
    def bits_per_weight(self) -> float:
        """Stored bits per logical weight, scales included (Q4_K: 144 × 8 / 256 = 4.5)."""
        return self.type_size * 8 / self.block_size

    def nbytes(self, numel: int) -> int:
        """Bytes taken by `numel` weights; `numel` must be a whole number of blocks."""
        if numel % self.block_size:
            raise MalformedFileError(
                f"{numel} elements is not a whole number of {self.name} blocks of {self.block_size}",
                rule="dtype-size",
            )
        return numel // self.block_size * self.type_size


# GGML tensor types by their id in GGUF files: enum ggml_type in ggml/include/ggml.h, block sizes and
# struct sizes from the `block_*` definitions and static_asserts in ggml/src/ggml-common.h
# (https://github.com/ggml-org/llama.cpp). QK_K = 256. Plain types map to the table above.
GGML_PLAIN: dict[int, str] = {0: "f32", 1: "f16", 24: "i8", 25: "i16", 26: "i32", 27: "i64", 28: "f64", 30: "bf16"}
_GGML_BLOCKS: tuple[BlockType, ...] = (
    BlockType("q4_0", 2, 32, 18, "fp16 scale + 32 × 4-bit"),
    BlockType("q4_1", 3, 32, 20, "fp16 scale, fp16 min + 32 × 4-bit"),
    BlockType("q5_0", 6, 32, 22, "fp16 scale + 32 high bits + 32 × 4-bit"),
    BlockType("q5_1", 7, 32, 24, "fp16 scale, fp16 min + 32 high bits + 32 × 4-bit"),
    BlockType("q8_0", 8, 32, 34, "fp16 scale + 32 × int8"),
    # 2 × ggml_half + 32 (static_assert in ggml-common.h); gguf-py's table still says 40 (the old fp32 layout).
    BlockType("q8_1", 9, 32, 36, "fp16 scale, fp16 sum + 32 × int8"),
    BlockType("q2_k", 10, 256, 84, "K-quant 2-bit: 16 × 4-bit scales/mins, 2 × fp16"),
    BlockType("q3_k", 11, 256, 110, "K-quant 3-bit: high-bit mask, 12 scale bytes, fp16"),
    BlockType("q4_k", 12, 256, 144, "K-quant 4-bit: 2 × fp16, 12 scale bytes"),
    BlockType("q5_k", 13, 256, 176, "K-quant 5-bit: 2 × fp16, 12 scale bytes, high bits"),
    BlockType("q6_k", 14, 256, 210, "K-quant 6-bit: 16 × int8 scales, fp16"),
    BlockType("q8_k", 15, 256, 292, "K-quant 8-bit: fp32 scale, 16 × int16 sums"),
    BlockType("iq2_xxs", 16, 256, 66, "i-quant 2.06 bpw"),
    BlockType("iq2_xs", 17, 256, 74, "i-quant 2.31 bpw"),
    BlockType("iq3_xxs", 18, 256, 98, "i-quant 3.06 bpw"),
    BlockType("iq1_s", 19, 256, 50, "i-quant 1.56 bpw"),
    BlockType("iq4_nl", 20, 32, 18, "non-linear 4-bit, fp16 scale"),
    BlockType("iq3_s", 21, 256, 110, "i-quant 3.44 bpw"),
    BlockType("iq2_s", 22, 256, 82, "i-quant 2.5 bpw"),
    BlockType("iq4_xs", 23, 256, 136, "non-linear 4-bit, 6-bit sub-block scales"),
    BlockType("iq1_m", 29, 256, 56, "i-quant 1.75 bpw"),
    # 31-33 and 36-38 are interleaved repacks of Q4_0 / IQ4_NL blocks, removed from ggml in late 2024
    # (their traits now have block size 0) but present in files written before that; same bytes per block.
    BlockType("q4_0_4_4", 31, 32, 18, "Q4_0 repacked 4×4 (removed from ggml)"),
    BlockType("q4_0_4_8", 32, 32, 18, "Q4_0 repacked 4×8 (removed from ggml)"),
    BlockType("q4_0_8_8", 33, 32, 18, "Q4_0 repacked 8×8 (removed from ggml)"),
    BlockType("tq1_0", 34, 256, 54, "ternary 1.69 bpw"),
    BlockType("tq2_0", 35, 256, 66, "ternary 2.06 bpw"),
    BlockType("iq4_nl_4_4", 36, 32, 18, "IQ4_NL repacked 4×4 (removed from ggml)"),
    BlockType("iq4_nl_4_8", 37, 32, 18, "IQ4_NL repacked 4×8 (removed from ggml)"),
    BlockType("iq4_nl_8_8", 38, 32, 18, "IQ4_NL repacked 8×8 (removed from ggml)"),
    BlockType("mxfp4", 39, 32, 17, "OCP MX fp4 e2m1 + e8m0 block scale"),
    BlockType("nvfp4", 40, 64, 36, "NVIDIA fp4 e2m1, 4 × fp8 scales per 64"),
    BlockType("q1_0", 41, 128, 18, "1-bit, fp16 scale"),
)
BLOCK_TYPES: dict[str, BlockType] = {b.name: b for b in _GGML_BLOCKS}
GGML_BLOCKS: dict[int, BlockType] = {b.ggml_id: b for b in _GGML_BLOCKS}


def bits_per_weight(name: str) -> float:
    """Stored bits per element of any dtype or block type: `bits_per_weight("q4_k") == 4.5`."""
    block = BLOCK_TYPES.get(name.lower())
    if block is not None:
        return block.bits_per_weight
    return float(lookup(name).bits)
