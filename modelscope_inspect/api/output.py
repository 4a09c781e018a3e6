"""The one guard every written file passes: never over, or inside, an input; never over a file without `--force`.

`mi graph` writes pictures, DOT text, ONNX models and their external data. Before each file is written,
`OutputGuard.check` resolves symlinks on both sides and refuses:
- an output that is an input file (also through a symlink or a hard link);
- an output inside an input folder (a model's folder is never written to, whatever `--force` says);
- an output that is a folder;
- an output that already exists, unless `force` (then it is replaced).
Each refusal is one `UsageError` naming the output, the input and the rule (`output`, `output-exists`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError
from .paths import is_url

if TYPE_CHECKING:
    from ..inventory import TensorInventory


def _real(path: str | Path) -> Path:
    # realpath follows every symlink, a dangling one included (writing through it would create its target).
    return Path(os.path.realpath(os.path.abspath(path)))


@dataclass(frozen=True, slots=True)
class OutputGuard:
    """The inputs a command read (files or folders, as the user named them) and whether `--force` was given."""

    inputs: tuple[str, ...] = ()
    force: bool = False

    def including(self, more: Iterable[str | Path]) -> OutputGuard:
        """This guard with more inputs (the shards an index names, an ONNX model's external data)."""
        extra = tuple(str(p) for p in more if str(p) not in self.inputs)
        return OutputGuard((*self.inputs, *extra), self.force)

    def check(self, out: str | Path, *, existing: bool = True) -> None:
        """Refuse to write `out` (see the module docstring); return when writing it is safe. `existing=False`
        checks the inputs only (a first look, before the model's own files are known)."""
        out = Path(out)
        target = _real(out)
        for shown in self.inputs:
            if not shown or is_url(shown):
                continue  # a URL is read over the network: nothing local to protect
            real = _real(shown)
            same = target == real or _same_file(out, real)
            if same:
                raise UsageError(
                    f"would overwrite the input {_named(shown, real)}; choose another -o", path=str(out), rule="output"
                )
            if real.is_dir() and target.is_relative_to(real):
                raise UsageError(
                    f"is inside the input folder {_named(shown, real)}; nothing is written inside a model's folder, "
                    "choose another -o",
                    path=str(out),
                    rule="output",
                )
        if out.is_dir():
            raise UsageError("is a folder; -o names the file to write", path=str(out), rule="output")
        if existing and (out.exists() or out.is_symlink()) and not self.force:
            raise UsageError("the file exists; pass --force to replace it", path=str(out), rule="output-exists")


def _same_file(out: Path, real: Path) -> bool:
    # A hard link is the same file under another name: realpath cannot see it, the inode can.
    try:
        return out.exists() and real.exists() and os.path.samefile(out, real)
    except OSError:
        return False


def _named(shown: str, real: Path) -> str:
    """The input as the user named it, and where it really is when a symlink leads elsewhere."""
    return shown if real == Path(os.path.abspath(shown)) else f"{shown} (→ {real})"


def model_inputs(path: str, inv: TensorInventory | None = None) -> tuple[str, ...]:
    """`path` and every local file its inventory was read from (an index's shards, a split GGUF's parts,
    ONNX external data): what an output must never replace."""
    if is_url(path) or inv is None:
        return (path,)
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    return (path, *(str(folder / f.path) for f in inv.files))


__all__ = ["OutputGuard", "model_inputs"]
