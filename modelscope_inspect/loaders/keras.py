"""Keras and TensorFlow HDF5 weights: Keras 3 `.keras` archives, `.weights.h5`, legacy Keras 2 `.h5` and HF
`tf_model.h5`, read as metadata only.

HDF5 is read through `h5py` (the `[keras]` extra) over a file object on the byte source, so only the blocks
holding the object headers are fetched, locally or by range over a URL; no dataset is ever read. The walk keeps
to hard links (an HDF5 external link or external storage would open another file: refused), visits each object
once, and has bounds on depth, object count and attribute bytes. A dataset must store the bytes its shape and
type declare (an uncompressed one that stores fewer, such as one declaring huge dims, is malformed).

Names follow the module tree Keras itself prints (`dense_1/kernel`):
- Keras 3 (`.keras`, `.weights.h5`): `layers/<storage key>/vars/<i>`, nested for sub-layers; each `vars` group
  carries the layer's name. The variables are numbered, so their names come from the layer's class in the
  archive's `config.json` (Dense: kernel, bias; BatchNormalization: gamma, beta, moving_mean, moving_variance …)
  and stay numbers for classes not known here.
- Keras 2 / `tf_model.h5`: `layer_names` on the root (or `model_weights`), `weight_names` on each layer group.
Trainable or not comes from the config (a layer with `trainable: false`) and from what Keras never trains
(BatchNormalization's moving statistics); non-trainable weights are kind `buffer` in the model section, so
`total_params` is what `model.count_params()` gives.

A `.keras` archive is a zip (`metadata.json`, `config.json`, `model.weights.h5`) whose weights member is stored
uncompressed, read in place through a byte window.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from typing import Any

from ..dtypes import lookup
from ..errors import LimitExceededError, MalformedFileError, MissingDependencyError, UnsupportedFormatError
from ..inventory import TensorRecord
from .base import FileScan
from .source import ByteSource, SourceIO
from .window import Window

H5_MAGIC = b"\x89HDF\r\n\x1a\n"
KERAS_MEMBERS = ("metadata.json", "config.json", "model.weights.h5")
MAX_OBJECTS = 200_000  # groups and datasets walked; a 100B-parameter Keras model has a few thousand
MAX_DEPTH = 64
MAX_ATTR_BYTES = 64 << 20  # attributes read in all (model_config, layer and weight names)
MAX_JSON = 64 << 20
MAX_NUMEL = 1 << 62
MAX_RATIO = 1_000  # a compressed dataset may declare at most this many times the bytes it stores
EXTRA = "reading HDF5 (Keras .keras / .h5, tf_model.h5) needs h5py: pip install 'modelscope-inspect[keras]'"

# Keras 3 variable order per layer class, as each layer's build() creates them; (name, trainable, config flag
# that must be true for the variable to exist).
_VARS: dict[str, tuple[tuple[str, bool, str | None], ...]] = {
    "Dense": (("kernel", True, None), ("bias", True, "use_bias")),
    "EinsumDense": (("kernel", True, None), ("bias", True, None)),
    "Embedding": (("embeddings", True, None),),
    "BatchNormalization": (
        ("gamma", True, "scale"),
        ("beta", True, "center"),
        ("moving_mean", False, None),
        ("moving_variance", False, None),
    ),
    "LayerNormalization": (("gamma", True, "scale"), ("beta", True, "center")),
    "GroupNormalization": (("gamma", True, "scale"), ("beta", True, "center")),
    "SeparableConv1D": (("depthwise_kernel", True, None), ("pointwise_kernel", True, None), ("bias", True, "use_bias")),
    "SeparableConv2D": (("depthwise_kernel", True, None), ("pointwise_kernel", True, None), ("bias", True, "use_bias")),
    **{
        cls: (("kernel", True, None), ("bias", True, "use_bias"))
        for cls in (
            "Conv1D",
            "Conv2D",
            "Conv3D",
            "Conv1DTranspose",
            "Conv2DTranspose",
            "Conv3DTranspose",
            "DepthwiseConv1D",
            "DepthwiseConv2D",
        )
    },
}
_VARS["RNNCell"] = (("kernel", True, None), ("recurrent_kernel", True, None), ("bias", True, "use_bias"))
# Sub-layers a layer builds itself (so the config does not list them): their class by the parent's class.
# Each inherits the parent's config flags (`use_bias`).
_SUBLAYERS = {
    "MultiHeadAttention": "EinsumDense",
    "GroupedQueryAttention": "EinsumDense",
    "LSTM": "RNNCell",
    "GRU": "RNNCell",
    "SimpleRNN": "RNNCell",
}
NON_TRAINABLE_NAMES = ("moving_mean", "moving_variance")  # Keras 2 BatchNormalization statistics


def _h5py(where: str) -> Any:
    try:
        import h5py  # type: ignore[import-untyped]  # no stubs; used through Any
    except ImportError:
        raise MissingDependencyError(EXTRA, path=where) from None
    return h5py


@dataclass(frozen=True, slots=True)
class _Dataset:
    path: str
    shape: tuple[int, ...]
    dtype: str
    numel: int
    nbytes: int
    offset: int | None


@dataclass(slots=True)
class _Tree:
    """What one HDF5 walk found: datasets by path, and the small attributes the naming rules use."""

    datasets: dict[str, _Dataset]
    attrs: dict[str, dict[str, Any]]  # group path ('' is the root) → attributes read
    warnings: list[str]


_WANTED_ATTRS = ("name", "layer_names", "weight_names", "model_config", "keras_version", "backend")


def _text(value: Any) -> Any:
    """An attribute as str / list of str (h5py gives bytes or numpy arrays of bytes)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value


class _Walker:
    def __init__(self, h5py: Any, where: str, size: int) -> None:
        self.h5py = h5py
        self.where = where
        self.size = size
        self.seen: set[tuple[int, int]] = set()
        self.objects = 0
        self.attr_bytes = 0
        self.tree = _Tree({}, {}, [])

    def bad(self, msg: str, rule: str = "hdf5") -> MalformedFileError:
        return MalformedFileError(msg, path=self.where, rule=rule)

    def attrs(self, obj: Any, path: str) -> None:
        found: dict[str, Any] = {}
        for key in _WANTED_ATTRS:
            if key not in obj.attrs:
                continue
            try:
                stored = obj.attrs.get_id(key).get_storage_size()
            except (OSError, RuntimeError, ValueError):
                stored = 0  # variable-length strings: their bytes sit in the file's heap, bounded by its size
            if self.attr_bytes + stored > MAX_ATTR_BYTES:
                raise LimitExceededError(
                    f"attributes beyond the {MAX_ATTR_BYTES:,}-byte limit", path=self.where, rule="hdf5-limit"
                )
            value = _text(obj.attrs[key])
            self.attr_bytes += max(stored, len(str(value)))
            if self.attr_bytes > MAX_ATTR_BYTES:
                raise LimitExceededError(
                    f"attributes beyond the {MAX_ATTR_BYTES:,}-byte limit", path=self.where, rule="hdf5-limit"
                )
            found[key] = value
        if found:
            self.tree.attrs[path] = found

    def group(self, grp: Any, path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise LimitExceededError(f"groups nested deeper than {MAX_DEPTH}", path=self.where, rule="hdf5-limit")
        self.attrs(grp, path)
        h5py = self.h5py
        for key in grp:
            self.objects += 1
            if self.objects > MAX_OBJECTS:
                raise LimitExceededError(f"more than {MAX_OBJECTS:,} objects", path=self.where, rule="hdf5-limit")
            child = f"{path}/{key}" if path else str(key)
            link = grp.get(key, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise self.bad(f"{child} is an external link to {link.filename!r}: it would open another file")
            if not isinstance(link, h5py.HardLink):
                self.tree.warnings.append(f"{child}: soft link, not followed")
                continue
            obj = grp.get(key)
            info = h5py.h5o.get_info(obj.id)
            ident = (info.fileno, info.addr)
            if ident in self.seen:  # a second hard link to an object already counted (or a cycle)
                continue
            self.seen.add(ident)
            if isinstance(obj, h5py.Group):
                self.group(obj, child, depth + 1)
            elif isinstance(obj, h5py.Dataset):
                self.dataset(obj, child)

    def dataset(self, ds: Any, path: str) -> None:
        h5py = self.h5py
        plist = ds.id.get_create_plist()
        if plist.get_external_count():
            raise self.bad(f"dataset {path} keeps its data in external files")
        layout = plist.get_layout()
        if layout == h5py.h5d.VIRTUAL:
            raise self.bad(f"dataset {path} is a virtual dataset (its data lives in other files)")
        shape = tuple(int(d) for d in ds.shape) if ds.shape is not None else ()
        dt = ds.dtype
        try:
            name = lookup(dt.name).name if dt.kind in "biufc" else None
        except MalformedFileError:
            name = None
        if name is None:
            self.tree.warnings.append(f"{path}: element type {dt} is not a tensor type, not counted")
            return
        numel = 1
        for d in shape:
            numel *= d
            if numel > MAX_NUMEL:
                raise self.bad(f"dataset {path} shape {shape} overflows", "shape-overflow")
        nbytes = numel * dt.itemsize
        stored = ds.id.get_storage_size()
        if plist.get_nfilters() == 0:
            if stored < nbytes:
                raise self.bad(
                    f"dataset {path} declares {nbytes:,} bytes ({list(shape)} × {dt.itemsize}) but stores {stored:,}",
                    "hdf5-size",
                )
        elif nbytes > MAX_RATIO * max(stored, 1):
            raise LimitExceededError(
                f"dataset {path} declares {nbytes:,} bytes from {stored:,} compressed",
                path=self.where,
                rule="hdf5-size",
            )
        offset = ds.id.get_offset() if layout == h5py.h5d.CONTIGUOUS else None
        if offset is not None and offset + stored > self.size:
            raise self.bad(f"dataset {path} ends at byte {offset + stored:,}, past the end of the file", "truncated")
        self.tree.datasets[path] = _Dataset(path, shape, name, numel, nbytes, offset)


def read_tree(src: ByteSource) -> _Tree:
    """Walk an HDF5 file's groups and datasets (metadata only)."""
    h5py = _h5py(src.name)
    walker = _Walker(h5py, src.name, src.size)
    try:
        with h5py.File(SourceIO(src), "r") as f:
            walker.group(f, "", 0)
    except (MalformedFileError, MissingDependencyError):
        raise
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise MalformedFileError(f"not a readable HDF5 file ({exc})", path=src.name, rule="hdf5") from None
    return walker.tree


# -- naming ---------------------------------------------------------------------------------------------------


def _layer_configs(config: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every layer the model config names: name → (class_name, config), first mention wins."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    stack = [config]
    seen = 0
    while stack and seen < MAX_OBJECTS:
        node = stack.pop()
        seen += 1
        if isinstance(node, dict):
            cls, cfg = node.get("class_name"), node.get("config")
            if isinstance(cls, str) and isinstance(cfg, dict) and isinstance(cfg.get("name"), str):
                out.setdefault(cfg["name"], (cls, cfg))
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return out


def _var_names(layer: tuple[str, dict[str, Any]] | None, count: int) -> list[tuple[str, bool]]:
    """The names of a Keras 3 layer's `count` numbered variables and whether each is trainable."""
    if layer is not None:
        cls, cfg = layer
        table = _VARS.get(cls)
        if table is not None:
            names = [(n, t) for n, t, flag in table if flag is None or cfg.get(flag, True) is not False]
            if len(names) == count:
                return names
    return [(str(i), True) for i in range(count)]


@dataclass(frozen=True, slots=True)
class _Named:
    name: str
    trainable: bool
    section: str


def _keras3_names(tree: _Tree, config: Any) -> dict[str, _Named]:
    """Keras 3 weights files: `layers/<key>/vars/<i>` (nested) → `layer/sublayer/kernel`."""
    layers = _layer_configs(config)
    by_group: dict[str, list[str]] = {}
    for path in tree.datasets:
        group, _, _leaf = path.rpartition("/")
        by_group.setdefault(group, []).append(path)
    out: dict[str, _Named] = {}
    for group, paths in by_group.items():
        parts = group.split("/") if group else []
        shown: list[str] = []
        frozen = False
        parent: tuple[str, dict[str, Any]] | None = None  # the innermost enclosing layer the config describes
        # Each `layers/<key>` level is a layer: shown by the name its `vars` group carries.
        for i, part in enumerate(parts):
            prefix = "/".join(parts[: i + 1])
            if part in ("layers", "vars"):  # structure, not a layer
                continue
            label = tree.attrs.get(f"{prefix}/vars", {}).get("name")
            label = label if isinstance(label, str) and label else part
            shown.append(label)
            cfg = layers.get(label)
            if cfg is not None and cfg[1].get("trainable") is False:
                frozen = True
            if cfg is not None and f"{prefix}/vars" != group:
                parent = cfg
        section = "optimizer" if parts[:1] == ["optimizer"] else "model"
        if parts[-1:] == ["vars"] and all(p.split("/")[-1].isdigit() for p in paths):
            ordered = sorted(paths, key=lambda p: int(p.rsplit("/", 1)[1]))
            layer_name = tree.attrs.get(group, {}).get("name")
            layer = layers.get(layer_name) if isinstance(layer_name, str) else None
            if layer is None and parent is not None and parent[0] in _SUBLAYERS:
                layer = (_SUBLAYERS[parent[0]], parent[1])
            names = (
                _var_names(layer, len(ordered))
                if section == "model"
                else [(p.rsplit("/", 1)[1], False) for p in ordered]
            )
            for path, (var, trainable) in zip(ordered, names, strict=True):
                out[path] = _Named("/".join([*shown, var]), trainable and not frozen, section)
        else:
            for path in paths:
                out[path] = _Named("/".join([*shown, path.rsplit("/", 1)[1]]), not frozen, section)
    return out


def _legacy_names(tree: _Tree, config: Any) -> dict[str, _Named] | None:
    """Keras 2 / HF `tf_model.h5`: `layer_names` on the weights group, `weight_names` on each layer group."""
    base = "model_weights" if "layer_names" in tree.attrs.get("model_weights", {}) else ""
    layer_names = tree.attrs.get(base, {}).get("layer_names")
    if not isinstance(layer_names, list):
        return None
    layers = _layer_configs(config)
    out: dict[str, _Named] = {}
    for layer in layer_names:
        if not isinstance(layer, str):
            continue
        group = f"{base}/{layer}" if base else layer
        weight_names = tree.attrs.get(group, {}).get("weight_names", [])
        cfg = layers.get(layer)
        frozen = cfg is not None and cfg[1].get("trainable") is False
        for w in weight_names if isinstance(weight_names, list) else []:
            if not isinstance(w, str) or f"{group}/{w}" not in tree.datasets:
                continue
            rest = w.removesuffix(":0")
            cut = rest.rfind(f"{layer}/")
            rest = rest[cut + len(layer) + 1 :] if cut >= 0 else rest
            name = rest if rest.startswith(f"{layer}/") else f"{layer}/{rest}"
            trainable = not frozen and not rest.endswith(NON_TRAINABLE_NAMES)
            out[f"{group}/{w}"] = _Named(name, trainable, "model")
    for path in tree.datasets:
        if path not in out and path.startswith("optimizer_weights/"):
            out[path] = _Named(path.removeprefix("optimizer_weights/"), False, "optimizer")
    return out


def _config_attr(tree: _Tree, where: str) -> Any:
    raw = tree.attrs.get("", {}).get("model_config")
    if not isinstance(raw, str):
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise MalformedFileError("model_config attribute is not valid JSON", path=where, rule="keras-config") from None


def scan_h5(src: ByteSource, rel: str, config: Any, fmt: str) -> FileScan:
    """A Keras / TF HDF5 weights file as a `FileScan`; `config` is the model config when the caller has it."""
    tree = read_tree(src)
    config = config if config is not None else _config_attr(tree, src.name)
    named = _legacy_names(tree, config)
    if named is None:
        named = _keras3_names(tree, config)
    else:
        fmt = "keras-h5" if fmt == "keras-weights-h5" else fmt
    order = {name: i for i, name in enumerate(_layer_configs(config))}

    rank = {path: i for i, path in enumerate(named)}

    def position(path: str) -> tuple[int, int, str]:
        # Keras's own order (the config's layer order, then the naming rules' order), not HDF5's alphabetical one.
        n = named.get(path)
        layer = n.name.split("/", 1)[0] if n else ""
        return (order.get(layer, len(order)), rank.get(path, len(rank)), path)

    records: list[TensorRecord] = []
    trainable = frozen = 0
    for path in sorted(tree.datasets, key=position):
        ds = tree.datasets[path]
        n = named.get(path) or _Named(path, True, "model")
        storage = f"{rel}@{ds.offset}" if ds.offset is not None else f"{rel}:{path}"
        kind = "param" if n.trainable else "buffer"
        if n.section == "model":
            if n.trainable:
                trainable += ds.numel
            else:
                frozen += ds.numel
        records.append(
            TensorRecord(
                name=n.name,
                shape=ds.shape,
                dtype=ds.dtype,
                numel=ds.numel,
                nbytes=ds.nbytes,
                storage=storage,
                offset=0,
                file=rel,
                section=n.section,
                kind=kind if n.section == "model" else "state",
            )
        )
    details: dict[str, Any] = {}
    if config is not None:
        details = {"trainable": f"{trainable:,}", "non-trainable": f"{frozen:,}"}
    elif fmt == "keras-weights-h5":
        # Keras 3 numbers a layer's variables; their names and trainability are in the model's config.json.
        details["variable names"] = "numbered (no config: names and trainable split need the model's config.json)"
    root = tree.attrs.get("", {})
    for key in ("keras_version", "backend"):
        if isinstance(root.get(key), str):
            details[key.replace("_", " ")] = root[key]
    return FileScan(
        format=fmt,
        records=records,
        storage_bytes=sum(ds.nbytes for ds in tree.datasets.values()),
        warnings=tree.warnings[:20],
        details=details,
    )


class KerasH5Loader:
    """HDF5 weights: Keras 3 `.weights.h5`, Keras 2 `.h5` (with `model_config`), HF `tf_model.h5`."""

    name: str = "keras-h5"
    extensions: tuple[str, ...] = (".h5", ".hdf5")

    def sniff(self, head: bytes, size: int) -> bool:
        return head[:8] == H5_MAGIC

    def read(self, src: ByteSource, rel: str) -> FileScan:
        if src.read_at(0, 8) != H5_MAGIC:
            raise UnsupportedFormatError("not an HDF5 file (no \\x89HDF signature)", path=src.name)
        return scan_h5(src, rel, None, "keras-weights-h5")


def is_keras_zip(head: bytes) -> bool:
    """True when a zip's first member (named in its local header) is one a `.keras` archive starts with."""
    if head[:4] != b"PK\x03\x04" or len(head) < 30:
        return False
    n = int.from_bytes(head[26:28], "little")
    return head[30 : 30 + n] in tuple(m.encode() for m in KERAS_MEMBERS)


def _json_member(src: ByteSource, info: zipfile.ZipInfo) -> Any:
    from .torchzip import read_member

    if info.file_size > MAX_JSON:
        raise LimitExceededError(f"{info.filename} is {info.file_size:,} bytes", path=src.name, rule="keras-config")
    try:
        return json.loads(read_member(src, info, MAX_JSON).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedFileError(f"{info.filename} is not valid JSON", path=src.name, rule="keras-config") from None


class KerasLoader:
    """Keras 3 `.keras` archives: the config and metadata JSON, and `model.weights.h5` read in place."""

    name: str = "keras"
    extensions: tuple[str, ...] = (".keras",)

    def sniff(self, head: bytes, size: int) -> bool:
        return is_keras_zip(head)

    def read(self, src: ByteSource, rel: str) -> FileScan:
        from .torchzip import member_start, open_zip

        members = {i.filename: i for i in open_zip(src)}
        weights = members.get("model.weights.h5")
        if weights is None or "config.json" not in members:
            raise MalformedFileError(
                "zip archive without config.json and model.weights.h5: not a Keras 3 .keras file",
                path=src.name,
                rule="keras-archive",
            )
        config = _json_member(src, members["config.json"])
        meta = _json_member(src, members["metadata.json"]) if "metadata.json" in members else {}
        if weights.compress_type != zipfile.ZIP_STORED:
            raise UnsupportedFormatError(
                "model.weights.h5 is compressed inside the archive: only stored members are read in place",
                path=src.name,
            )
        inner = Window(src, member_start(src, weights), weights.compress_size, f"{src.name}:model.weights.h5")
        scan = scan_h5(inner, rel, config, "keras")
        if isinstance(config, dict) and isinstance(config.get("class_name"), str):
            scan.details["model class"] = config["class_name"]
        if isinstance(meta, dict) and isinstance(meta.get("keras_version"), str):
            scan.details["keras version"] = meta["keras_version"]
        scan.header_bytes = members["config.json"].file_size
        return scan
