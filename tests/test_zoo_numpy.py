"""NumPy `.npy` / `.npz` as tensor files: arrays written by numpy.save / savez / savez_compressed, read from their
headers; object arrays refused as tensors (scan still reads them); hostile headers end cleanly."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelscope_inspect import load
from modelscope_inspect.cli import app

np = pytest.importorskip("numpy")

ARRAYS = {
    "w": ("float32", (4, 3)),
    "b": ("float16", (3,)),
    "ids": ("int64", (2, 2, 2)),
    "mask": ("bool", (5,)),
    "u": ("uint8", (7,)),
    "scalar": ("float64", ()),
    "empty": ("float32", (0, 4)),
    "z": ("complex64", (2,)),
}
DTYPE = {"float32": "f32", "float16": "f16", "int64": "i64", "bool": "bool", "uint8": "u8", "float64": "f64",
         "complex64": "c64"}  # fmt: skip


def _arrays() -> dict[str, object]:
    return {k: np.zeros(shape, dtype=dt) for k, (dt, shape) in ARRAYS.items()}


def test_npy_one_tensor(tmp_path: Path) -> None:
    for name, arr in _arrays().items():
        p = tmp_path / f"{name}.npy"
        np.save(p, arr)
        inv = load(p)
        (t,) = inv.tensors
        assert t.shape == arr.shape and t.dtype == DTYPE[str(arr.dtype)]  # type: ignore[attr-defined]
        assert inv.total_params == arr.size and inv.total_bytes == arr.nbytes  # type: ignore[attr-defined]
        assert inv.format == "npy"


def test_npy_fortran_and_big_endian(tmp_path: Path) -> None:
    p = tmp_path / "f.npy"
    np.save(p, np.asfortranarray(np.zeros((3, 5), dtype=">f4")))
    inv = load(p)
    assert inv.details["npy"] == "fortran order" and inv.details["byte order"] == "big-endian"
    assert inv.total_params == 15


@pytest.mark.parametrize("save", ["savez", "savez_compressed"])
def test_npz_every_member(tmp_path: Path, save: str) -> None:
    arrays = _arrays()
    p = tmp_path / "a.npz"
    getattr(np, save)(p, **arrays)
    inv = load(p)
    with np.load(p) as z:  # the oracle: numpy's own reading of the file it wrote (no pickles allowed)
        expected = {k: (z[k].shape, z[k].size, z[k].nbytes) for k in z.files}
    got = {t.name: (t.shape, t.numel, t.nbytes) for t in inv.tensors}
    assert got == expected
    assert inv.total_params == sum(v[1] for v in expected.values())
    assert inv.format == "npz"
    r = CliRunner().invoke(app, ["inspect", str(p)], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output


def test_npz_long_member_names(tmp_path: Path) -> None:
    p = tmp_path / "long.npz"
    np.savez(p, **{"a_very_long_member_name_that_does_not_fit_the_head": np.ones(3)})
    assert load(p).total_params == 3


def test_object_array_refused_as_tensor_but_scanned(tmp_path: Path) -> None:
    p = tmp_path / "obj.npy"
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    r = CliRunner().invoke(app, ["inspect", str(p)])
    assert r.exit_code == 2 and "object array" in r.output and len(r.output.strip().splitlines()) == 1
    s = CliRunner().invoke(app, ["scan", str(p)])
    assert s.exit_code in (0, 1) and "Traceback" not in s.output


def _npy(header: bytes, data: bytes = b"") -> bytes:
    pad = 64 - (10 + len(header) + 1) % 64
    h = header + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data


@pytest.mark.parametrize(
    ("header", "rule"),
    [
        (b"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000000000), }", "truncated"),
        (
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776, 1099511627776), }",
            "npy-shape",
        ),
        (b"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "npy-header"),
        (b"{'descr': '<f4', 'shape': __import__('os').system('true'), }", "npy-header"),
        (b"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "npy-dtype"),
        (b"{'descr': '<U7', 'fortran_order': False, 'shape': (1,), }", "npy-dtype"),
    ],
)
def test_hostile_npy_ends_cleanly(tmp_path: Path, header: bytes, rule: str) -> None:
    p = tmp_path / "h.npy"
    p.write_bytes(_npy(header, b"\0" * 16))
    r = CliRunner().invoke(app, ["inspect", str(p)])
    assert r.exit_code == 2, r.output
    assert rule in r.output and len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output


def test_npz_member_lying_about_its_shape(tmp_path: Path) -> None:
    import zipfile

    p = tmp_path / "lie.npz"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("x.npy", _npy(b"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000,), }", b"\0" * 8))
    r = CliRunner().invoke(app, ["inspect", str(p)])
    assert r.exit_code == 2 and "npy-shape" in r.output
