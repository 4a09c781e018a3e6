"""`open_model`: a path or URL → one `TensorInventory`, headers only."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .paths import is_url

if TYPE_CHECKING:
    from ..inventory import TensorInventory
    from ..loaders.base import Progress
    from ..loaders.folder import ModelDir
    from ..remote.http import Settings


def open_model(
    path: str | os.PathLike[str],
    *,
    endpoint: str | None = None,
    token: str | None = None,
    progress: Progress | None = None,
    settings: Settings | None = None,
    config_beside: bool = False,
    variant: str | None = None,
) -> TensorInventory:
    """Read a model file, a sharded `*.index.json`, a model folder or a URL into a `TensorInventory`.

    URLs (`hf://ORG/NAME[@REV][/PATH]`, `https://…`, fsspec URLs) fetch header ranges only; the inventory's
    `read` says what crossed the network. `endpoint` / `token` apply to URLs; `progress` is told about
    multi-file remote reads. Never imports or runs anything from the file.

    A folder's `config.json` is always read (`inv.config`); with `config_beside` so is the one next to a
    single model file (not next to a `.gguf`, whose header holds its own hyperparameters). `variant` picks a
    diffusers pipeline folder's weight variant (`fp16`, …).

    Example:
        >>> inv = open_model("gpt2/")  # doctest: +SKIP
        >>> print(inv.format, inv.total_params)  # doctest: +SKIP
        safetensors 124439808
    """
    from ..loaders.folder import LocalDir, load_dir, load_file
    from ..loaders.source import path_kind

    if isinstance(path, str) and is_url(path):
        return _open_url(
            path,
            endpoint=endpoint,
            token=token,
            progress=progress,
            settings=settings,
            config_beside=config_beside,
            variant=variant,
        )
    p = Path(path)
    display = str(path)
    if path_kind(p, display):
        return load_dir(LocalDir(p, display), variant=variant)
    if variant is not None:
        from ..errors import UsageError

        raise UsageError("--variant picks the weights of a diffusers pipeline folder", path=display, rule="options")
    folder = LocalDir(p.parent, shown={p.name: display})
    config = _config_beside(folder, p.name) if config_beside else None
    return load_file(folder, p.name, display, config=config)


def _config_beside(folder: ModelDir, name: str) -> dict[str, Any] | None:
    """The config.json next to file `name`, read as `load_dir` reads a folder's (None: there is none)."""
    from ..loaders.folder import read_json_source

    if not _reads_config(name) or not folder.exists("config.json"):
        return None
    with folder.open("config.json") as src:
        doc = read_json_source(src, "config-json")
    return doc if isinstance(doc, dict) else None


def _reads_config(name: str) -> bool:
    """Whether a config.json beside this file describes it (a GGUF header describes itself)."""
    return not name.lower().endswith(".gguf")


def _open_url(
    url: str,
    *,
    endpoint: str | None,
    token: str | None,
    progress: Progress | None,
    settings: Settings | None,
    config_beside: bool = False,
    variant: str | None = None,
) -> TensorInventory:
    from ..inventory import ReadStats
    from ..loaders.folder import load_dir, load_file
    from ..remote.dirs import open_target

    started = time.perf_counter()
    target = open_target(url, endpoint=endpoint, token=token, settings=settings)
    with target.session as s:
        if target.name is None:
            inv = load_dir(target.folder, progress, variant)
        else:
            config = _config_beside(target.folder, target.name) if config_beside else None
            inv = load_file(target.folder, target.name, target.display, progress, config=config)
    read = ReadStats(
        bytes_read=s.stats.bytes_read,
        requests=s.stats.requests,
        retries=s.stats.retries,
        revalidated=s.stats.revalidated,
        seconds=round(time.perf_counter() - started, 3),
    )
    return replace(inv, read=read)
