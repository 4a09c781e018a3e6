"""The scanner behind `mi scan`: every global a pickle would import and every call it would make, never run.

Every pickle stream in a file is walked with the bounded symbolic decoder (`pickle_walk.walk`), which never
imports or calls anything:

- raw pickles (`.pkl`, `.pickle`, legacy `.pt`), including several concatenated in one file,
- the legacy torch format (five pickles in a row, then raw storage bytes that are not read), and its
  tar-wrapped variant (`sys_info`, `pickle`, and the per-record pickles inside `storages` and `tensors`),
- every member of a zip archive that is a pickle by content, whatever its name or folder (`*.pkl` members
  must be pickles; `data.txt`, `weights` or `archive/extra/config.txt` holding one are found by their first
  opcodes and a walk), and zips inside zips, each inflated with a cap so a zip bomb stops early,
- numpy `.npy` files (and `.npy` members of `.npz` archives) whose dtype holds Python objects: their data
  is a pickle.

Globals are compared with the allowlist in `safety.py`; everything else becomes a `Finding` with its opcode
offset and a severity (`dangerous`: known code-execution or I/O callables; `unknown`: anything else, such as a
model class in a whole-model pickle). Calls of things that are not globals (the result of another call, a
constant) and `BUILD` on anything but a tensor, parameter or `OrderedDict` are findings too.

Fail closed: a stream that cannot be parsed to the end still reports the globals seen before the break, and a
file any part of which could not be read is never "clean" (exit 2 unless something was found, then 1).
safetensors, ONNX and GGUF files hold no pickle; they are validated by their reader and reported clean.

Everything is read through byte sources, so URLs work the same way (`api.scan_paths`): a remote file is read with
range requests, a remote folder is listed and each file scanned. Only pickle bytes are read (zip central
directory and `.pkl` members, the pickles at the start of raw/legacy files, `.npy` headers), never tensor data.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..errors import (
    InspectError,
    LimitExceededError,
    MalformedFileError,
    UnsupportedFormatError,
)
from .identify import identify
from .pickle_walk import Event, walk
from .remote_code import RemoteCode
from .safety import BUILD_TARGETS, TORCHSCRIPT_HELPERS, Severity, classify
from .source import ByteSource
from .torchzip import ZIP_MAGIC

MAX_PICKLE_BYTES = 512 << 20  # one pickle stream (raw file or zip member) larger than this is not scanned
# Raw pickles are read in growing prefixes (×4): legacy files keep their pickles up front, then tensor data,
# which a small first read does not fetch from a remote file.
FIRST_READ = 64 << 10
MAX_STREAMS = 1_000  # concatenated pickles in one raw file
MAX_FINDINGS = 1_000  # per file; the rest are counted
MAX_FILES = 10_000  # files visited in a folder
MAX_DEPTH = 32  # folder nesting
MAX_NPY_HEADER = 1 << 20
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch/serialization.py MAGIC_NUMBER, the first legacy pickle

NPY_MAGIC = b"\x93NUMPY"
PICKLE_EXTS = (".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt", ".joblib", ".dat", ".data", ".p")
MODEL_EXTS = (*PICKLE_EXTS, ".npy", ".npz", ".safetensors", ".onnx", ".gguf", ".zip", ".tar", ".h5", ".msgpack",
              ".keras", ".pb")  # fmt: skip
# Every pickle opcode (pickletools.opcodes): CPython loads a stream that starts with any of them (`\x88.` is
# True), so a file or member is walked when its first byte is one; the walk decides.
PICKLE_START = frozenset(
    b"().012BCFGIJKLMNPQRSTUVX]abcdeghijlopqrstu}"
    b"\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x90\x91\x92\x93\x94\x95\x96\x97\x98"
)


class Allow(StrEnum):
    """Findings of severity `code` a gate accepts on purpose (`mi scan --allow KIND`): the finding's `kind`."""

    torchscript = "torchscript"
    remote_code = "remote-code"


TORCHSCRIPT_CODE = "TorchScript code: runs on torch.jit.load / torch.load"


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the pickle would import or do that a plain checkpoint does not need."""

    stream: str  # which pickle: a zip member name, or `pickle 1` … for raw files
    offset: int  # opcode offset inside that stream
    opcode: str
    kind: str  # "global", "call", "build"; for severity `code`, an `Allow` value ("torchscript", …)
    target: str
    severity: Severity
    reason: str


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """One pickle stream that was walked."""

    name: str
    start: int
    end: int
    protocol: int
    globals: tuple[str, ...]
    calls: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class FileScanReport:
    """What `mi scan` found in one file."""

    path: str
    format: str
    streams: tuple[StreamInfo, ...] = ()
    findings: tuple[Finding, ...] = ()
    more_findings: int = 0
    notes: tuple[str, ...] = ()
    error: str | None = None  # set when (part of) the file could not be scanned

    @property
    def status(self) -> str:
        """`dangerous`, `unknown`, `code` (only code a gate may accept), `error` (could not scan, nothing
        found) or `clean`."""
        if any(f.severity == Severity.dangerous for f in self.findings):
            return "dangerous"
        if any(f.severity == Severity.unknown for f in self.findings):
            return "unknown"
        if self.findings:
            return "code"
        return "error" if self.error else "clean"

    @property
    def globals(self) -> tuple[str, ...]:
        """Every distinct global the file's pickles import, in first-seen order."""
        seen: dict[str, None] = {}
        for s in self.streams:
            for g in s.globals:
                seen.setdefault(g, None)
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class ScanReport:
    """`mi scan PATH`: one report per file (one for a file, several for a folder)."""

    path: str
    files: tuple[FileScanReport, ...]
    skipped: int = 0  # folder entries that are not model files
    notes: tuple[str, ...] = ()  # about the whole target (e.g. a remote folder that cannot be listed)
    bytes_read: int | None = None  # body bytes fetched over the network, for URLs
    remote_code: tuple[RemoteCode, ...] = ()  # per folder: the Python files trust_remote_code would run
    allow: frozenset[str] = frozenset()  # `Allow` kinds of `code` findings accepted on purpose

    def accepted(self, f: Finding) -> bool:
        """True for a `code` finding whose kind the gate accepts (`--allow`)."""
        return f.severity == Severity.code and f.kind in self.allow

    @property
    def status(self) -> str:
        """`findings` when anything dangerous or unknown was found (or code not accepted with `allow`), else
        `error` when a file could not be scanned, else `clean`."""
        if any(not self.accepted(x) for f in self.files for x in f.findings):
            return "findings"
        return "error" if any(f.error for f in self.files) else "clean"


@dataclass(slots=True)
class _Acc:
    """Findings and streams collected while scanning one file."""

    streams: list[StreamInfo] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    more: int = 0
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    torchscript: bool = False  # inside a TorchScript archive: its helpers and compiled classes are its code

    def add(self, f: Finding) -> None:
        if self.torchscript and (
            f.target in TORCHSCRIPT_HELPERS or f.target.removesuffix(".__setstate__").startswith("__torch__.")
        ):
            # torch's TorchScript unpickler allows the helpers; `__torch__.*` classes are compiled from the
            # archive's code/ folder (not imported), which is reported as a finding of its own.
            return
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(f)
        else:
            self.more += 1


def _event_findings(stream: str, events: list[Event]) -> list[Finding]:
    out: list[Finding] = []
    for ev in events:
        if ev.kind == "global":
            if ev.target.startswith("<extension code"):
                out.append(
                    Finding(
                        stream,
                        ev.offset,
                        ev.opcode,
                        "global",
                        ev.target,
                        Severity.unknown,
                        "resolved through copyreg's extension registry at load time: could be any callable",
                    )
                )
                continue
            sev = classify(ev.target)
            if sev is not None:
                reason = (
                    "can run commands, code or I/O"
                    if sev == Severity.dangerous
                    else "not on the allowlist: loading imports it and may run its code"
                )
                out.append(Finding(stream, ev.offset, ev.opcode, "global", ev.target, sev, reason))
        elif ev.opcode == "BUILD":
            f = _build_finding(stream, ev)
            if f is not None:
                out.append(f)
        elif ev.target.startswith("<result of calling"):
            root = ev.target.removeprefix("<result of calling ").rstrip(">").split(" (", 1)[0]
            sev = Severity.dangerous if classify(root) == Severity.dangerous else Severity.unknown
            out.append(
                Finding(
                    stream,
                    ev.offset,
                    ev.opcode,
                    "call",
                    ev.target,
                    sev,
                    "calls the result of another call (a gadget chain; torch refuses it)",
                )
            )
        elif ev.target.startswith("<") and not ev.target.startswith("<extension code"):
            out.append(
                Finding(
                    stream,
                    ev.offset,
                    ev.opcode,
                    "call",
                    ev.target,
                    Severity.unknown,
                    "calls something that is not an imported global",
                )
            )
    return out


def _build_finding(stream: str, ev: Event) -> Finding | None:
    target = ev.target
    if target.startswith("<BUILD on "):
        inner = target.removeprefix("<BUILD on ").removesuffix(">")
        if inner.startswith("<"):
            return Finding(
                stream, ev.offset, "BUILD", "build", target, Severity.unknown, f"BUILD on a plain value {inner}"
            )
        return Finding(
            stream,
            ev.offset,
            "BUILD",
            "build",
            target,
            Severity.dangerous,
            "BUILD on a module, class or function: sets attributes on code at load time",
        )
    base = target.removesuffix(".__setstate__")
    if base in BUILD_TARGETS:
        return None
    if base.startswith("<"):
        return Finding(
            stream, ev.offset, "BUILD", "build", target, Severity.unknown, "BUILD on the result of a call chain"
        )
    if classify(base) is None:
        # An allowlisted global, but not one torch lets BUILD touch (e.g. torch.Size, builtins.set).
        return Finding(
            stream,
            ev.offset,
            "BUILD",
            "build",
            target,
            Severity.unknown,
            f"BUILD on a {base} object: torch only allows it on tensors, parameters and OrderedDict",
        )
    return None  # the global itself is already reported


def _walk_streams(
    data: bytes,
    name: str,
    where: str,
    acc: _Acc,
    *,
    multi: bool,
    complete: bool,
    whole_file: bool = False,
    total: int | None = None,
) -> tuple[str, bool]:
    """Walk every pickle in `data`; return (format, needs_more_data).

    `complete` is False when `data` is only a prefix of the file: any break is then retried with more bytes.
    `whole_file` says `data` is the entire file, so a pickle that runs out of bytes was cut short. `total`
    (the file's size) lets a prefix tell a stream that needs more bytes from one that is broken anyway.
    """
    pos = 0
    fmt = "pickle"
    streams: list[StreamInfo] = []
    findings: list[Finding] = []
    notes: list[str] = []
    errors: list[str] = []
    n = 0
    limit = MAX_STREAMS
    while pos < len(data) and n < limit:
        label = f"{name} #{n + 1}" if multi else name
        try:
            res = walk(data, start=pos, where=f"{where}:{label}", total=None if complete else total)
        except InspectError as exc:
            if not complete and (total is None or exc.rule == "pickle-more"):
                return fmt, True
            if n == 0:
                errors.append(f"{label}: not a readable pickle ({exc.message})")
            else:
                notes.append(f"{len(data) - pos:,} trailing bytes after pickle #{n} are not a pickle")
            break
        if res.error and not complete and (total is None or res.rule == "pickle-more"):
            return fmt, True
        gl: dict[str, None] = {}
        calls = 0
        for ev in res.events:
            if ev.kind == "global":
                gl.setdefault(ev.target, None)
            else:
                calls += 1
        streams.append(StreamInfo(label, pos, res.end, res.protocol, tuple(gl), calls, res.error))
        findings.extend(_event_findings(label, res.events))
        if res.error:
            if whole_file and res.end >= len(data) and ("remain" in res.error or "no end of line" in res.error):
                errors.append(
                    f"truncated: the file ends inside {label} at byte {len(data):,}; the download is incomplete "
                    "(findings before the cut are listed)"
                )
            else:
                errors.append(f"{label}: stopped at a broken opcode ({res.error}); findings before it are listed")
            break
        n += 1
        pos = res.end
        if n == 1 and type(res.value) is int and res.value == LEGACY_MAGIC:
            fmt = "torch-legacy"
            limit = 5  # magic, protocol, sys info, object, storage keys; then raw storage bytes
        if not multi:
            break
    else:
        if pos < len(data) and fmt == "pickle" and n >= MAX_STREAMS:
            errors.append(f"more than {MAX_STREAMS} concatenated pickles; the rest was not scanned")
    if fmt == "torch-legacy" and n < 5 and not errors:
        if not complete:
            return fmt, True
        cut = "; the download is incomplete" if whole_file else ""
        errors.append(f"legacy torch file ends after {n} of its 5 pickles{cut}")
    if pos >= len(data) and not complete and fmt == "pickle":
        return fmt, True  # the next stream may start past this prefix
    if multi and len(streams) == 1 and not errors:
        # One pickle, as expected: name it by its member/file alone.
        label = streams[0].name
        streams[0] = StreamInfo(
            name, *[getattr(streams[0], k) for k in ("start", "end", "protocol", "globals", "calls", "error")]
        )
        findings = [
            Finding(name, *[getattr(f, k) for k in ("offset", "opcode", "kind", "target", "severity", "reason")])
            if f.stream == label
            else f
            for f in findings
        ]
    acc.streams.extend(streams)
    for f in findings:
        acc.add(f)
    acc.notes.extend(notes)
    acc.errors.extend(errors)
    return fmt, False


def _check_legacy_table(src: ByteSource, name: str, acc: _Acc) -> None:
    """A legacy file whose pickles are clean: its storage table must fit in the file too (a cut download is
    never reported clean). Only a `truncated` verdict counts here; the pickles were already judged."""
    from .torch_legacy import cut_storage_table

    cut: InspectError | None
    try:
        cut = cut_storage_table(src, FIRST_READ)
    except InspectError as exc:
        cut = exc if exc.rule == "truncated" else None
    if cut is not None:
        acc.errors.append(cut.message)


def _scan_raw(src: ByteSource, acc: _Acc) -> str:
    size = src.size
    n = min(size, FIRST_READ)
    while True:
        data = src.read_exact(0, n, "pickle")
        complete = n >= size
        fmt, more = _walk_streams(
            data, "pickle", src.name, acc, multi=True, complete=complete, whole_file=complete, total=size
        )
        if not more:
            return fmt
        if n >= MAX_PICKLE_BYTES:
            acc.errors.append(f"pickle data beyond {MAX_PICKLE_BYTES:,} bytes was not scanned (scan limit)")
            # Report what the prefix shows, fail closed on the rest.
            _walk_streams(data, "pickle", src.name, acc, multi=True, complete=True)
            return fmt
        n = min(size, n * 4, MAX_PICKLE_BYTES)


def _npy_object_offset(head: bytes, where: str) -> tuple[bool, int]:
    """(holds Python objects, data offset) from a .npy header (parsed as a literal, never evaluated)."""
    if len(head) < 10:
        raise MalformedFileError("npy header is truncated", path=where, rule="npy-header")
    major = head[6]
    if major == 1:
        hlen, start = int.from_bytes(head[8:10], "little"), 10
    elif major in (2, 3):
        if len(head) < 12:
            raise MalformedFileError("npy header is truncated", path=where, rule="npy-header")
        hlen, start = int.from_bytes(head[8:12], "little"), 12
    else:
        raise MalformedFileError(f"unknown npy version {major}", path=where, rule="npy-header")
    if hlen > MAX_NPY_HEADER or start + hlen > len(head):
        raise MalformedFileError(f"npy header length {hlen:,} is not plausible", path=where, rule="npy-header")
    # Python 2 wrote longs as `2L` in the shape (numpy's own test data has `(2L,)`); numpy strips the suffix too.
    text = re.sub(r"(?<=\d)[lL]\b", "", head[start : start + hlen].decode("latin-1"))
    try:
        header = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise MalformedFileError("npy header is not a Python literal", path=where, rule="npy-header") from None
    if not isinstance(header, dict) or "descr" not in header:
        raise MalformedFileError("npy header has no descr", path=where, rule="npy-header")
    return "O" in repr(header["descr"]), start + hlen


def _npy_header_end(head: bytes) -> int:
    """Where a .npy header ends, from its first 12 bytes (a bad version reads a small prefix; parsing says why)."""
    if len(head) >= 10 and head[6] == 1:
        return 10 + int.from_bytes(head[8:10], "little")
    if len(head) >= 12 and head[6] in (2, 3):
        return 12 + min(int.from_bytes(head[8:12], "little"), MAX_NPY_HEADER + 1)
    return 12


def _scan_npy(data: bytes, name: str, where: str, acc: _Acc) -> None:
    has_objects, offset = _npy_object_offset(data[: MAX_NPY_HEADER + 12], f"{where}:{name}")
    if has_objects:
        acc.notes.append(f"{name}: object array, its data is a pickle")
        _walk_streams(data[offset:], name, where, acc, multi=False, complete=True)


def _scan_cut_zip(src: ByteSource, acc: _Acc, cut: MalformedFileError) -> str:
    """A zip cut short (no central directory): its first member is still scanned when it is a stored pickle
    (torch writes data.pkl first), so what the file would import is reported; the cut makes it never clean."""
    from .torchzip import LOCAL_HEADER

    acc.errors.append(cut.message)
    hdr = src.read_at(0, LOCAL_HEADER.size)
    if len(hdr) == LOCAL_HEADER.size:
        _sig, _v, _flags, method, _t, _d, _crc, _cs, _us, n_name, n_extra = LOCAL_HEADER.unpack(hdr)
        member = src.read_at(LOCAL_HEADER.size, n_name).decode("utf-8", "replace")
        if member.lower().endswith(".pkl") and method == 0:
            start = LOCAL_HEADER.size + n_name + n_extra
            data = src.read_at(start, min(max(src.size - start, 0), MAX_PICKLE_BYTES))
            _walk_streams(data, member, src.name, acc, multi=False, complete=True)
    return "torch-zip"


MAX_ZIP_DEPTH = 4  # zips inside zips, each member inside the same inflate caps
SNIFF_READ = 4096  # first bytes of a member read to tell a pickle from tensor data


class MemorySource:
    """A zip member held in memory, as a byte source (a zip inside a zip)."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data = data
        self.name = name
        self.size = len(data)

    def read_at(self, offset: int, n: int) -> bytes:
        return self.data[offset : offset + n]

    def read_exact(self, offset: int, n: int, what: str) -> bytes:
        from .source import read_exact

        return read_exact(self, offset, n, what)

    def close(self) -> None:
        pass


def _member_head(src: ByteSource, info: Any, n: int) -> bytes:
    """The first `n` bytes of a member (a stored member is sliced, a deflated one inflated only that far)."""
    import zipfile
    import zlib

    from .torchzip import member_start

    start = member_start(src, info)
    if info.compress_type == zipfile.ZIP_STORED:
        return src.read_at(start, min(n, info.compress_size))
    if info.compress_type != zipfile.ZIP_DEFLATED:
        return b""
    inflater = zlib.decompressobj(-15)
    try:
        return inflater.decompress(src.read_at(start, min(info.compress_size, max(n, 1 << 16))), n)
    except zlib.error:
        return b""


def _sniff_pickle(data: bytes, total: int) -> bool:
    """Whether a member of any name is a pickle: a protocol 2+ header (0x80, 2-5) or a valid first opcode,
    and then a walk that reaches STOP (or needs more bytes than `data` holds but the member has). A protocol
    2+ stream that breaks after naming a global is a pickle too: CPython would have imported that global.
    Tensor data rarely walks at all; it would have to spell a dotted name in text lines to count."""
    if not data or data[0] not in PICKLE_START:
        return False
    try:
        res = walk(data, where="<sniff>", total=total)
    except InspectError as exc:  # (a limit hit before any global: tensor data declaring a huge LONG4)
        return exc.rule == "pickle-more"
    if res.error is None or res.rule == "pickle-more":
        return True
    return any(ev.kind == "global" and _IDENT.fullmatch(ev.target) for ev in res.events)


_IDENT = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+")


def _scan_nemo(src: ByteSource, acc: _Acc) -> None:
    """A `.nemo` tar: every `model_weights.ckpt` inside (what NeMo hands to torch.load), located in place and
    scanned as the torch archive or pickle it is; the tar itself is never extracted."""
    from .nemo import checkpoint
    from .window import Window

    _first, ckpts, _files = checkpoint(src)
    for m in ckpts:
        win = Window(src, m.offset_data, m.size, f"{src.name}:{m.name}")
        head = win.read_at(0, min(win.size, 8))
        if head[:4] == ZIP_MAGIC:
            _scan_zip(win, acc, prefix=f"{m.name}/")
        else:
            _scan_raw(win, acc)


def _scan_zip(src: ByteSource, acc: _Acc, depth: int = 0, prefix: str = "") -> str:
    """Every member by content, whatever its name: `.pkl` members must be pickles; any other member that
    sniffs as a pickle (torch, joblib or a loader tricked into reading it would unpickle it) is walked too,
    and a member that is itself a zip is opened, `MAX_ZIP_DEPTH` deep, inside the same inflate caps."""
    from .torchzip import open_zip, read_member

    try:
        infos = open_zip(src)
    except MalformedFileError as exc:
        if exc.rule != "truncated" or depth:
            raise
        return _scan_cut_zip(src, acc, exc)
    fmt = "zip"
    names = {i.filename.lower() for i in infos}
    if any(n.endswith("data.pkl") for n in names):
        fmt = "torch-zip"
    elif any(n.endswith(".npy") for n in names):
        fmt = "npz"
    if any(n.endswith("constants.pkl") for n in names) and any("/code/" in f"/{n}" for n in names):
        fmt = "torchscript"
        acc.torchscript = True
        for info in infos:
            cut = f"/{info.filename}".lower().find("/code/")
            if cut >= 0 and not info.is_dir():
                folder = f"{prefix}{info.filename[: cut + 5]}"  # `archive/code/`, as torch lays it out
                rel = info.filename[cut + 5 :]
                acc.add(Finding(folder, 0, "-", Allow.torchscript.value, rel, Severity.code, TORCHSCRIPT_CODE))
    found = 0
    for info in infos:
        lower = info.filename.lower()
        label = f"{prefix}{info.filename}"
        if info.is_dir():
            continue
        try:
            if lower.endswith(".pkl") or lower.endswith(".npy"):
                data = read_member(src, info, MAX_PICKLE_BYTES)
            else:
                head = _member_head(src, info, SNIFF_READ)
                if head[:4] == ZIP_MAGIC and depth < MAX_ZIP_DEPTH:
                    inner = MemorySource(read_member(src, info, MAX_PICKLE_BYTES), f"{src.name}:{label}")
                    _scan_zip(inner, acc, depth + 1, f"{label}/")
                    continue
                if not _sniff_pickle(head, info.file_size):
                    continue
                data = head if len(head) >= info.file_size else read_member(src, info, MAX_PICKLE_BYTES)
        except InspectError as exc:
            acc.errors.append(f"{label}: could not be read ({exc.message})")
            continue
        found += 1
        if lower.endswith(".npy"):
            try:
                _scan_npy(data, label, src.name, acc)
            except InspectError as exc:
                acc.errors.append(f"{label}: {exc.message}")
        else:
            # torch reads one pickle per member; a second one hidden after it is still reported.
            _walk_streams(data, label, src.name, acc, multi=True, complete=True)
    if "config.json" in names and not depth:  # a Keras v3 `.keras` archive: config.json, model.weights.h5
        fmt = "keras"
        info = next(i for i in infos if i.filename.lower() == "config.json")
        try:
            _scan_keras_config(read_member(src, info, MAX_KERAS_CONFIG), "config.json", acc)
        except InspectError as exc:
            acc.errors.append(f"config.json: could not be read ({exc.message})")
        return fmt
    if not found and not depth:
        acc.notes.append("zip archive without pickle members")
    return fmt


MAX_KERAS_CONFIG = 64 << 20
# TensorFlow ops that read or write files or run Python, as modelscan reports them (its unsafe_tf_operators:
# ReadFile, WriteFile) plus the py_func family, which runs a Python function in the loading process.
TF_UNSAFE_OPS = frozenset({"ReadFile", "WriteFile", "PyFunc", "PyFuncStateless", "EagerPyFunc", "MatchingFiles"})


def _keras_lambdas(config: Any, acc: _Acc, stream: str) -> None:
    """Every `Lambda` layer in a Keras model config (iteratively: configs nest models in models)."""
    todo: list[Any] = [config]
    seen = 0
    while todo and seen < 1_000_000:
        node = todo.pop()
        seen += 1
        if isinstance(node, dict):
            if node.get("class_name") == "Lambda":
                cfg = node.get("config")
                name = str(cfg.get("name", "?")) if isinstance(cfg, dict) else "?"
                acc.add(
                    Finding(stream, 0, "-", "keras-lambda", f"Lambda layer {name}", Severity.dangerous,
                            "Keras Lambda layer: marshalled Python bytecode in the config, run when the model loads")
                )  # fmt: skip
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)


def _scan_keras_config(raw: bytes, stream: str, acc: _Acc) -> None:
    import json

    try:
        config = json.loads(raw)
    except (ValueError, RecursionError):
        acc.errors.append(f"{stream}: not readable JSON")
        return
    _keras_lambdas(config, acc, stream)


def _scan_h5(src: ByteSource, acc: _Acc) -> None:
    """A Keras `.h5` file: its root `model_config` attribute (JSON) read with h5py, metadata only (no
    dataset is read). Without h5py, or without that attribute, the file cannot be scanned: never "clean"."""
    try:
        import h5py  # type: ignore[import-untyped]
    except ImportError:
        raise UnsupportedFormatError("an HDF5 file: scanning it needs h5py (not installed)", path=src.name) from None
    from .source import SourceIO

    try:
        with h5py.File(SourceIO(src), "r") as h5:
            raw = h5.attrs.get("model_config")
    except (OSError, ValueError, KeyError) as exc:
        raise MalformedFileError(f"not a readable HDF5 file ({exc})", path=src.name, rule="h5") from None
    if raw is None:
        raise UnsupportedFormatError("an HDF5 file without a Keras model_config: mi cannot scan it", path=src.name)
    data = raw.encode() if isinstance(raw, str) else bytes(raw)
    if len(data) > MAX_KERAS_CONFIG:
        raise LimitExceededError(f"model_config of {len(data):,} bytes", path=src.name, rule="h5")
    _scan_keras_config(data, "model_config", acc)


def _scan_saved_model(src: ByteSource, acc: _Acc) -> None:
    """TF SavedModel `saved_model.pb`: every node of every graph and function, by op name, with the wire reader
    (SavedModel.meta_graphs=2 → MetaGraphDef.graph_def=2 → GraphDef.node=1 / library=2 → FunctionDefLibrary.
    function=1 → FunctionDef.node_def=3; NodeDef.name=1, op=2; FunctionDef.signature=1 → OpDef.name=1)."""
    from .protobuf import LEN, WireReader

    r = WireReader(src, "SavedModel")

    def subs(start: int, end: int, number: int, depth: int) -> list[tuple[int, int]]:
        return [
            (f.value, f.value + f.length) for f in r.fields(start, end, depth) if f.number == number and f.wire == LEN
        ]

    def node(start: int, end: int, depth: int, where: str) -> None:
        name = op = ""
        for f in r.fields(start, end, depth):
            if f.wire == LEN and f.number in (1, 2):
                text = r.read_str(f, 1 << 16, "node name")
                name, op = (text, op) if f.number == 1 else (name, text)
        if op in TF_UNSAFE_OPS:
            acc.add(Finding(where, start, op, "tf-op", f"{op} node {name}", Severity.dangerous,
                            "TensorFlow op that reads or writes files or runs Python when the graph runs"))  # fmt: skip

    for i, (ms, me) in enumerate(subs(0, src.size, 2, 0)):
        for gs, ge in subs(ms, me, 2, 1):
            for ns, ne in subs(gs, ge, 1, 2):
                node(ns, ne, 3, f"meta_graph {i + 1} graph")
            for ls, le in subs(gs, ge, 2, 2):
                for fs, fe in subs(ls, le, 1, 3):
                    for ns, ne in subs(fs, fe, 3, 4):
                        node(ns, ne, 5, f"meta_graph {i + 1} function")


def _record(res: Any, label: str, start: int, acc: _Acc) -> None:
    """Add one walked stream (and its findings) to the report."""
    gl: dict[str, None] = {}
    calls = 0
    for ev in res.events:
        if ev.kind == "global":
            gl.setdefault(ev.target, None)
        else:
            calls += 1
    acc.streams.append(StreamInfo(label, start, res.end, res.protocol, tuple(gl), calls, res.error))
    for f in _event_findings(label, res.events):
        acc.add(f)
    if res.error:
        acc.errors.append(f"{label}: stopped at a broken opcode ({res.error}); findings before it are listed")


def _tar_records(data: bytes, name: str, where: str, acc: _Acc, fixed: int | None) -> None:
    """A legacy tar `storages` / `tensors` member: a count pickle, then per record a pickle plus raw bytes.

    torch/serialization.py `legacy_load`: each storage is `(key, location, storage_type)` then an 8-byte
    element count and the elements; each tensor is `(key, storage_id, type)` then ndim, 4 bytes, sizes,
    strides and offset as int64 (`fixed` is None for storages, whose data length depends on the type).
    """
    from ..dtypes import TORCH_STORAGE_DTYPES, lookup
    from .pickle_walk import Global

    res = walk(data, start=0, where=f"{where}:{name}")
    _record(res, f"{name} #1", 0, acc)
    count = res.value
    if res.error or type(count) is not int or count < 0 or count > len(data):
        if not res.error:
            acc.errors.append(f"{name}: record count {count!r} is not plausible")
        return
    pos = res.end
    for i in range(count):
        res = walk(data, start=pos, where=f"{where}:{name}")
        _record(res, f"{name} #{i + 2}", pos, acc)
        if res.error:
            return
        pos = res.end
        if fixed is None:
            t = res.value
            cls = t[2] if isinstance(t, tuple) and len(t) == 3 else None
            qual = cls.qualname if isinstance(cls, Global) else ""
            if not (qual.startswith("torch.") and qual[6:] in TORCH_STORAGE_DTYPES) or pos + 8 > len(data):
                acc.errors.append(f"{name}: record {i + 1} is not (key, location, storage type); rest not scanned")
                return
            elem = max(lookup(TORCH_STORAGE_DTYPES[qual[6:]]).bits, 8) // 8  # a QUInt4x2Storage counts bytes
            n = int.from_bytes(data[pos : pos + 8], "little", signed=True)
            pos += 8 + n * elem
        else:
            if pos + 8 > len(data):
                break
            ndim = int.from_bytes(data[pos : pos + 4], "little", signed=True)
            pos += 8 + 16 * max(ndim, 0) + fixed
        if pos > len(data) or pos < 0:
            acc.errors.append(f"{name}: record {i + 1} runs past the end of the member")
            return
    if pos < len(data):  # storages: the storage views pickle follows
        res = walk(data, start=pos, where=f"{where}:{name}")
        _record(res, f"{name} #{count + 2}", pos, acc)


def _scan_tar(src: ByteSource, acc: _Acc) -> str:
    """The tar-wrapped legacy torch format: members sys_info, pickle, storages, tensors."""
    import tarfile

    from .source import SourceIO

    try:
        with tarfile.open(fileobj=SourceIO(src), mode="r:") as tf:
            members: dict[str, bytes] = {}
            for m in tf:
                if len(members) > 100:
                    raise MalformedFileError("tar archive with more than 100 members", path=src.name, rule="tar")
                if m.isfile() and m.name in ("sys_info", "pickle", "storages", "tensors"):
                    if m.size > min(src.size, MAX_PICKLE_BYTES):
                        raise LimitExceededError(f"tar member {m.name} is {m.size:,} bytes", path=src.name, rule="tar")
                    fh = tf.extractfile(m)
                    members[m.name] = fh.read() if fh is not None else b""
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise MalformedFileError(f"not a readable tar archive ({exc})", path=src.name, rule="tar") from None
    for name in ("sys_info", "pickle"):
        if name in members:
            _walk_streams(members[name], name, src.name, acc, multi=True, complete=True)
    try:
        if "storages" in members:
            _tar_records(members["storages"], "storages", src.name, acc, None)
        if "tensors" in members:
            _tar_records(members["tensors"], "tensors", src.name, acc, 8)
    except InspectError as exc:
        acc.errors.append(exc.message)
    missing = {"sys_info", "pickle", "storages", "tensors"} - set(members)
    if missing:
        acc.notes.append(f"tar archive without {', '.join(sorted(missing))}")
    return "torch-legacy-tar"


def _validate_other(src: ByteSource, head: bytes, name: str) -> str | None:
    """The format name when a registered non-pickle reader accepts the file (it is then validated)."""
    from .base import loaders

    lower = name.lower()
    for ld in loaders():
        if ld.name.startswith("torch"):
            continue
        if ld.sniff(head, src.size) or any(lower.endswith(e) for e in ld.extensions):
            ld.read(src, name)  # raises on a malformed file: it is then not "clean"
            return ld.name
    return None


def _validate_quietly(src: ByteSource, head: bytes, name: str) -> str | None:
    try:
        return _validate_other(src, head, name)
    except InspectError:
        return None


def _looks_like_pickle(head: bytes) -> bool:
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    return bool(head) and head[0] in PICKLE_START


def scan_source(src: ByteSource, name: str) -> FileScanReport:
    """Scan one opened file. Never raises for content problems: they end up in `error`."""
    acc = _Acc()
    fmt = "unknown"
    try:
        head = src.read_at(0, 512)
        lower = name.lower()
        # What `mi inspect` would say first: empty, a Git LFS pointer, a page or text saved under a model's name.
        # Text that may be a protocol 0/1 pickle is never taken for text (identify leaves it to the walk below).
        not_model = identify(src, head)
        if not_model is not None and not (lower.endswith(PICKLE_EXTS) and _sniff_pickle(head, src.size)):
            raise not_model  # (text that walks as a pickle, such as `}.` or `\x88.`, is scanned as one)
        from .torch_legacy import is_legacy_tar

        if head[:4] == ZIP_MAGIC:
            fmt = _scan_zip(src, acc)
        elif is_legacy_tar(head):
            fmt = _scan_tar(src, acc)
        elif head[:6] == NPY_MAGIC:
            fmt = "npy"
            # The header first: a numeric array's data is never read, only an object array's (a pickle).
            header = src.read_at(0, min(src.size, _npy_header_end(head)))
            has_objects, _offset = _npy_object_offset(header, f"{src.name}:array")
            data = header
            if has_objects:
                data = src.read_at(0, min(src.size, MAX_PICKLE_BYTES + MAX_NPY_HEADER))
                if src.size > len(data):
                    acc.errors.append("npy file larger than the scan limit")
            _scan_npy(data, "array", src.name, acc)
        elif lower.rsplit("/", 1)[-1] == "saved_model.pb":
            fmt = "tf-savedmodel"
            _scan_saved_model(src, acc)
        elif lower.endswith(".nemo"):
            fmt = "nemo"
            _scan_nemo(src, acc)
        elif head[:8] == b"\x89HDF\r\n\x1a\n":
            fmt = "keras-h5"
            _scan_h5(src, acc)
        elif head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
            raw = _Acc()
            fmt = _scan_raw(src, raw)
            if fmt == "torch-legacy" and not raw.findings and not raw.errors:
                _check_legacy_table(src, name, raw)
            # A safetensors header length such as 0x0280 also starts with PROTO 2: when not even the first
            # pickle parses, the file is the other format if its reader validates it (what torch.load sees is
            # then an unreadable pickle, not code to run).
            other = _validate_quietly(src, head, name) if not raw.streams and not raw.findings else None
            if other is not None:
                fmt = other
                acc.notes.append(f"{other} file: holds no pickle")
            else:
                acc.streams.extend(raw.streams)
                for f in raw.findings:
                    acc.add(f)
                acc.more += raw.more
                acc.notes.extend(raw.notes)
                acc.errors.extend(raw.errors)
        else:
            other = _validate_other(src, head, name)
            if other is not None:
                fmt = other
                acc.notes.append(f"{other} file: holds no pickle")
            elif lower.endswith(PICKLE_EXTS) and _looks_like_pickle(head):
                fmt = _scan_raw(src, acc)
            else:
                raise UnsupportedFormatError("not a pickle or a model file this tool reads", path=src.name)
    except LimitExceededError as exc:
        acc.errors.append(exc.message)
    except InspectError as exc:
        if not acc.findings:
            if exc.path:
                raise
            raise type(exc)(exc.message, path=src.name, rule=exc.rule) from None  # every error names the file
        acc.errors.append(exc.message)
    return FileScanReport(
        path=src.name,
        format=fmt,
        streams=tuple(acc.streams),
        findings=tuple(acc.findings),
        more_findings=acc.more,
        notes=tuple(acc.notes),
        error="; ".join(acc.errors) if acc.errors else None,
    )


def error_report(path: str, exc: InspectError) -> FileScanReport:
    """The report for a file that could not be opened or scanned at all."""
    return FileScanReport(path=path, format="unknown", error=exc.message)


def pickle_magic(head: bytes) -> bool:
    """True when a file's first bytes are a zip, an npy array or a binary pickle (worth scanning whatever its name)."""
    return head[:4] == ZIP_MAGIC or head[:6] == NPY_MAGIC or (len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5)


__all__ = [
    "TORCHSCRIPT_CODE",
    "Allow",
    "FileScanReport",
    "Finding",
    "MemorySource",
    "ScanReport",
    "StreamInfo",
    "error_report",
    "pickle_magic",
    "scan_source",
]
