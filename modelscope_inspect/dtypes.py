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
    DType("bool", 8, "bool", "boolean (one byte each)"),
    DType("c32", 32, "complex", "complex of two float16"),
    DType("c64", 64, "complex", "complex of two float32"),
    DType("c128", 128, "complex", "complex of two float64"),
    DType("qint8", 8, "quant", "quantized int8 (torch)"),
    DType("quint8", 8, "quant", "quantized uint8 (torch)"),
    DType("qint32", 32, "quant", "quantized int32 (torch)"),
    DType("quint4x2", 8, "quant", "two quantized uint4 per byte (torch)"),
    DType("quint2x4", 8, "quant", "four quantized uint2 per byte (torch)"),
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
}


def lookup(name: str) -> DType:
    """Return the dtype for any known spelling, e.g. `lookup("BF16").bits == 16`.

    Raises `MalformedFileError` (rule `dtype-known`) for unknown names.
    """
    key = name.removeprefix("torch.")
    canonical = key if key in DTYPES else _ALIASES.get(key) or _ALIASES.get(key.upper())
    if canonical is None:
        canonical = key.lower() if key.lower() in DTYPES else None
    if canonical is None:
        raise MalformedFileError(f"unknown dtype {name!r}", rule="dtype-known")
    return DTYPES[canonical]


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
