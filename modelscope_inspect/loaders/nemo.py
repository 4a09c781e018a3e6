"""NeMo `.nemo` archives: a tar of `model_config.yaml` and `model_weights.ckpt` (a `torch.save` zip).

The tar's member headers are walked in place (`tarfile` over the byte source, never extracting): each header says
where its member's bytes lie, so the checkpoint is read through the torch zip reader by byte range, a window on
the archive. Only plain files are used; any member name that is absolute or climbs out with `..` (what
`tar -x` of a hostile archive would write outside the folder), a link, or a sparse member makes the archive
malformed. The YAML config is not parsed as YAML (no loader runs on it): its top-level `target:` line names the
model class. A gzip-compressed `.nemo` cannot be read in place and is refused with that reason.
"""

from __future__ import annotations

import re
import tarfile
from typing import Any

from ..errors import LimitExceededError, MalformedFileError, UnsupportedFormatError
from .base import FileScan
from .source import ByteSource, SourceIO
from .window import Window

MAX_MEMBERS = 100_000
MAX_CONFIG = 16 << 20
WEIGHTS = "model_weights.ckpt"
CONFIG = "model_config.yaml"
_TARGET = re.compile(rb"^target:\s*['\"]?([\w.]+)", re.MULTILINE)


def _clean(name: str) -> str:
    return name[2:] if name.startswith("./") else name


def members(src: ByteSource) -> list[tarfile.TarInfo]:
    """The tar's member headers, refusing names that lead out of the archive and members that are not files."""
    where = src.name
    if src.read_at(0, 2) == b"\x1f\x8b":
        raise UnsupportedFormatError(
            "a gzip-compressed .nemo: its checkpoint cannot be read in place (un-gzip it first: gunzip -c)",
            path=where,
        )
    found: list[tarfile.TarInfo] = []
    try:
        with tarfile.open(fileobj=SourceIO(src), mode="r:") as tf:
            for m in tf:
                if len(found) >= MAX_MEMBERS:
                    raise LimitExceededError(f"more than {MAX_MEMBERS:,} tar members", path=where, rule="tar")
                name = m.name
                parts = name.replace("\\", "/").split("/")
                if name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", name):
                    raise MalformedFileError(
                        f"tar member {name!r} leads outside the archive's folder (path traversal)",
                        path=where,
                        rule="tar-path",
                    )
                if m.issym() or m.islnk():
                    raise MalformedFileError(
                        f"tar member {name!r} is a link to {m.linkname!r}: refused", path=where, rule="tar-path"
                    )
                if m.issparse():
                    raise MalformedFileError(f"tar member {name!r} is sparse", path=where, rule="tar")
                found.append(m)
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise MalformedFileError(f"not a readable tar archive ({exc})", path=where, rule="tar") from None
    return found


def checkpoint(src: ByteSource) -> tuple[Window, list[tarfile.TarInfo], list[tarfile.TarInfo]]:
    """The archive's `model_weights.ckpt` as a byte window (the shallowest one), with every checkpoint member and
    every file member: what `mi inspect` reads, and what a scan of the pickles inside would walk."""
    files = [m for m in members(src) if m.isfile()]
    ckpts = [m for m in files if _clean(m.name).rsplit("/", 1)[-1] == WEIGHTS]
    if not ckpts:
        raise MalformedFileError(f"tar archive without {WEIGHTS}: not a .nemo model", path=src.name, rule="nemo")
    ckpts.sort(key=lambda m: (_clean(m.name).count("/"), m.name))
    first = ckpts[0]
    return Window(src, first.offset_data, first.size, f"{src.name}:{_clean(first.name)}"), ckpts, files


class NemoLoader:
    """Reads `.nemo` archives: the checkpoint inside through the torch zip reader, by byte range."""

    name: str = "nemo"
    extensions: tuple[str, ...] = (".nemo",)

    def sniff(self, head: bytes, size: int) -> bool:
        return False  # a tar's magic is at byte 257: chosen by extension

    def read(self, src: ByteSource, rel: str) -> FileScan:
        from .torchzip import TorchZipLoader

        window, ckpts, files = checkpoint(src)
        ckpt = ckpts[0]
        scan = TorchZipLoader().read(window, rel)
        details: dict[str, Any] = {"checkpoint": f"{_clean(ckpt.name)} ({ckpt.size:,} bytes)"}
        config = next((m for m in files if _clean(m.name) == CONFIG), None)
        if config is not None and config.size <= MAX_CONFIG:
            text = Window(src, config.offset_data, config.size, CONFIG).read_exact(0, config.size, CONFIG)
            target = _TARGET.search(text)
            if target:
                details["model class"] = target.group(1).decode()
        if len(ckpts) > 1:
            scan.warnings.append(
                f"{len(ckpts)} checkpoints (model-parallel ranks?): read {_clean(ckpt.name)} only, "
                f"not {', '.join(_clean(m.name) for m in ckpts[1:3])}"
            )
        scan.format = "nemo"
        scan.details = {**details, **scan.details}
        return scan
