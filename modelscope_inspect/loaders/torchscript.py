"""TorchScript archives (`torch.jit.save`), read without running their code.

A TorchScript archive is a torch zip with more in it (torch/csrc/jit/serialization/export_module.cpp):

    <folder>/data.pkl        the module objects: `__torch__.<path>.<Class>` built with NEWOBJ, their attributes
                             (parameters, buffers, submodules, plain values) set by BUILD; tensors as in torch.save
    <folder>/data/<key>      the storages of data.pkl
    <folder>/constants.pkl   a tuple of the tensor constants the code refers to as `CONSTANTS.c0`, `c1`, …
    <folder>/constants/<key> their storages
    <folder>/code/…/*.py     the compiled classes as TorchScript source: each module class starts with
                             `__parameters__ = ["weight", "bias", ]` and `__buffers__ = [...]`

`torch.jit.load` compiles and runs that code. Here the code is only read as text, for the two header lines that
tell a module's parameters from its buffers (regular expressions over the generated lines, no Python parser);
the pickles are walked like any torch pickle, with three TorchScript helpers that only return their argument
allowed for reading (`safety.TORCHSCRIPT_HELPERS`).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass

MAX_CODE_FILE = 4 << 20  # one generated source file (a large model's classes are a few hundred KiB)
MAX_CODE_TOTAL = 64 << 20  # all of them
MAX_CODE_FILES = 10_000

_CLASS = re.compile(r"^class (\w+)\(Module\):[ \t]*$", re.MULTILINE)
_HEADER = re.compile(r"^  (__parameters__|__buffers__) = \[(.*)\][ \t]*$", re.MULTILINE)
_NAME = re.compile(r'"(\w+)"')
_MANGLE = re.compile(r"\.___torch_mangle_\d+")

NOTE = (
    "TorchScript archive: torch.jit.load also runs the TorchScript code in its code/ folder; "
    "mi read only its tensors and the parameter and buffer names its classes declare"
)


@dataclass(frozen=True, slots=True)
class ScriptClass:
    """What a compiled module class declares: which attributes are parameters and which are buffers."""

    parameters: tuple[str, ...]
    buffers: tuple[str, ...]


def is_torchscript(names: set[str], prefix: str) -> bool:
    """True for a torch zip that `torch.jit.save` wrote (lower-case member `names`, archive folder `prefix/`)."""
    return f"{prefix}constants.pkl" in names and any(n.startswith(f"{prefix}code/") for n in names)


def demangle(qualname: str) -> str:
    """A compiled class as people know it: `__torch__.torch.nn.modules.linear.___torch_mangle_0.Linear` →
    `torch.nn.modules.linear.Linear`."""
    return _MANGLE.sub("", qualname).removeprefix("__torch__.")


def code_members(infos: list[zipfile.ZipInfo], prefix: str) -> list[tuple[zipfile.ZipInfo, str]]:
    """The generated source files and the module each one defines (`code/__torch__/a/b.py` → `__torch__.a.b`)."""
    out: list[tuple[zipfile.ZipInfo, str]] = []
    start = f"{prefix}code/"
    for info in infos:
        lower = info.filename.lower()
        if lower.startswith(start) and lower.endswith(".py") and len(out) < MAX_CODE_FILES:
            module = info.filename[len(start) : -3].replace("/", ".")
            out.append((info, module))
    return out


def parse_classes(module: str, text: str) -> dict[str, ScriptClass]:
    """The module classes one generated source file declares, by qualified name."""
    found: dict[str, ScriptClass] = {}
    heads = list(_CLASS.finditer(text))
    for i, head in enumerate(heads):
        body = text[head.end() : heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        lists: dict[str, tuple[str, ...]] = {"__parameters__": (), "__buffers__": ()}
        for m in _HEADER.finditer(body[:65536]):
            lists[m.group(1)] = tuple(_NAME.findall(m.group(2)))
        found[f"{module}.{head.group(1)}"] = ScriptClass(lists["__parameters__"], lists["__buffers__"])
    return found


__all__ = ["NOTE", "ScriptClass", "code_members", "demangle", "is_torchscript", "parse_classes"]
