"""`mi report`: the page's content, its escaping and policy, the output guard, and the 70B page's size and time.

The browser half (the page as Chromium runs it) is tests/test_report_browser.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

import modelscope_inspect as mi
from tests.conftest import FIXTURES, ROOT, run_cli
from tests.report_models import HOSTILE_NAMES, write_70b, write_hostile

pytest.importorskip("safetensors")


class _Page(HTMLParser):
    """The page as a browser's parser sees it: scripts (with their type), the CSP meta, and the text."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[str | None, str]] = []
        self.styles: list[str] = []
        self.csp: str | None = None
        self.text: list[str] = []
        self.tags: list[str] = []
        self._in: str | None = None
        self._type: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy":
            self.csp = a.get("content")
        if tag in ("script", "style"):
            self._in, self._type = tag, a.get("type")
            (self.scripts if tag == "script" else self.styles).append((a.get("type"), "") if tag == "script" else "")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            t, body = self.scripts[-1]
            self.scripts[-1] = (t, body + data)
        elif self._in == "style":
            self.styles[-1] += data
        else:
            self.text.append(data)


def _parse(path: Path) -> _Page:
    p = _Page()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_report_of_the_example_model(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    r = run_cli("report", "examples/tiny-gpt2", "-o", str(out))
    assert r.code == 0, r.stderr
    assert r.stdout.startswith(f"wrote {out} (")
    page = _parse(out)
    # Exactly two executable blocks' worth of policy: the inline style and script, by hash; nothing else loads.
    assert page.csp is not None
    assert page.csp.startswith("default-src 'none'; ")
    assert f"script-src {_sha(page.scripts[-1][1])};" in page.csp
    assert f"style-src {_sha(page.styles[0])};" in page.csp
    assert "img-src data:;" in page.csp
    assert [t for t, _ in page.scripts] == ["application/json", None]
    html = out.read_text(encoding="utf-8")
    assert not re.search(r"\b(?:src|href)=\"(?!data:)", html), "only data: URLs on the page"
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html
    # Readable without scripts: the summary and the module table are in the static HTML.
    text = " ".join(page.text)
    assert "11,904 (11.9K)" in text and "46.5 KiB (47,616 bytes)" in text
    data = json.loads(page.scripts[0][1])
    inv = mi.load("examples/tiny-gpt2")
    assert data["params"] == inv.total_params == 11_904
    assert sum(data["tensors"]["numel"]) == sum(t.numel for t in inv.tensors)
    top = {n["n"]: n["b"] for n in data["tree"]["c"]}
    # `transformer` only wraps modules: its children are the first tiles, named in full.
    assert set(top) == {"transformer.h.0-1 ×2", "transformer.wte", "transformer.wpe", "transformer.ln_f"}
    assert sum(top.values()) == inv.total_bytes
    assert top["transformer.wte"] == 300 * 16 * 4  # [300×16] f32


def test_memory_and_scan_sections(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    assert run_cli("report", "examples/tiny-gpt2", "-o", str(out)).code == 0
    html = out.read_text(encoding="utf-8")
    assert '<section id="memory">' in html and '<svg class="chart"' in html
    assert "GiB GPU<" not in html  # 1 MiB at most: no GPU line squashes the chart, a note says so
    assert "under 10% of a RTX-4090 24.0 GiB GPU at every length" in html
    assert '<section id="scan">' in html and 'class="verdict ok"' in html


def test_hostile_names_are_text(tmp_path: Path) -> None:
    model = write_hostile(tmp_path)
    out = tmp_path / "r.html"
    assert run_cli("report", str(model), "-o", str(out)).code == 0
    raw = out.read_text(encoding="utf-8")
    page = _parse(out)
    # Nothing in the file became markup: the only tags are the page's own, and no second script appeared.
    assert page.tags.count("img") == (1 if '<section id="graph">' in raw else 0)
    assert len(page.scripts) == 2
    assert "<img src=x" not in raw and "</script><script>window" not in raw
    assert "window.__pwned" not in page.scripts[-1][1]
    # The JSON block holds the names exactly (its escapes undo to the original text).
    data = json.loads(page.scripts[0][1])
    assert set(HOSTILE_NAMES) <= set(data["tensors"]["name"])
    block = page.scripts[0][1]
    assert "<" not in block and ">" not in block and "&" not in block and "\u2028" not in block
    # The static table shows them as text.
    assert HOSTILE_NAMES[0] in "".join(page.text)


def test_graph_attributes_cannot_be_injected(tmp_path: Path) -> None:
    """A module name shaped like a DOT HTML label once went into `tooltip=` unquoted and added a `URL`: the
    SVG held a `javascript:` link. Every attribute but our own labels is quoted now."""
    import shutil

    import torch
    from safetensors.torch import save_file

    if shutil.which("dot") is None:
        pytest.skip("Graphviz `dot` is not installed")
    model = tmp_path / "inject.safetensors"
    save_file({'<a>, URL="javascript:alert(1)", x=<b>.weight': torch.zeros(2)}, model)
    svg = tmp_path / "g.svg"
    assert run_cli("graph", str(model), "--svg", "-o", str(svg)).code == 0
    text = svg.read_text(encoding="utf-8")
    assert "href=" not in text
    assert "javascript:alert(1)" in text  # still there, as the tooltip's text
    out = tmp_path / "r.html"
    assert run_cli("report", str(model), "-o", str(out)).code == 0
    page = out.read_text(encoding="utf-8")
    img = page.split('<img alt="model graph" src="data:image/svg+xml;base64,', 1)[1].split('"', 1)[0]
    assert "href=" not in base64.b64decode(img).decode("utf-8")


def test_onnx_and_gguf(tmp_path: Path) -> None:
    for name in ("tiny_mlp.onnx", "tiny_llama.gguf"):
        out = tmp_path / f"{name}.html"
        r = run_cli("report", str(FIXTURES / name), "-o", str(out))
        assert r.code == 0, r.stderr
        data = json.loads(_parse(out).scripts[0][1])
        assert data["params"] == mi.load(str(FIXTURES / name)).total_params
    gguf = out.read_text(encoding="utf-8")
    assert '<section id="memory">' in gguf  # a GGUF's header gives the hyperparameters
    # `blk` only wraps its one block, which stays a tile of its own (not its attention and MLP tensors).
    assert [n["n"] for n in data["tree"]["c"]] == ["token_embd", "blk.0", "output_norm"]


def test_output_guard(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    out.write_text("x")
    r = run_cli("report", "examples/tiny-gpt2", "-o", str(out))
    assert r.code == 2 and "pass --force" in r.stderr
    assert out.read_text() == "x"
    assert run_cli("report", "examples/tiny-gpt2", "-o", str(out), "--force").code == 0
    r = run_cli("report", "examples/tiny-gpt2", "-o", "examples/tiny-gpt2/r.html")
    assert r.code == 2 and "inside the input folder" in r.stderr
    assert not (ROOT / "examples/tiny-gpt2/r.html").exists()
    r = run_cli("report", "fixtures/tiny_mlp.onnx", "-o", "fixtures/tiny_mlp.onnx", "--force")
    assert r.code == 2 and "would overwrite the input" in r.stderr


@pytest.mark.slow
def test_70b_sharded_size_and_time(tmp_path: Path) -> None:
    model = write_70b(tmp_path)
    out = tmp_path / "70b.html"
    start = time.perf_counter()
    r = run_cli("report", str(model), "-o", str(out))
    seconds = time.perf_counter() - start
    assert r.code == 0, r.stderr
    size = out.stat().st_size
    print(f"\n70B sharded report: {size:,} bytes ({size / 2**20:.2f} MiB), written in {seconds:.2f} s")
    assert size < 2 * 2**20
    html = out.read_text(encoding="utf-8")
    assert '<section id="memory">' in html and '<section id="graph">' in html
    # 128.5 GiB of bf16 weights: over the 80 GiB of an H100, under the 141 GiB of an H200
    assert "H100-SXM 80.0 GiB GPU" in html and "H200 141.0 GiB GPU" in html
    data = json.loads(_parse(out).scripts[0][1])
    inv = mi.load(str(model))
    assert data["params"] == inv.total_params == 68_976_648_192  # Llama-2 70B's count
    assert len(data["tensors"]["name"]) == 723  # 1 + 80·9 + 2


def test_report_of_a_hub_url(tmp_path: Path) -> None:
    """`mi report hf://ORG/NAME` on a local stand-in for the hub: headers, config.json and the scan over HTTP."""
    import shutil

    from tests.test_remote_server import serve

    repo = tmp_path / "hub" / "org" / "gpt2"
    shutil.copytree(ROOT / "examples" / "tiny-gpt2", repo)
    out = tmp_path / "r.html"
    with serve(tmp_path / "hub") as (base, _state):
        r = run_cli("report", "hf://org/gpt2", "--endpoint", base, "-o", str(out))
    assert r.code == 0, r.stderr
    html = out.read_text(encoding="utf-8")
    data = json.loads(_parse(out).scripts[0][1])
    assert data["params"] == mi.load("examples/tiny-gpt2").total_params
    assert '<section id="memory">' in html and '<section id="scan">' in html  # config.json read over HTTP
    assert '<section id="graph">' in html  # the structure, drawn from the headers read over HTTP
