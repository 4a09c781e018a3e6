"""Remote code in a model folder: the Python files `trust_remote_code=True` imports and runs, never run here.

The Hugging Face / ModelScope folder layout ships a model's own classes beside its weights
(`configuration_*.py`, `modeling_*.py`, `tokenization_*.py`, any helper module they import) and names them in
an `auto_map` of `config.json`, `tokenizer_config.json`, `processor_config.json`, … . transformers'
`get_class_from_dynamic_module` reads each entry as `[ORG/REPO--]MODULE.CLASS` (one dot: a file `MODULE.py`
beside the config, or in another repository when `--` names one), copies the file into its module cache and
imports it: every statement in it runs. So every `*.py` file of a model folder (one that holds a config)
counts (the modules import each other), and every `auto_map` entry is tied to the file it points at, or
reported as pointing elsewhere. Scripts in a folder without a config (a folder of plain checkpoints) are not
what from_pretrained imports, and are left out.

The `.py` files are hashed (sha256, read in bounded chunks) and never parsed; the JSON configs are read with
the size-capped reader every config goes through.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InspectError
from .folder import read_json_source
from .source import OpenSource

MAX_CODE_FILES = 1_000  # `.py` files hashed in one folder; more is reported, not read
CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class AutoMapEntry:
    """One `auto_map` entry: `config` (the JSON file, folder-relative) maps `key` (`AutoModel`) to `ref`."""

    config: str
    key: str
    ref: str  # as written: `modeling_x.MyModel` or `org/repo--modeling_x.MyModel`
    repo: str | None  # the other repository, for `org/repo--…` references
    module: str  # the file transformers imports: `modeling_x.py`, folder-relative (in `repo` when set)
    cls: str


@dataclass(frozen=True, slots=True)
class CodeFile:
    """A Python file of the folder: loading with trust_remote_code imports it (when an entry points at it, or a
    module that does imports it)."""

    path: str  # folder-relative
    size: int
    sha256: str
    entries: tuple[AutoMapEntry, ...]


@dataclass(frozen=True, slots=True)
class RemoteCode:
    """Everything in a folder that `trust_remote_code=True` would fetch or run."""

    files: tuple[CodeFile, ...] = ()
    foreign: tuple[AutoMapEntry, ...] = ()  # entries pointing into another repository
    missing: tuple[AutoMapEntry, ...] = ()  # entries naming a module that is not in the folder
    errors: tuple[tuple[str, str], ...] = ()  # (path, message): a config or code file that could not be read
    more_files: int = 0
    folder: str = ""  # the folder as shown to the user

    @property
    def found(self) -> bool:
        return bool(self.files or self.foreign or self.missing)


def is_code_name(name: str) -> bool:
    """A Python source file (what `trust_remote_code` imports)."""
    return name.lower().endswith(".py")


def is_config_name(name: str) -> bool:
    """A JSON file that may hold an `auto_map` (`config.json`, `tokenizer_config.json`, `processor_config.json`,
    `preprocessor_config.json`, `generation_config.json`, …)."""
    base = posixpath.basename(name).lower()
    return base.endswith("config.json")


def auto_map_entries(doc: Any, config: str) -> list[AutoMapEntry]:
    """The entries of one config's `auto_map` (a mapping of class keys to a reference, or to a list of
    references such as `[slow, fast]` tokenizers, `null` for none); anything else in it is ignored."""
    if not isinstance(doc, dict):
        return []
    amap = doc.get("auto_map")
    if not isinstance(amap, dict):
        return []
    folder = posixpath.dirname(config)
    out: list[AutoMapEntry] = []
    for key, value in amap.items():
        refs = value if isinstance(value, list) else [value]
        for ref in refs:
            if isinstance(ref, str) and ref:
                out.append(_entry(config, folder, str(key), ref))
    return out


def _entry(config: str, folder: str, key: str, ref: str) -> AutoMapEntry:
    repo: str | None = None
    local = ref
    if "--" in ref:  # transformers: `repo_id, class_reference = class_reference.split("--")`
        repo, local = ref.split("--", 1)
    module, _, cls = local.rpartition(".")
    if not module:
        module, cls = local, ""
    path = posixpath.normpath(posixpath.join(folder, module + ".py")) if repo is None else module + ".py"
    return AutoMapEntry(config, key, ref, repo, path, cls)


def find_remote_code(names: Sequence[str], open_file: Callable[[str], OpenSource], folder: str = "") -> RemoteCode:
    """The remote code among `names` (folder-relative, every file of the folder), read through `open_file`."""
    entries: list[AutoMapEntry] = []
    errors: list[tuple[str, str]] = []
    for name in names:
        if not is_config_name(name):
            continue
        try:
            with open_file(name) as src:
                entries.extend(auto_map_entries(read_json_source(src, "auto-map"), name))
        except InspectError as exc:
            errors.append((name, str(exc)))
    # Python counts where from_pretrained could import it: in a folder that holds a config (a model folder), or
    # named by an auto_map. Scripts in a folder of plain checkpoints are not remote code.
    model_dirs = {posixpath.dirname(n) for n in names if is_config_name(n)}
    mapped = {e.module for e in entries if e.repo is None}
    code_names = [n for n in names if is_code_name(n) and (posixpath.dirname(n) in model_dirs or n in mapped)]
    present = set(code_names)
    by_module: dict[str, list[AutoMapEntry]] = {}
    for e in entries:
        if e.repo is None:
            by_module.setdefault(e.module, []).append(e)
    files: list[CodeFile] = []
    for name in code_names[:MAX_CODE_FILES]:
        try:
            with open_file(name) as src:
                size, digest = src.size, _sha256(src)
        except InspectError as exc:
            errors.append((name, str(exc)))
            continue
        files.append(CodeFile(name, size, digest, tuple(by_module.get(name, ()))))
    foreign = tuple(e for e in entries if e.repo is not None)
    missing = tuple(e for e in entries if e.repo is None and e.module not in present)
    more = max(0, len(code_names) - MAX_CODE_FILES)
    return RemoteCode(tuple(files), foreign, missing, tuple(errors), more, folder)


def _sha256(src: OpenSource) -> str:
    h = hashlib.sha256()
    for start in range(0, src.size, CHUNK):
        h.update(src.read_exact(start, min(CHUNK, src.size - start), "Python file"))
    return h.hexdigest()
