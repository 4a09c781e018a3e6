"""The HTML of `mi report`: one self-contained page, readable with scripts off, interactive with them on.

Untrusted text (tensor names, metadata, paths, findings) reaches the page two ways, both inert:
- in the static HTML, through `html.escape` (quotes included), never inside a script, style or URL;
- for the script, as JSON in a `<script type="application/json">` block with `<`, `>`, `&`, U+2028 and U+2029
  written as `\\uXXXX` escapes (so no `</script>` or `<!--` can end or change the block), which the script
  parses with `JSON.parse` and puts on the page with `textContent` only.
The Content-Security-Policy allows nothing but the page's own style and script (by their sha256 hashes) and
`data:` images (the graph): no request of any kind leaves the page, and an injected handler would not run.
"""

from __future__ import annotations

import base64
import hashlib
import json
from html import escape
from typing import TYPE_CHECKING, Any

from ..._version import __version__
from ...inventory import TensorInventory
from ..units import human_bytes, human_count
from .assets import CSS, JS
from .chart import memory_chart
from .payload import tensor_payload, tree_payload

if TYPE_CHECKING:
    from ...analysis.memory import MemoryReport
    from ...api.report import ReportInput
    from ...loaders.scanner import ScanReport

STATIC_TENSORS = 300  # rows of the tensor table written as HTML (the script shows all of them)
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def e(value: object) -> str:
    """Text for HTML content or a quoted attribute."""
    return escape(str(value), quote=True)


def script_json(payload: Any) -> str:
    """JSON that is safe inside `<script type="application/json">`: no `<`, `>` or `&` left to end the block."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return "".join(_JSON_ESCAPES.get(ch, ch) for ch in text) if any(c in text for c in _JSON_ESCAPES) else text


def csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def content_security_policy() -> str:
    return (
        f"default-src 'none'; script-src {csp_hash(JS)}; style-src {csp_hash(CSS)}; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )


def _bar(share: float) -> str:
    # An SVG bar: its width is an attribute, which the policy allows (a `style` attribute would be refused).
    w = max(0.0, min(share, 1.0)) * 100
    return (
        '<svg class="bar" viewBox="0 0 100 8" preserveAspectRatio="none" aria-hidden="true">'
        f'<rect class="bar-bg" width="100" height="8"/><rect class="bar-fg" width="{w:.2f}" height="8"/></svg>'
    )


def _table(head: list[str], rows: list[list[str]], *, cls: str = "", numeric: frozenset[int] = frozenset()) -> str:
    """A table of already-escaped cells; `numeric` columns are right-aligned."""
    th = "".join(f'<th{" class=num" if i in numeric else ""} scope="col">{h}</th>' for i, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(f"<td{' class=num' if i in numeric else ''}>{c}</td>" for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f'<div class="scroll"><table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>'


def _summary(inv: TensorInventory) -> str:
    n = len(inv.files)
    rows = [
        ("path", inv.path),
        ("format", inv.format),
        ("files", f"{n} file{'s' if n != 1 else ''}, {human_bytes(inv.file_bytes)} ({inv.file_bytes:,} bytes)"),
        ("parameters", f"{inv.total_params:,} ({human_count(inv.total_params)})"),
        ("tensor bytes", f"{human_bytes(inv.total_bytes)} ({inv.total_bytes:,} bytes)"),
        ("tensors", f"{len(inv.tensors):,}"),
    ]
    for key, value in inv.details.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} ×{v}" if isinstance(v, int) else f"{k}={v}" for k, v in value.items())
        rows.append((str(key), str(value)))
    items = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows)
    return f'<dl class="summary">{items}</dl>'


def _dtypes(inv: TensorInventory) -> str:
    total = inv.total_bytes or 1
    rows = [
        [e(name), f"{v.params:,}", e(human_bytes(v.nbytes)), f"{100 * v.nbytes / total:.1f}%", _bar(v.nbytes / total)]
        for name, v in inv.by_dtype.items()
    ]
    out = "<h3>by dtype</h3>" + _table(["dtype", "params", "bytes", "share of bytes", ""], rows,
                                       numeric=frozenset({1, 2, 3}))  # fmt: skip
    sections = inv.by_section
    if any(name != "model" for name in sections):
        all_bytes = sum(s.nbytes for s in sections.values()) or 1
        srows = [
            [e(name), f"{s.tensors:,}", f"{s.elements:,}", e(human_bytes(s.nbytes)), _bar(s.nbytes / all_bytes)]
            for name, s in sections.items()
        ]
        out += "<h3>by section</h3>" + _table(["section", "tensors", "elements", "bytes", ""], srows,
                                              numeric=frozenset({1, 2, 3}))  # fmt: skip
    return out


def _modules(inv: TensorInventory, tree: dict[str, Any]) -> str:
    """The treemap's first level and one level below, as a table (what a reader without scripts gets)."""
    total_p = tree["p"] or 1
    rows: list[list[str]] = []
    for node in tree["c"]:
        for depth, n in [(0, node), *((1, c) for c in node.get("c", []))]:
            label = ("\u2003" * depth) + n["n"] + (f" ×{n['r']}" if n.get("r") and "×" not in n["n"] else "")
            share = n["p"] / total_p
            rows.append([e(label), e(human_count(n["p"])), e(human_bytes(n["b"])), f"{100 * share:.1f}%", _bar(share)])
    return _table(["module", "params", "bytes", "share of params", ""], rows, numeric=frozenset({1, 2, 3}))


def _tensors(inv: TensorInventory) -> str:
    rows = [
        [
            e(t.name),
            e(t.dtype),
            f"{t.numel:,}",
            e(human_bytes(t.nbytes)),
            e(t.section),
            e(f"shares {t.shared_with}" if t.shared_with else ""),
        ]
        for t in inv.tensors[:STATIC_TENSORS]
    ]
    more = len(inv.tensors) - STATIC_TENSORS
    note = f'<p class="note">the first {STATIC_TENSORS:,} of {len(inv.tensors):,} tensors; with JavaScript on, ' \
        "the table lists, sorts and filters all of them</p>" if more > 0 else ""  # fmt: skip
    return _table(["name", "dtype", "elements", "bytes", "section", "note"], rows, cls="tensors",
                  numeric=frozenset({2, 3})) + note  # fmt: skip


def _memory(reports: tuple[MemoryReport, ...], training: MemoryReport | None) -> str:
    first = reports[0]
    prec = [[e(p), e(human_bytes(b)), f"{b:,}"] for p, b in first.weights_by_precision.items()]
    out = f"<h3>weights at every precision</h3><p>{first.params:,} parameters ({e(first.arch)})</p>"
    out += _table(["precision", "weights", "bytes"], prec, numeric=frozenset({1, 2}))
    out += "<h3>inference memory against context length</h3>"
    out += (
        f"<p>batch 1, {e(first.options.dtype.value)} weights and KV cache; GPU lines in GB (10<sup>9</sup> bytes)</p>"
    )
    out += f'<figure class="chart-box">{memory_chart(reports)}</figure>'
    rows = [
        [f"{r.options.seq:,}", e(human_bytes(r.weights_bytes)), e(human_bytes(r.kv.bytes)),
         e(human_bytes(r.inference_bytes - r.weights_bytes - r.kv.bytes)), e(human_bytes(r.inference_bytes))]
        for r in reports
    ]  # fmt: skip
    out += _table(["context", "weights", "KV cache", "working set", "total"], rows, numeric=frozenset({0, 1, 2, 3, 4}))
    if training is not None and training.training_bytes is not None:
        o = training.options
        terms = [[e(t.name), e(human_bytes(t.bytes)), e(t.formula)] for t in training.training_terms]
        terms.append(["<b>total</b>", f"<b>{e(human_bytes(training.training_bytes))}</b>", ""])
        out += f"<h3>training memory</h3><p>{e(o.optimizer.value)}, batch {o.batch}, {o.seq:,} tokens, " \
            f"{e(o.dtype.value)}, no recompute</p>"  # fmt: skip
        out += _table(["term", "bytes", "formula"], terms, numeric=frozenset({1}))
    if first.assumptions:
        out += "<details><summary>assumptions</summary><ul>"
        out += "".join(f"<li>{e(a)}</li>" for a in first.assumptions) + "</ul></details>"
    return out


_VERDICT = {
    "clean": ("ok", "clean: no global outside the allowlist, nothing would run on load"),
    "dangerous": ("bad", "DANGEROUS: would run code or commands on load"),
    "unknown": ("warn", "UNKNOWN globals: would import and run code that is not a plain checkpoint's"),
    "error": ("bad", "COULD NOT SCAN"),
}


def _scan(scan: ScanReport) -> str:
    cls, text = _VERDICT.get(scan.status, ("warn", scan.status))
    out = f'<p class="verdict {cls}">{e(text)}</p>'
    rows = [[e(f.path), e(f.format), e(f.status), f"{len(f.findings) + f.more_findings:,}"] for f in scan.files]
    out += _table(["file", "format", "status", "findings"], rows, numeric=frozenset({3}))
    findings = [
        [e(f.path), e(x.severity.value), e(x.stream), f"{x.offset:,}", e(x.opcode), e(x.target), e(x.reason)]
        for f in scan.files
        for x in f.findings
    ]
    if findings:
        out += "<h3>findings</h3>" + _table(
            ["file", "severity", "stream", "offset", "opcode", "target", "why"], findings, numeric=frozenset({3})
        )
    errors = [f"{f.path}: {f.error}" for f in scan.files if f.error]
    if errors:
        out += "<ul>" + "".join(f"<li>{e(x)}</li>" for x in errors) + "</ul>"
    return out


def _section(ident: str, title: str, body: str) -> str:
    return f'<section id="{ident}"><h2>{e(title)}</h2>{body}</section>'


def report_page(data: ReportInput, *, graph_svg: str | None = None, graph_note: str | None = None) -> str:
    """The whole page as one string. `graph_svg` is the structure or operator graph drawn by Graphviz."""
    inv = data.inventory
    tree = tree_payload(inv)
    title = inv.path.rstrip("/").rsplit("/", 1)[-1] or inv.path
    payload = {
        "title": title,
        "params": inv.total_params,
        "bytes": inv.total_bytes,
        "tree": tree,
        "tensors": tensor_payload(inv),
    }
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{e(content_security_policy())}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>mi report: {e(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f'<header><h1>{e(title)}</h1><p class="sub">{e(inv.format)} · {inv.total_params:,} parameters · '
        f"{e(human_bytes(inv.total_bytes))} · modelscope-inspect {e(__version__)}</p>"
        '<div id="controls-top"></div></header><main>',
        _section("overview", "overview", _summary(inv) + _dtypes(inv)),
    ]
    tops = tree["c"]
    parts.append(
        _section(
            "modules",
            "where the bytes go",
            '<div id="treemap-ui" hidden><div class="controls" id="tm-controls"></div>'
            '<nav class="crumbs" id="tm-crumbs" aria-label="treemap path"></nav>'
            '<div id="treemap" role="group" aria-label="treemap of the module tree"></div>'
            '<div id="tm-tip" class="tip" hidden></div><div id="tm-legend" class="legend"></div></div>'
            f'<p class="nojs">{len(tops)} top-level modules; the zoomable treemap needs JavaScript.</p>'
            + _modules(inv, tree),
        )
    )
    parts.append(
        _section(
            "tensors",
            f"tensors ({len(inv.tensors):,})",
            '<div id="tensor-ui" hidden><div class="controls"><label>filter <input id="tensor-filter" type="search" '
            'placeholder="name, glob (*.attn.*) or dtype" autocomplete="off" spellcheck="false"></label>'
            '<span id="tensor-count" aria-live="polite"></span></div>'
            '<div class="vbody" id="tensor-body" tabindex="0"><div class="vhead" id="tensor-head"></div>'
            '<div class="vspace" id="tensor-space"></div></div></div>'
            f'<div id="tensor-static">{_tensors(inv)}</div>',
        )
    )
    if data.memory:
        parts.append(_section("memory", "memory", _memory(data.memory, data.training)))
    if data.scan is not None:
        parts.append(_section("scan", "scan", _scan(data.scan)))
    if graph_svg is not None:
        uri = "data:image/svg+xml;base64," + base64.b64encode(graph_svg.encode("utf-8")).decode("ascii")
        parts.append(_section("graph", "graph", f'<div class="graph scroll"><img alt="model graph" src="{uri}"></div>'))
    notes = [*data.notes, *([graph_note] if graph_note else []), *inv.warnings]
    if notes:
        parts.append(_section("notes", "notes", "<ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>"))
    parts += [
        "</main>",
        "<footer><p>Written by <code>mi report</code>: headers only, nothing in the model file was run. "
        "This page makes no network request.</p></footer>",
        f'<script type="application/json" id="mi-data">{script_json(payload)}</script>',
        f"<script>{JS}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
