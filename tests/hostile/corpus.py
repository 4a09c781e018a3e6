"""Builds the hostile-input corpus into a folder at test time (nothing big is committed).

Two kinds of entries:

- `malformed_cases(root)`: files and folders that break a format's rules or the machine (lying lengths,
  overflowing shapes, truncation, zip bombs, deep nesting, huge counts, missing shards, symlink loops, FIFOs,
  text with a model extension). Every command must answer with one line naming the file, exit 2.
- `exploit_cases(root, marker_env)`: pickles that would run a command when loaded. Each payload creates the
  file named by the environment variable `marker_env` (so the same file can be proven to be a real exploit by
  loading it under a different marker, and proven inert under `mi`).

Run as a script to write the corpus somewhere to look at it: `python -m tests.hostile.corpus /tmp/corpus`.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"


@dataclass(frozen=True)
class Case:
    """One corpus entry: `path` is what is passed to the commands; `expect` is the exit code per command."""

    name: str
    path: Path
    what: str
    scan_exit: int = 2  # `mi scan` may legitimately say 1 (it found something) for some of them
    loader: str | None = None  # format whose reader must exist for the case to make sense
    target: str = ""  # exploits: the dangerous global `mi scan` must name
    oracle: bool = True  # exploits: loading it the usual way really runs the payload


# --- byte helpers ----------------------------------------------------------------------------------------


def st_bytes(header: object, data: bytes = b"", length: int | None = None, raw: bytes | None = None) -> bytes:
    body = raw if raw is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(body) if length is None else length) + body + data


def raw_zip(members: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip from (name, payload as stored, method, crc, uncompressed size): lets us write what zipfile won't."""
    out = io.BytesIO()
    central = []
    for name, payload, method, crc, usize in members:
        offset = out.tell()
        nb = name.encode()
        out.write(struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, method, 0, 0, crc, len(payload), usize, len(nb), 0))
        out.write(nb + payload)
        central.append(
            struct.pack(
                "<4s6H3I5H2I",
                b"PK\x01\x02",
                20,
                20,
                0,
                method,
                0,
                0,
                crc,
                len(payload),
                usize,
                len(nb),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + nb
        )
    cd_start = out.tell()
    for c in central:
        out.write(c)
    cd_size = out.tell() - cd_start
    out.write(struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, len(members), len(members), cd_size, cd_start, 0))
    return out.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def fixture_members() -> dict[str, bytes]:
    with zipfile.ZipFile(FIXTURES / "tiny_seed.pth") as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def tensor_pickle(size: tuple[int, ...], offset: int = 0, numel: int = 4, key: str = "0") -> bytes:
    """A protocol-2 state_dict pickle with one tensor, written opcode by opcode (torch's layout)."""

    def s(text: str) -> bytes:
        b = text.encode()
        return b"X" + struct.pack("<I", len(b)) + b

    def tup(items: list[bytes]) -> bytes:
        return b"(" + b"".join(items) + b"t"

    def intop(v: int) -> bytes:
        if 0 <= v < 2**31:
            return b"J" + struct.pack("<i", v)
        n = (v.bit_length() + 8) // 8
        return b"\x8a" + bytes([n]) + v.to_bytes(n, "little", signed=True)

    pid = tup([s("storage"), b"ctorch\nFloatStorage\n", s(key), s("cpu"), intop(numel)])
    stride = []
    acc = 1
    for d in reversed(size):
        stride.append(acc)
        acc *= max(d, 1)
    args = tup([pid + b"Q", intop(offset), tup([intop(d) for d in size]), tup([intop(x) for x in reversed(stride)]),
                b"\x89", b"ccollections\nOrderedDict\n)R"])  # fmt: skip
    return b"\x80\x02}" + s("w") + b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"Rs."


def pth_with_pickle(pkl: bytes, storage: bytes = b"\0" * 16, folder: str = "archive") -> bytes:
    return zip_of({f"{folder}/data.pkl": pkl, f"{folder}/data/0": storage, f"{folder}/version": b"3\n"})


def zip_bomb(inflated: int) -> bytes:
    """A torch-looking zip whose deflated data.pkl inflates to `inflated` bytes (a multiple of 16 MiB).

    One 16 MiB block of zeros is compressed once and ended with a full flush (byte-aligned, no reference to
    earlier data), so repeating it makes a valid deflate stream; an empty final block closes it. The CRC is
    left 0: torch ignores CRCs, and so does our reader.
    """
    chunk = 16 << 20
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(b"\0" * chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    payload = block * (inflated // chunk) + final
    return raw_zip([("archive/data.pkl", payload, zipfile.ZIP_DEFLATED, 0, inflated & 0xFFFFFFFF)])


def gguf_header(n_tensors: int, n_kv: int) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv)


# --- malformed corpus --------------------------------------------------------------------------------------


def malformed_cases(root: Path) -> list[Case]:
    """Write every malformed entry under `root` and describe it."""
    root.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def put(name: str, data: bytes, what: str, **kw: object) -> None:
        p = root / name
        p.write_bytes(data)
        cases.append(Case(Path(name).stem, p, what, **kw))  # type: ignore[arg-type]

    good = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    put("st_len_huge.safetensors", struct.pack("<Q", 2**63) + b"{}", "safetensors header length 2**63")
    put("st_len_past_end.safetensors", st_bytes(good, length=10**6), "header length past the end of the file")
    put(
        "st_shape_overflow.safetensors",
        st_bytes({"a": {"dtype": "F32", "shape": [2**40, 2**40, 2**40], "data_offsets": [0, 8]}}, b"\0" * 8),
        "shape product overflows 64 bits",
    )
    put(
        "st_offsets_past_end.safetensors",
        st_bytes({"a": {"dtype": "F32", "shape": [2**30], "data_offsets": [0, 2**32]}}, b"\0" * 8),
        "data offsets past the end",
    )
    put(
        "st_overlap.safetensors",
        st_bytes(
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            b"\0" * 12,
        ),
        "two tensors overlap",
    )
    put(
        "st_deep_json.safetensors",
        st_bytes(None, raw=b'{"a": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"),
        "JSON header nested 200,000 deep",
    )
    put("st_text.safetensors", b"this is not a model, just text\n" * 3, "text file with a model extension")

    real = (FIXTURES / "tiny_seed.pth").read_bytes()
    put("pth_truncated.pth", real[: len(real) * 6 // 10], "torch zip cut at 60%")
    put("pth_truncated_head.pth", real[:200], "torch zip cut inside the first member")
    put("pth_zip_bomb.pth", zip_bomb(3 << 30), "data.pkl deflated, inflating to 3 GiB")
    put(
        "pth_shape_overflow.pth",
        pth_with_pickle(tensor_pickle((2**40, 2**40, 2**40))),
        "tensor shape product overflows",
        scan_exit=0,  # the pickle itself is safe: scan is about code, the readers about structure
    )
    put(
        "pth_offset_past_end.pth",
        pth_with_pickle(tensor_pickle((4,), offset=2**40)),
        "tensor offset far past its storage",
        scan_exit=0,  # the pickle itself is safe: scan is about code, the readers about structure
    )
    put(
        "pth_missing_storage.pth",
        zip_of({"archive/data.pkl": tensor_pickle((4,)), "archive/version": b"3\n"}),
        "storage member missing",
        scan_exit=0,  # the pickle itself is safe: scan is about code, the readers about structure
    )
    put(
        "pth_storage_lies.pth",
        pth_with_pickle(tensor_pickle((4,), numel=2**40)),
        "storage claims 2**40 elements, holds 16 bytes",
        scan_exit=0,  # the pickle itself is safe: scan is about code, the readers about structure
    )
    # Pickles: truncated, lying lengths, deep nesting (a tuple dict key a million deep used to crash CPython's
    # hash with a segfault), opcodes with huge declared sizes.
    pk = pickle.dumps({"a": [1, 2, 3], "b": "x" * 100}, protocol=2)
    put("pkl_truncated.pkl", pk[: len(pk) // 2], "raw pickle cut in half")
    put("pkl_binbytes8.pkl", b"\x80\x04\x8e" + struct.pack("<Q", 2**62) + b"abc", "BINBYTES8 declaring 2**62 bytes")
    put("pkl_long4.pkl", b"\x80\x02\x8b" + struct.pack("<i", 2**31 - 1) + b"\0", "LONG4 declaring 2 GiB")
    # A well-formed pickle of nested lists is safe: `mi scan` says clean (0); the readers refuse the depth (2).
    put("pkl_deep_list.pkl", b"\x80\x02" + b"]" * 200_000 + b"a" * 199_999 + b".", "lists nested 200,000 deep",
        scan_exit=0)  # fmt: skip
    put("pkl_deep_tuple_key.pkl", b"\x80\x02}" + b")" + b"\x85" * 500_000 + b"Ns.", "dict key: a tuple 500,000 deep")
    put("pkl_deep_marks.pkl", b"\x80\x02" + b"(" * 1_000_000 + b".", "a million MARKs")
    put("pkl_garbage.pkl", b"\x80\x02" + bytes(range(256)) * 4, "protocol header then garbage")
    try:
        import torch

        buf = io.BytesIO()
        torch.save({"w": torch.ones(64), "b": torch.zeros(8)}, buf, _use_new_zipfile_serialization=False)
        lb = buf.getvalue()
        put("legacy_truncated.pt", lb[:300], "legacy torch file cut inside its pickles")
    except ImportError:
        pass
    put("empty.pth", b"", "empty file")
    put("text.pth", b"hello\nworld\n", "text file with a .pth extension")
    put("text.onnx", b"hello\nworld\n", "text file with an .onnx extension", loader="onnx")
    put("text.gguf", b"hello\nworld\n", "text file with a .gguf extension", loader="gguf")
    put(
        "onnx_lying_length.onnx",
        b"\x08\x07\x3a" + b"\xff\xff\xff\xff\xff\xff\xff\xff\x7f" + b"\0" * 16,
        "ONNX graph field declaring 2**63 bytes",
        loader="onnx",
    )
    put("gguf_huge_counts.gguf", gguf_header(2**63, 2**63) + b"\0" * 64, "GGUF claiming 2**63 tensors and keys",
        loader="gguf")  # fmt: skip
    put(
        "gguf_huge_array.gguf",
        gguf_header(0, 1) + struct.pack("<Q", 1) + b"k" + struct.pack("<IIQ", 9, 0, 2**63),
        "GGUF array of 2**63 elements (gguf-py hangs on this)",
        loader="gguf",
    )

    # Folders and special files.
    missing = root / "index_missing_shard"
    missing.mkdir()
    (missing / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 8}, "weight_map": {"a": "model-00001-of-00002.safetensors"}})
    )
    cases.append(Case("index_missing_shard", missing, "index names a shard that does not exist"))
    escape = root / "index_escape"
    escape.mkdir()
    (escape / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "../st_overlap.safetensors"}}))
    cases.append(Case("index_escape", escape, "index names a shard outside the folder"))
    empty_dir = root / "no_model_files"
    empty_dir.mkdir()
    (empty_dir / "README.md").write_text("nothing here\n")
    (empty_dir / "config.json").write_text("{}")
    cases.append(Case("no_model_files", empty_dir, "folder without model files"))
    loop_a, loop_b = root / "loop_a.safetensors", root / "loop_b.safetensors"
    os.symlink(loop_b.name, loop_a)
    os.symlink(loop_a.name, loop_b)
    cases.append(Case("symlink_loop", loop_a, "symlink loop"))
    dir_loop = root / "dir_loop"
    dir_loop.mkdir()
    os.symlink(".", dir_loop / "again")
    os.symlink("../dir_loop", dir_loop / "up")
    cases.append(Case("dir_symlink_loop", dir_loop, "folder whose symlinks point back at itself, no model file"))
    fifo = root / "fifo.pth"
    os.mkfifo(fifo)
    cases.append(Case("fifo", fifo, "FIFO named like a model"))
    zero = root / "zero.safetensors"
    os.symlink("/dev/zero", zero)
    cases.append(Case("dev_zero_link", zero, "symlink to /dev/zero named like a model"))
    cases.append(Case("dev_zero", Path("/dev/zero"), "/dev/zero itself"))
    cases.append(Case("missing_path", root / "does-not-exist.safetensors", "path that does not exist"))
    _zoo_cases(root, cases, put)
    return cases


def _zoo_cases(root: Path, cases: list[Case], put: Callable[..., None]) -> None:
    """diffusers pipelines, tokenizers and NumPy arrays that lie (issue 19)."""
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000000000), }"
    header += b" " * (64 - (10 + len(header) + 1) % 64) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 16
    put("npy_huge_shape.npy", npy, "npy declaring a 10^18-element array in 144 bytes", scan_exit=0)
    escape = root / "pipeline_escape"
    escape.mkdir()
    (root / "outside").mkdir()
    (escape / "model_index.json").write_text(
        '{"_class_name": "X", "../outside": ["diffusers", "UNet2DConditionModel"]}'
    )
    cases.append(Case("pipeline_escape", escape, "model_index.json naming a component folder outside the pipeline"))
    huge = root / "tokenizer_huge"
    huge.mkdir()
    (huge / "model.safetensors").write_bytes(st_bytes({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
                                                      b"\0" * 8))  # fmt: skip
    with open(huge / "tokenizer.json", "wb") as f:
        f.truncate(65 << 20)  # sparse: 65 MiB declared, nothing on disk
    cases.append(Case("tokenizer_huge", huge, "a 65 MiB tokenizer.json beside the weights", scan_exit=0))


# --- exploits ------------------------------------------------------------------------------------------------


def _touch_cmd(env: str) -> str:
    return f'touch "${env}"'


def exploit_cases(root: Path, env: str) -> list[Case]:
    """Pickles that create the file named by `$env` when loaded with pickle / torch.load(weights_only=False)."""
    root.mkdir(parents=True, exist_ok=True)
    cmd = _touch_cmd(env).encode()
    py = f"import os; open(os.environ[{env!r}], 'w').close()".encode()
    cases: list[Case] = []

    def sb(b: bytes) -> bytes:  # SHORT_BINUNICODE
        return b"\x8c" + bytes([len(b)]) + b

    def put(name: str, data: bytes, what: str, target: str = "os.system", oracle: bool = True) -> None:
        p = root / name
        p.write_bytes(data)
        cases.append(Case(Path(name).stem, p, what, scan_exit=1, target=target, oracle=oracle))

    system = b"\x80\x02cos\nsystem\nX" + struct.pack("<I", len(cmd)) + cmd + b"\x85R."
    put("os_system.pkl", system, "REDUCE of os.system")
    put(
        "exec.pkl",
        b"\x80\x02cbuiltins\nexec\nX" + struct.pack("<I", len(py)) + py + b"\x85R.",
        "REDUCE of builtins.exec",
        target="builtins.exec",
    )
    put(
        "subprocess.pkl",
        b"\x80\x04"
        + sb(b"subprocess")
        + sb(b"check_call")
        + b"\x93"
        + b"]("
        + sb(b"sh")
        + sb(b"-c")
        + b"X"
        + struct.pack("<I", len(cmd))
        + cmd
        + b"e\x85R.",
        "STACK_GLOBAL subprocess.check_call(['sh', '-c', …])",
        target="subprocess.check_call",
    )
    # builtins.getattr(builtins.__import__('os'), 'system')(cmd): a gadget chain of calls on call results.
    put(
        "getattr_chain.pkl",
        b"\x80\x02cbuiltins\ngetattr\ncbuiltins\n__import__\nX\x02\x00\x00\x00os\x85RX\x06\x00\x00\x00system\x86R"
        + b"X"
        + struct.pack("<I", len(cmd))
        + cmd
        + b"\x85R.",
        "builtins.getattr(__import__('os'), 'system')(cmd)",
        target="builtins.getattr",
    )
    # Memo shuffle: the strings are stored, the stack is reordered through the memo, then STACK_GLOBAL.
    put(
        "memo_trick.pkl",
        b"\x80\x04" + sb(b"system") + b"\x94" + b"0" + sb(b"os") + b"\x94" + b"0" + b"h\x01h\x00\x93"
        + b"X" + struct.pack("<I", len(cmd)) + cmd + b"\x85R.",
        "module and name fetched from the memo in swapped order before STACK_GLOBAL",
    )  # fmt: skip
    put(
        "dotted.pkl",
        b"\x80\x04" + sb(b"pathlib") + sb(b"os.system") + b"\x93" + b"X" + struct.pack("<I", len(cmd)) + cmd
        + b"\x85R.",
        "STACK_GLOBAL('pathlib', 'os.system'): a dotted name reaching os.system",
        target="pathlib.os.system",
    )  # fmt: skip
    put(
        "inst.pkl",
        b"(X" + struct.pack("<I", len(cmd)) + cmd + b"ios\nsystem\n.",
        "INST os.system (protocol 0)",
    )
    put(
        "obj.pkl",
        b"\x80\x02(cos\nsystem\nX" + struct.pack("<I", len(cmd)) + cmd + b"o.",
        "OBJ with os.system as the class",
    )
    put(
        "broken_after.pkl",
        system[:-1] + b"\xff\xff",
        "os.system call followed by garbage: a scanner that gives up must still report it",
    )
    # Zip checkpoints: the payload in data.pkl of a renamed folder, and as a second pickle after a clean one.
    members = fixture_members()
    folder = next(iter(members)).split("/", 1)[0]
    clean = members[f"{folder}/data.pkl"]
    renamed = {k.replace(k.split("/", 1)[0], "innocent_name", 1): v for k, v in members.items()}
    renamed["innocent_name/data.pkl"] = system
    put("renamed_folder.pth", zip_of(renamed), "torch zip whose folder is not archive/, data.pkl runs os.system")
    upper = {k.replace(k.split("/", 1)[0], "x", 1): v for k, v in members.items()}
    upper.pop("x/data.pkl")
    upper["x/DATA.PKL"] = system
    put("upper_case_member.pth", zip_of(upper), "torch zip with DATA.PKL (torch matches names case-insensitively)")
    put(
        "extra_member.pth",
        zip_of({**members, f"{folder}/extra.pkl": system}),
        "a clean checkpoint plus an evil .pkl member (torch.load ignores it; other loaders may not)",
        oracle=False,
    )
    put(
        "concatenated.pkl",
        pickle.dumps({"w": 1}, protocol=2) + system,
        "clean pickle then an exploit pickle (runs on the second pickle.load of the file)",
        oracle=False,
    )
    put("clean_then_evil_member.pth", zip_of({**members, f"{folder}/data.pkl": clean + system}),
        "data.pkl holds the clean pickle and, after its STOP, an exploit pickle", oracle=False)  # fmt: skip
    return cases


def oracle_loader(path: Path) -> Callable[[], object]:
    """How a victim would load `path`: pickle.load for raw pickles, torch.load(weights_only=False) for zips."""

    def load() -> object:
        with open(path, "rb") as f:
            head = f.read(4)
        if head == b"PK\x03\x04":
            import torch

            return torch.load(path, weights_only=False)
        with open(path, "rb") as f:
            return pickle.load(f)

    return load


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "hostile-corpus")
    for c in [*malformed_cases(out / "malformed"), *exploit_cases(out / "exploits", "MI_MARKER")]:
        print(f"{c.path}\t{c.what}")


if __name__ == "__main__":
    main()
