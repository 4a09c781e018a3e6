"""Rebuilding a model from what the file says, for Netron (`--onnx`) and torchviz (`--torchviz`).

Nothing from the model file is loaded or run. A model is rebuilt only from
- an HF `config.json` whose `model_type` transformers knows (llama, gpt2, …): `AutoModelForCausalLM.from_config`;
- the seed's decoder (embedding → nn.TransformerDecoder → fc_out), recognised when the names *and shapes* of
  the file's tensors are exactly those of that module.
The weights are random (small models) or on the meta device (large ones), never the file's. Anything else
is exported as its structure graph: one ONNX node per module, in file order, with the module's tensors as
initializers (placeholders in a sparse external data file).
"""

from __future__ import annotations

import os
import re
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...dtypes import ONNX_CODES
from ...errors import MissingDependencyError, RebuildError
from ...inventory import TensorInventory

if TYPE_CHECKING:
    from ...api.output import OutputGuard

SMALL_PARAMS = 64_000_000  # up to this many parameters the export carries real (random) f32 weights
STRUCTURE_DOMAIN = "ai.modelscope_inspect.structure"
SEED_HEADS = 8  # the seed's nn.TransformerDecoderLayer(512, 8, 2048): heads are not recorded in a state dict


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What `export_onnx` wrote."""

    path: Path
    mode: str  # "rebuilt" (the real graph of a rebuilt model) or "structure" (one node per module)
    architecture: str
    ops: dict[str, int]
    initializers: int
    notes: tuple[str, ...] = ()
    data_file: Path | None = None


@dataclass(slots=True)
class Recipe:
    """How to rebuild a model: its architecture name, a builder, and an example input maker."""

    architecture: str
    params: int
    build: Callable[[bool], Any]  # eager attention? -> torch.nn.Module (on the current default device)
    example: Callable[[Any, bool], tuple[tuple[Any, ...], dict[str, Any]]]  # (device, for autograd) -> args, kwargs
    notes: list[str] = field(default_factory=list)


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingDependencyError(
            "rebuilding a model needs torch: pip install 'modelscope-inspect[torch]'", rule="missing-extra"
        ) from None
    return torch


def _shapes(inv: TensorInventory) -> dict[str, tuple[int, ...]]:
    return {t.name: t.shape for t in inv.tensors if t.section == "model"}


def _hf_recipe(inv: TensorInventory) -> Recipe | None:
    cfg = inv.config
    if not isinstance(cfg, Mapping) or not isinstance(cfg.get("model_type"), str):
        return None
    try:
        import transformers
        from transformers import AutoConfig, AutoModelForCausalLM
    except ImportError:
        raise MissingDependencyError(
            "rebuilding an HF model needs transformers: pip install transformers", rule="missing-extra"
        ) from None
    _quiet_loggers()
    model_type = cfg["model_type"]
    if model_type not in transformers.CONFIG_MAPPING:
        return None
    keep = {k: v for k, v in cfg.items() if k not in ("model_type", "transformers_version", "architectures",
                                                      "auto_map", "quantization_config")}  # fmt: skip
    try:
        config = AutoConfig.for_model(model_type, **keep)
    except Exception as exc:  # a config transformers rejects: say so, export the structure instead
        raise RebuildError(f"config.json is not a valid {model_type} config ({exc})", rule="config") from None
    config.use_cache = False
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    if vocab <= 0:
        return None

    def build(eager: bool) -> Any:
        # Eager attention for the autograd graph: the fused SDPA path inspects mask values (`.item()`), which
        # the meta device cannot give; the math is the same.
        config._attn_implementation = "eager" if eager else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return AutoModelForCausalLM.from_config(config).eval()  # type: ignore[no-untyped-call]

    def example(device: Any, autograd: bool) -> tuple[tuple[Any, ...], dict[str, Any]]:
        torch = _torch()
        ids = torch.randint(0, vocab, (1, 8), device=device)
        kwargs: dict[str, Any] = {"input_ids": ids, "use_cache": False}
        if autograd:  # an explicit mask skips the packed-sequence probe, which reads values
            kwargs["attention_mask"] = torch.ones(1, 8, dtype=torch.long, device=device)
        return (), kwargs

    torch = _torch()
    with torch.device("meta"):
        probe = build(False)
    params = int(sum(p.numel() for p in probe.parameters()))
    notes = []
    # The graph comes from config.json; say so when the file's tensors are not the ones that config builds.
    expected = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
    shapes = _shapes(inv)
    matching = sum(1 for k, v in shapes.items() if expected.get(k) == v)
    if shapes and matching < len(shapes):
        notes.append(f"config.json builds a model whose names and shapes match {matching} of the file's "
                     f"{len(shapes)} tensors; the graph follows config.json")  # fmt: skip
    return Recipe(f"{model_type} ({type(config).__name__} from config.json)", params, build, example, notes)


_SEED_LAYER = re.compile(r"^transformer_decoder\.layers\.(\d+)\.")


def _seed_module(vocab: int, d_model: int, heads: int, d_ff: int, layers: int) -> Any:
    torch = _torch()
    nn = torch.nn

    class SeedDecoder(nn.Module):  # type: ignore[misc,name-defined]
        """The seed's decoder; forward as in the seed notes: the decoder attends to its own input."""

        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(vocab, d_model)
            layer = nn.TransformerDecoderLayer(d_model, heads, d_ff)
            self.transformer_decoder = nn.TransformerDecoder(layer, layers)
            self.fc_out = nn.Linear(d_model, vocab)

        def forward(self, x: Any) -> Any:
            h = self.embedding(x)
            return self.fc_out(self.transformer_decoder(h, h))

    return SeedDecoder()


def _seed_recipe(inv: TensorInventory) -> Recipe | None:
    shapes = _shapes(inv)
    emb = shapes.get("embedding.weight")
    lin1 = shapes.get("transformer_decoder.layers.0.linear1.weight")
    if emb is None or lin1 is None or len(emb) != 2 or len(lin1) != 2 or "fc_out.weight" not in shapes:
        return None
    layers = 1 + max((int(m.group(1)) for n in shapes if (m := _SEED_LAYER.match(n))), default=-1)
    vocab, d_model = emb
    d_ff = lin1[0]
    heads = SEED_HEADS if d_model % SEED_HEADS == 0 else 1
    torch = _torch()
    with torch.device("meta"):
        probe = _seed_module(vocab, d_model, heads, d_ff, layers)
    expected = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
    if expected != shapes:  # names and shapes must be exactly the seed's module, or we do not guess
        return None

    def example(device: Any, autograd: bool) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (torch.randint(0, vocab, (8,), device=device),), {}

    return Recipe(
        f"seed decoder (Embedding {vocab}×{d_model}, TransformerDecoder ×{layers}, d_ff {d_ff})",
        sum(p.numel() for p in probe.parameters()),
        lambda eager: _seed_module(vocab, d_model, heads, d_ff, layers).eval(),
        example,
        [f"attention heads are not recorded in a state dict; assumed {heads} (the seed's)"],
    )


def recognise(inv: TensorInventory) -> Recipe | None:
    """A recipe to rebuild the model in `inv`, or None when its architecture is not known."""
    return _hf_recipe(inv) or _seed_recipe(inv)


def _strip_metadata(proto: Any) -> None:
    # Stack traces name local source paths and triple the file size; keep the module scopes Netron/`mi` use.
    for node in proto.graph.node:
        keep = [(p.key, p.value) for p in node.metadata_props if p.key not in
                ("pkg.torch.onnx.stack_trace", "pkg.torch.onnx.fx_node")]  # fmt: skip
        del node.metadata_props[:]
        for k, v in keep:
            e = node.metadata_props.add()
            e.key, e.value = k, v


def data_path(out: Path) -> Path:
    """The external data file written beside an exported `out` (`OUT.data`)."""
    return out.with_name(out.name + ".data")


def _sparse_data(proto: Any, out: Path, tensors: list[Any]) -> Path:
    """Point `tensors` (TensorProtos without data) at a sparse, zero-filled `OUT.data` file and create it.

    The checker requires external data to exist; a sparse file of the right size costs no disk blocks on
    common file systems. Netron shows the graph and tensor shapes without reading it.
    """
    onnx = _onnx()
    data = data_path(out)
    offset = 0
    for t in tensors:
        n = 1
        for d in t.dims:
            n *= int(d)
        bits = {1: 32, 2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 9: 8, 10: 16, 11: 64, 12: 32, 13: 64, 14: 64,
                15: 128, 16: 16, 17: 8, 18: 8, 19: 8, 20: 8, 21: 4, 22: 4}.get(t.data_type, 8)  # fmt: skip
        length = (n * bits + 7) // 8
        t.ClearField("raw_data")
        t.data_location = onnx.TensorProto.EXTERNAL
        del t.external_data[:]
        for k, v in (("location", data.name), ("offset", str(offset)), ("length", str(length))):
            e = t.external_data.add()
            e.key, e.value = k, v
        offset += (length + 63) // 64 * 64
    with open(data, "wb") as f:
        f.truncate(offset)
    return data


def _onnx() -> Any:
    from ...api.graph import require_onnx

    return require_onnx()


def _export_rebuilt(
    recipe: Recipe, out: Path, progress: Callable[[str], None] | None, guard: OutputGuard
) -> ExportResult:
    torch = _torch()
    onnx = _onnx()
    small = recipe.params <= SMALL_PARAMS
    if not small:
        guard.check(data_path(out))  # before the export: nothing is written when either file is refused
    notes = list(recipe.notes)
    if progress:
        progress(f"rebuilding {recipe.architecture} ({recipe.params:,} params) and exporting with torch.onnx…")
    _quiet_loggers()
    device = "cpu" if small else "meta"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        with torch.device(device):
            model = recipe.build(False)
        if small:
            # Distinct random values everywhere: the exporter's optimizer merges initializers with equal
            # contents (every RMSNorm weight starts as ones), which would hide tensors of the file.
            with torch.no_grad():
                for p in model.parameters():
                    p.normal_(0.0, 0.02)
        args, kwargs = recipe.example(device, False)
        try:
            with open(os.devnull, "w") as sink, _redirect(sink):
                prog = torch.onnx.export(model, args, kwargs=kwargs, dynamo=True, optimize=small, verbose=False,
                                         report=False)  # fmt: skip
        except Exception as exc:  # the exporter's many failure types; fall back to the structure graph
            raise RebuildError(f"torch.onnx.export failed: {type(exc).__name__}: {str(exc)[:200]}") from None
    data_file = None
    if small:
        proto = prog.model_proto
        notes.append("weights are random (the file's weights are never loaded); shapes are the file's")
    else:
        import onnx_ir as ir

        model_ir = prog.model
        for name, v in model_ir.graph.initializers.items():
            cv = v.const_value
            if cv is not None:
                v.const_value = ir.ExternalTensor(location="placeholder", offset=0, length=cv.nbytes, dtype=cv.dtype,
                                                  shape=cv.shape, name=name, base_dir="")  # fmt: skip
        proto = ir.serde.serialize_model(model_ir)
        data_file = _sparse_data(proto, out, list(proto.graph.initializer))
        notes.append(f"weights built on the meta device: initializers point at {data_file.name}, a sparse "
                     "zero-filled file (no disk blocks used); shapes are the file's")  # fmt: skip
    _strip_metadata(proto)
    proto.producer_name = "modelscope-inspect"
    proto.doc_string = f"Rebuilt by modelscope-inspect: {recipe.architecture}. " + " ".join(notes)
    onnx.save(proto, str(out))
    onnx.checker.check_model(str(out))
    ops = Counter(n.op_type for n in proto.graph.node)
    return ExportResult(out, "rebuilt", recipe.architecture, dict(ops.most_common()), len(proto.graph.initializer),
                        tuple(notes), data_file)  # fmt: skip


def _quiet_loggers() -> None:
    # The exporter, its optimizer and transformers log progress and config nits on stderr; our stderr carries
    # one-line notes and errors only.
    import logging

    for name in ("torch.onnx", "torch.export", "onnxscript", "onnx_ir", "transformers", "torch._dynamo"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    except ImportError:
        pass


class _redirect:
    """Silence the exporter's progress prints on stdout (our stdout may be a JSON document)."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink

    def __enter__(self) -> None:
        import contextlib

        self._cm = contextlib.redirect_stdout(self.sink)
        self._cm.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._cm.__exit__(None, None, None)


def export_structure(inv: TensorInventory, out: Path, guard: OutputGuard | None = None) -> ExportResult:
    """The structure graph as ONNX: one node per leaf module (custom domain, op type = module class when the
    file records it), chained in file order, each taking its tensors as initializers."""
    guard = guard or _default_guard(inv)
    guard.check(out)
    guard.check(data_path(out))
    onnx = _onnx()
    from onnx import TensorProto, helper

    from .structure import _plain_tree

    types = inv.torch.module_types if inv.torch is not None else None
    module_types: Mapping[str, str] = types if isinstance(types, Mapping) else {}
    root = _plain_tree(inv, 64)
    leaves: list[tuple[str, list[Any]]] = []

    def visit(g: Any) -> None:
        own = [c for c in g.children if c.tensor is not None and not c.children]
        if own or (g.tensor is not None and not g.children):
            leaves.append((g.name or "(top level)", own or [g]))
        for c in g.children:
            if c.children:
                visit(c)

    visit(root)
    nodes = []
    inits = []
    notes: list[str] = []
    prev = "x"
    odd: set[str] = set()
    for i, (name, tensors) in enumerate(leaves):
        qual = module_types.get(name, "")
        op = re.sub(r"\W", "_", qual.rsplit(".", 1)[-1]) if qual else "Module"
        inputs = [prev]
        for g in tensors:
            rec = g.tensor
            t = TensorProto()
            t.name = rec.name
            code = ONNX_CODES.get(rec.dtype)
            # Block-quantized (GGUF) and other types ONNX lacks, and the ones from code 23 on (IR version 11,
            # newer than the exported model declares): the bytes as uint8.
            if code is None or code > ONNX_CODES["i4"]:
                odd.add(rec.dtype)
                t.data_type, t.dims[:] = 2, [rec.nbytes]
            else:
                t.data_type = code
                t.dims.extend(rec.shape)
            inits.append(t)
            inputs.append(rec.name)
        out_name = f"{name}:out" if i < len(leaves) - 1 else "y"
        nodes.append(helper.make_node(op, inputs, [out_name], name=name, domain=STRUCTURE_DOMAIN))
        prev = out_name
    if odd:
        notes.append(f"dtypes without an ONNX type ({', '.join(sorted(odd))}) are stored as uint8 bytes")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])
    graph = helper.make_graph(nodes, Path(inv.path).name or "model", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                    helper.make_opsetid(STRUCTURE_DOMAIN, 1)])  # fmt: skip
    model.producer_name = "modelscope-inspect"
    model.doc_string = ("Structure graph by modelscope-inspect: one node per module in file order (not data flow); "
                        "tensors are placeholders in a sparse zero-filled external file.")  # fmt: skip
    data_file = _sparse_data(model, out, list(model.graph.initializer))
    notes.append(f"architecture not rebuildable: exported the structure graph (one node per module, file order); "
                 f"tensors point at {data_file.name}, a sparse zero-filled file")  # fmt: skip
    onnx.save(model, str(out))
    onnx.checker.check_model(str(out))
    ops = Counter(n.op_type for n in nodes)
    return ExportResult(out, "structure", "unknown", dict(ops.most_common()), len(inits), tuple(notes), data_file)


def _default_guard(inv: TensorInventory) -> OutputGuard:
    from ...api.output import OutputGuard, model_inputs

    return OutputGuard(model_inputs(inv.path, inv))


def export_onnx(
    inv: TensorInventory,
    out: Path,
    *,
    progress: Callable[[str], None] | None = None,
    guard: OutputGuard | None = None,
) -> ExportResult:
    """Write a Netron-compatible ONNX model for a read model (see the module docstring).

    `out` and its `OUT.data` pass `guard` first (default: never over or inside the model's files, never over
    an existing file; see `api.output`).

    Example:
        >>> export_onnx(open_model("examples/tiny-gpt2"), Path("gpt2.onnx")).ops["MatMul"]  # doctest: +SKIP
    """
    guard = guard or _default_guard(inv)
    guard.check(out)
    recipe = None
    fallback_note = ""
    try:
        recipe = recognise(inv)
    except (RebuildError, MissingDependencyError) as exc:
        fallback_note = str(exc)
    if recipe is not None:
        try:
            return _export_rebuilt(recipe, out, progress, guard)
        except RebuildError as exc:
            fallback_note = str(exc)
    res = export_structure(inv, out, guard)
    if fallback_note:
        res = ExportResult(res.path, res.mode, res.architecture, res.ops, res.initializers,
                           (fallback_note, *res.notes), res.data_file)  # fmt: skip
    return res


def torchviz_dot(inv: TensorInventory) -> tuple[str, dict[str, Any]]:
    """DOT text of `torchviz.make_dot` for one forward of the rebuilt model.

    As the seed does: `make_dot(y.mean(), params=dict(model.named_parameters()), show_attrs=True,
    show_saved=True)`.
    """
    recipe = recognise(inv)
    if recipe is None:
        raise RebuildError(
            "--torchviz needs a model that can be rebuilt (an HF folder with a known config.json, or the seed's "
            "decoder); draw the structure graph instead (without --torchviz)",
            path=inv.path,
            rule="not-rebuildable",
        )
    torch = _torch()
    import importlib

    try:
        torchviz = importlib.import_module("torchviz")  # untyped package
    except ImportError:
        raise MissingDependencyError("--torchviz needs torchviz: pip install torchviz", rule="missing-extra") from None
    _quiet_loggers()
    # Small models run on CPU with random weights; large ones on the meta device (autograd records the graph
    # without any memory for values). Some forwards read values (`.item()`), which meta cannot give.
    device = "cpu" if recipe.params <= SMALL_PARAMS else "meta"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        try:
            with torch.device(device):
                model = recipe.build(True)
            args, kwargs = recipe.example(device, True)
            y = model(*args, **kwargs)
        except Exception as exc:  # e.g. a forward that needs values on the meta device
            raise RebuildError(f"the rebuilt model's forward failed on {device}: {type(exc).__name__}: "
                               f"{str(exc)[:160]}", path=inv.path, rule="forward") from None  # fmt: skip
        if not isinstance(y, torch.Tensor):
            y = y.logits if hasattr(y, "logits") else y[0]
        dot = torchviz.make_dot(y.mean(), params=dict(model.named_parameters()), show_attrs=True, show_saved=True)
    text = str(dot.source)
    nodes = len(re.findall(r"^\t\d+ \[label=", text, flags=re.M))
    edges = len(re.findall(r"^\t\d+ -> \d+", text, flags=re.M))
    what = "random weights" if device == "cpu" else "meta tensors: shapes, no values"
    notes = [*recipe.notes, f"one forward on {device} ({what}; the file's weights are never loaded)"]
    return text, {"architecture": recipe.architecture, "notes": notes, "nodes": nodes, "edges": edges}


_NETRON: dict[str, Any] = {}


def serve_netron(path: str) -> str | None:
    """Start Netron's local server on `path` (the `netron` package, optional); return its URL."""
    import importlib

    try:
        netron = importlib.import_module("netron")  # optional, untyped
    except ImportError:
        raise MissingDependencyError(
            "--serve needs the netron package: pip install netron (the ONNX file was written)", rule="missing-extra"
        ) from None
    address = netron.start(path, browse=False)
    _NETRON["module"] = netron
    if isinstance(address, tuple) and len(address) == 2:
        return f"http://{address[0]}:{address[1]}"
    return str(address) if address else None


def wait_netron() -> None:
    """Keep serving until Ctrl-C."""
    netron = _NETRON.get("module")
    if netron is not None:
        netron.wait()
